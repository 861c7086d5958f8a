"""One registry from ``model_type`` (and task) to classes, and the auto entry points built on it.

Every family (BERT, RoBERTa, ALBERT, DistilBERT) is declared once in :data:`FAMILIES`: its config
class and its model class for each kind of head, named as ``module:Class`` and imported on first use
(so ``import bertforge`` stays light). Everything that must pick a class from a checkpoint — the
``Auto*`` classes below, the CLI, the pipelines, pretraining and fine-tuning — asks this module, so
a new family is one entry here plus its own module.

>>> model = AutoModelForSequenceClassification.from_pretrained("runs/sst2")   # any family
>>> config = AutoConfig.from_pretrained("path/to/checkpoint")                 # RobertaConfig, ...
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import config_path, read_config_json
from .errors import BertForgeError

if TYPE_CHECKING:
    from torch import nn

    from .config import PretrainedConfig
    from .pretrained import PreTrainedModel

# The kinds of model a family may provide; "base" is the bare encoder.
HEAD_KINDS = (
    "base",
    "pretraining",
    "masked-lm",
    "next-sentence",
    "sequence-classification",
    "token-classification",
    "question-answering",
    "multiple-choice",
)


@dataclass(frozen=True)
class Family:
    """A model family: its config class and its class for each head kind, as ``module:Class``."""

    model_type: str
    config: str
    heads: Mapping[str, str]
    # Further classes of the family (``module:Class`` -> head kind) that checkpoints may name in ``architectures``
    # (SpanBERT's pretraining model with the span-boundary head is a BERT "pretraining" model).
    others: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def config_class(self) -> type[PretrainedConfig]:
        return _import(self.config)  # type: ignore[no-any-return]

    def model_class(self, kind: str) -> type[PreTrainedModel]:
        if kind not in HEAD_KINDS:
            raise BertForgeError(f"unknown model kind {kind!r}; choose from {', '.join(HEAD_KINDS)}")
        if kind not in self.heads:
            available = ", ".join(k for k in HEAD_KINDS if k in self.heads)
            raise BertForgeError(f"the {self.model_type} family has no {kind} model (it has: {available})")
        return _import(self.heads[kind])  # type: ignore[no-any-return]

    def class_names(self) -> dict[str, str]:
        """Class name -> head kind, e.g. ``RobertaForMaskedLM`` -> ``masked-lm``."""
        names = {target.rpartition(":")[2]: kind for kind, target in self.heads.items()}
        return {**names, **{target.rpartition(":")[2]: kind for target, kind in self.others.items()}}


def _heads(module: str, prefix: str, kinds: Mapping[str, str]) -> dict[str, str]:
    return {kind: f"{module}:{prefix}{suffix}" for kind, suffix in kinds.items()}


_STANDARD_HEADS = {
    "base": "Model",
    "masked-lm": "ForMaskedLM",
    "sequence-classification": "ForSequenceClassification",
    "token-classification": "ForTokenClassification",
    "question-answering": "ForQuestionAnswering",
    "multiple-choice": "ForMultipleChoice",
}

FAMILIES: dict[str, Family] = {
    "bert": Family(
        "bert",
        "bertforge.config:BertConfig",
        {
            "base": "bertforge.model:BertModel",
            "pretraining": "bertforge.heads:BertForPreTraining",
            "next-sentence": "bertforge.heads:BertForNextSentencePrediction",
            **{k: f"bertforge.heads:Bert{v}" for k, v in _STANDARD_HEADS.items() if k != "base"},
        },
        others={"bertforge.models.spanbert:BertForPreTrainingSBO": "pretraining"},
    ),
    # RoBERTa pretrains with masked LM alone: its pretraining model is the MLM head.
    "roberta": Family(
        "roberta",
        "bertforge.models.roberta_config:RobertaConfig",
        {
            **_heads("bertforge.models.roberta", "Roberta", _STANDARD_HEADS),
            "pretraining": "bertforge.models.roberta:RobertaForMaskedLM",
        },
    ),
    "albert": Family(
        "albert",
        "bertforge.models.albert_config:AlbertConfig",
        {
            **_heads("bertforge.models.albert", "Albert", _STANDARD_HEADS),
            "pretraining": "bertforge.models.albert:AlbertForPreTraining",
        },
    ),
    "distilbert": Family(
        "distilbert",
        "bertforge.models.distilbert_config:DistilBertConfig",
        {
            **_heads("bertforge.models.distilbert", "DistilBert", _STANDARD_HEADS),
            "pretraining": "bertforge.models.distilbert:DistilBertForMaskedLM",
        },
    ),
}

# Fine-tuning task -> head kind.
TASK_HEADS = {
    "classification": "sequence-classification",
    "regression": "sequence-classification",
    "ner": "token-classification",
    "qa": "question-answering",
    "multiple-choice": "multiple-choice",
}


def _import(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def family(model_type: str) -> Family:
    """The registered family for ``model_type``, or an error naming the supported ones."""
    found = FAMILIES.get(model_type)
    if found is None:
        raise BertForgeError(
            f"model_type {model_type!r} is not supported; bertforge supports {', '.join(FAMILIES)}"
        )
    return found


def checkpoint_model_type(path: str | os.PathLike[str]) -> str:
    """``model_type`` from a checkpoint's config.json (BERT when the file predates the key)."""
    data = read_config_json(config_path(path))
    model_type = data.get("model_type", "bert")
    family(str(model_type))  # refuse unsupported families here, with the list
    return str(model_type)


