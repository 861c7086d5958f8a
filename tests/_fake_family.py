"""A tiny non-BERT family for tests of the family-agnostic commands, registered into
``bertforge.auto.FAMILIES`` by :func:`registered` while the real RoBERTa/DistilBERT classes are not
on main: model_type "fakebert", BERT's maths under other class names, forwards that take no
token_type_ids (as DistilBERT's), and a RoBERTa-style tokenizer (``<s> x </s>``, pairs
``<s> a </s></s> b </s>``, ``<mask>``, pad id 1, no token_type_ids) served through a stand-in
``bertforge.tokenization`` module, as the tokenizer branch will provide.
"""

from __future__ import annotations

import contextlib
import json
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from _task_data import VOCAB
from bertforge import auto
from bertforge.config import BertConfig
from bertforge.heads import (
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from bertforge.model import BertModel

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
WORDS = [t for t in VOCAB if not t.startswith("[")]
FAKE_VOCAB = [*SPECIALS, *WORDS]


@dataclass
class FakeConfig(BertConfig):
    model_type: ClassVar[str] = "fakebert"


class FakeModel(BertModel):
    config_class = FakeConfig


class FakeForMaskedLM(BertForMaskedLM):
    config_class = FakeConfig

    def forward(self, input_ids: Any, attention_mask: Any = None, labels: Any = None) -> Any:
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels)


class FakeForSequenceClassification(BertForSequenceClassification):
    config_class = FakeConfig

    def forward(self, input_ids: Any, attention_mask: Any = None, labels: Any = None) -> Any:
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels)


class FakeForTokenClassification(BertForTokenClassification):
    config_class = FakeConfig

    def forward(self, input_ids: Any, attention_mask: Any = None, labels: Any = None) -> Any:
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels)


class FakeForQuestionAnswering(BertForQuestionAnswering):
    config_class = FakeConfig

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        start_positions: Any = None,
        end_positions: Any = None,
    ) -> Any:
        return super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            start_positions=start_positions,
            end_positions=end_positions,
        )


class FakeForMultipleChoice(BertForMultipleChoice):
    config_class = FakeConfig

    def forward(self, input_ids: Any, attention_mask: Any = None, labels: Any = None) -> Any:
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels)


FAMILY = auto.Family(
    "fakebert",
    "_fake_family:FakeConfig",
    {
        "base": "_fake_family:FakeModel",
        "pretraining": "_fake_family:FakeForMaskedLM",
        "masked-lm": "_fake_family:FakeForMaskedLM",
        "sequence-classification": "_fake_family:FakeForSequenceClassification",
        "token-classification": "_fake_family:FakeForTokenClassification",
        "question-answering": "_fake_family:FakeForQuestionAnswering",
        "multiple-choice": "_fake_family:FakeForMultipleChoice",
    },
)


def roberta_style_tokenizer() -> Any:
    """A word-level tokenizer with RoBERTa's special tokens and post-processor (transformers' class)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(FAKE_VOCAB)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=64,
        model_input_names=["input_ids", "attention_mask"],
    )


def load_tokenizer(path: str | Path) -> Any:
    """The stand-in ``bertforge.tokenization.load_tokenizer``: RoBERTa-style for fake checkpoints."""
    path = Path(path)
    tokenizer_json = path / "tokenizer.json"
    if tokenizer_json.is_file() and '"<mask>"' in tokenizer_json.read_text(encoding="utf-8"):
        tokenizer = roberta_style_tokenizer()
        return type(tokenizer).from_pretrained(str(path), model_input_names=["input_ids", "attention_mask"])
    from bertforge.tokenizer import BertTokenizer

    return BertTokenizer.from_pretrained(path)


def write_fake_checkpoint(directory: Path, seed: int = 0) -> Path:
    """A tiny random fakebert masked LM (hidden 32, 2 layers, 4 heads, 64 positions) + its tokenizer."""
    torch.manual_seed(seed)
    config = FakeConfig(
        vocab_size=len(FAKE_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        pad_token_id=1,
    )
    FakeForMaskedLM(config).save_pretrained(directory)
    roberta_style_tokenizer().save_pretrained(str(directory))
    assert json.loads((directory / "config.json").read_text())["model_type"] == "fakebert"
    return directory


@contextlib.contextmanager
def registered() -> Iterator[None]:
    """The fake family in FAMILIES and the stand-in tokenization module, removed afterwards."""
    module = types.ModuleType("bertforge.tokenization")
    module.load_tokenizer = load_tokenizer  # type: ignore[attr-defined]
    saved = sys.modules.get("bertforge.tokenization")
    auto.FAMILIES["fakebert"] = FAMILY
    sys.modules["bertforge.tokenization"] = module
    try:
        yield
    finally:
        auto.FAMILIES.pop("fakebert", None)
        if saved is None:
            sys.modules.pop("bertforge.tokenization", None)
        else:
            sys.modules["bertforge.tokenization"] = saved
