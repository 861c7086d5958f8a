"""bertforge: a complete, fast, hackable BERT in PyTorch, compatible with Hugging Face checkpoints.

The pieces, one module each: :mod:`~bertforge.config` (BertConfig and presets),
:mod:`~bertforge.model` (the encoder), :mod:`~bertforge.heads` (task heads),
:mod:`~bertforge.checkpoint` (load/save in the Hugging Face layout), :mod:`~bertforge.tokenizer`
(WordPiece), :mod:`~bertforge.embed` (fast sentence embeddings) and :mod:`~bertforge.cli`.
"""

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

__version__ = "0.1.0"

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