def config_class_for(model_type: str) -> type[PretrainedConfig]:
    return family(model_type).config_class()


def model_class_for(model_type: str, kind: str) -> type[PreTrainedModel]:
    """The class of ``kind`` (a :data:`HEAD_KINDS` value or a fine-tuning task name) in a family."""
    return family(model_type).model_class(TASK_HEADS.get(kind, kind))


def class_by_name(name: str) -> tuple[str, str] | None:
    """(model_type, head kind) of a class name found in config.json's ``architectures``."""
    for model_type, fam in FAMILIES.items():
        kind = fam.class_names().get(name)
        if kind is not None:
            return model_type, kind
    return None


def checkpoint_head_kind(path: str | os.PathLike[str]) -> str | None:
    """The head kind a checkpoint was saved as (from ``architectures``), or None when unknown."""
    data = read_config_json(config_path(path))
    for name in data.get("architectures") or ():
        found = class_by_name(str(name))
        if found is not None:
            return found[1]
    return None


@functools.cache
def _forward_parameters(cls: type[nn.Module]) -> frozenset[str]:
    return frozenset(inspect.signature(cls.forward).parameters)


def forward_kwargs(model: Any, batch: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``batch`` that ``model.forward`` takes: a DistilBERT gets no token_type_ids,
    a RoBERTa its all-zero ones, without every caller knowing which family it drives."""
    # A class is hashable, but mypy does not accept a type[...] as Hashable (cf. python/mypy#20409).
    accepted = _forward_parameters(type(model))  # type: ignore[arg-type]
    return {k: v for k, v in batch.items() if k in accepted}


class AutoConfig:
    """``AutoConfig.from_pretrained(path)``: the family's config class, read from config.json."""

    @staticmethod
    def from_pretrained(path: str | os.PathLike[str], **overrides: Any) -> PretrainedConfig:
        return config_class_for(checkpoint_model_type(path)).from_pretrained(path, **overrides)

    @staticmethod
    def for_model(model_type: str, **fields: Any) -> PretrainedConfig:
        return config_class_for(model_type)(**fields)


class _AutoModel:
    kind = "base"

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], **kwargs: Any) -> Any:
        """Load a checkpoint as this kind of model of whatever family its config.json names."""
        return model_class_for(checkpoint_model_type(path), cls.kind).from_pretrained(path, **kwargs)

    @classmethod
    def from_config(cls, config: PretrainedConfig) -> Any:
        """A freshly initialised model of this kind for ``config``'s family."""
        return model_class_for(config.model_type, cls.kind)(config)

    @classmethod
    def class_for(cls, model_type: str) -> type[PreTrainedModel]:
        return model_class_for(model_type, cls.kind)


class AutoModel(_AutoModel):
    kind = "base"


class AutoModelForPreTraining(_AutoModel):
    kind = "pretraining"


class AutoModelForMaskedLM(_AutoModel):
    kind = "masked-lm"


class AutoModelForNextSentencePrediction(_AutoModel):
    kind = "next-sentence"


class AutoModelForSequenceClassification(_AutoModel):
    kind = "sequence-classification"


class AutoModelForTokenClassification(_AutoModel):
    kind = "token-classification"


class AutoModelForQuestionAnswering(_AutoModel):
    kind = "question-answering"


class AutoModelForMultipleChoice(_AutoModel):
    kind = "multiple-choice"
