"""bertforge: a complete, fast, hackable BERT in PyTorch, compatible with Hugging Face checkpoints.

The pieces, one module each: :mod:`~bertforge.config` (BertConfig and presets),
:mod:`~bertforge.model` (the encoder), :mod:`~bertforge.heads` (task heads),
:mod:`~bertforge.checkpoint` (load/save in the Hugging Face layout), :mod:`~bertforge.tokenizer`
(WordPiece), :mod:`~bertforge.embed` (fast sentence embeddings), :mod:`~bertforge.data`
(pretraining corpora, datasets, instances and masking), :mod:`~bertforge.train` (pretraining and
fine-tuning loops), :mod:`~bertforge.tasks` (task readers and metrics),
:mod:`~bertforge.pipelines` and :mod:`~bertforge.cli`.

Names are imported on first use (PEP 562), so ``import bertforge.data`` in a dataset-build worker
does not pay for importing torch (~230 MB of resident memory).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "BertConfig": "config",
    "preset_names": "config",
    "BertForgeError": "errors",
    "BertModel": "model",
    "BertForMaskedLM": "heads",
    "BertForMultipleChoice": "heads",
    "BertForNextSentencePrediction": "heads",
    "BertForPreTraining": "heads",
    "BertForQuestionAnswering": "heads",
    "BertForSequenceClassification": "heads",
    "BertForTokenClassification": "heads",
}

__all__ = [
    "BertConfig",
    "BertForMaskedLM",
    "BertForMultipleChoice",
    "BertForNextSentencePrediction",
    "BertForPreTraining",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertForgeError",
    "BertModel",
    "preset_names",
]
assert sorted(__all__) == sorted(_EXPORTS)

if TYPE_CHECKING:
    from .config import BertConfig, preset_names
    from .errors import BertForgeError
    from .heads import (
        BertForMaskedLM,
        BertForMultipleChoice,
        BertForNextSentencePrediction,
        BertForPreTraining,
        BertForQuestionAnswering,
        BertForSequenceClassification,
        BertForTokenClassification,
    )
    from .model import BertModel


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bertforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
