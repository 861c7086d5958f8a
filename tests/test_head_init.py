"""Initial weights under a seed are pinned for every family x head class.

Building a model draws its weights in module-registration order (``post_init`` applies BERT's
initialisation once, over ``named_modules``), so the same seed gives the same weights only while
every class creates the same modules in the same order. The digests below were taken from the
classes before their forward code was shared across families (2026-11); a change that reorders a
head's modules, adds one or moves the base model would change them. They also depend on PyTorch's
CPU normal generator: if a PyTorch upgrade alone changes them, re-pin from the previous release.
"""

from __future__ import annotations

import hashlib
import importlib
from typing import Any

import pytest
import torch

from bertforge import auto

TINY: dict[str, dict[str, Any]] = {
    "bert": {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 37, "max_position_embeddings": 64},
    "roberta": {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                "intermediate_size": 37, "max_position_embeddings": 66, "pad_token_id": 1,
                "type_vocab_size": 1},
    "albert": {"vocab_size": 99, "embedding_size": 16, "hidden_size": 32, "num_hidden_layers": 4,
               "num_hidden_groups": 2, "num_attention_heads": 4, "intermediate_size": 37,
               "max_position_embeddings": 64},
    "distilbert": {"vocab_size": 99, "dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 37,
                   "max_position_embeddings": 64},
}  # fmt: skip

PINNED: dict[str, str] = {
    "AlbertForMaskedLM": "0f0efb7b7600401e",
    "AlbertForMultipleChoice": "a9769f512d239184",
    "AlbertForPreTraining": "6a26f8cc48e0fd97",
    "AlbertForQuestionAnswering": "a645e77c874047ee",
    "AlbertForSequenceClassification": "3d4f70c8b5ac8bd0",
    "AlbertForTokenClassification": "abea373cc4367b60",
    "AlbertModel": "77eb0717eb5a4c7d",
    "BertForMaskedLM": "502c179167d26525",
    "BertForMultipleChoice": "51a8e87665dd8fd3",
    "BertForNextSentencePrediction": "01a58d0b7ab99232",
    "BertForPreTraining": "2e01811cae8f1666",
    "BertForQuestionAnswering": "0192aed7eb8dd931",
    "BertForSequenceClassification": "9890c29b4d6f3a8c",
    "BertForTokenClassification": "69d68f1b8409a342",
    "BertModel": "34ce906cff36c11f",
    "BertForPreTrainingSBO": "c4690d67201633af",
    "DistilBertForMaskedLM": "d9f3cfb6bbc029cd",
    "DistilBertForMultipleChoice": "155cd7c7a2478b98",
    "DistilBertForQuestionAnswering": "6ded32ad5f5c3163",
    "DistilBertForSequenceClassification": "1c27a0b096299ead",
    "DistilBertForTokenClassification": "49b8125ac025afec",
    "DistilBertModel": "43941d81ec8c179c",
    "RobertaForMaskedLM": "fc3063161f84b9a8",
    "RobertaForMultipleChoice": "a0fcc211489ce24e",
    "RobertaForQuestionAnswering": "659dbd06d8500db2",
    "RobertaForSequenceClassification": "73cf6f9618809e8b",
    "RobertaForTokenClassification": "a779a76bda1b85d0",
    "RobertaModel": "40c402a6e2277312",
}


def _digest(model: torch.nn.Module) -> str:
    """sha256 over every state-dict key and its tensor's bytes, in state-dict order."""
    sha = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        sha.update(name.encode())
        sha.update(tensor.detach().contiguous().view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()[:16]


# Every class a family registers (SpanBERT's SBO model included), each once: RoBERTa's and
# DistilBERT's pretraining model is their masked-LM class.
CASES = sorted(
    {(model_type, target) for model_type, family in auto.FAMILIES.items()
     for target in [*family.heads.values(), *family.others]}
)  # fmt: skip


def _build(model_type: str, target: str) -> torch.nn.Module:
    module, _, name = target.partition(":")
    # 2 labels: DistilBERT's QA head accepts no other number, and every head takes it.
    config = auto.config_class_for(model_type)(**TINY[model_type], num_labels=2)
    torch.manual_seed(0)
    return getattr(importlib.import_module(module), name)(config)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("model_type", "target"), CASES, ids=[t.partition(":")[2] for _, t in CASES])
def test_initial_weights_under_a_seed_are_unchanged(model_type: str, target: str) -> None:
    assert _digest(_build(model_type, target)) == PINNED[target.partition(":")[2]]
