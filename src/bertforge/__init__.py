"""bertforge: a complete, fast, hackable BERT in PyTorch, compatible with Hugging Face checkpoints.

The pieces, one module each: :mod:`~bertforge.config` (BertConfig and presets),
:mod:`~bertforge.model` (the encoder), :mod:`~bertforge.heads` (task heads),
:mod:`~bertforge.ops` (the maths every family shares), :mod:`~bertforge.models` (RoBERTa, ALBERT,
DistilBERT, SpanBERT's boundary head), :mod:`~bertforge.auto` (model_type -> classes, the Auto
entry points), :mod:`~bertforge.checkpoint` (load/save in the Hugging Face layout),
:mod:`~bertforge.tokenization` (WordPiece, byte-level BPE, Unigram), :mod:`~bertforge.embed` (fast
sentence embeddings), :mod:`~bertforge.data`
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
    "AutoConfig": "auto",
    "AutoModel": "auto",
    "AutoModelForPreTraining": "auto",
    "AutoModelForMaskedLM": "auto",
    "AutoModelForNextSentencePrediction": "auto",
    "AutoModelForSequenceClassification": "auto",
    "AutoModelForTokenClassification": "auto",
    "AutoModelForQuestionAnswering": "auto",
    "AutoModelForMultipleChoice": "auto",
    "AutoTokenizer": "tokenization",
    "BertTokenizer": "tokenization",
    "RobertaTokenizer": "tokenization",
    "AlbertTokenizer": "tokenization",
    "DistilBertTokenizer": "tokenization",
    "load_tokenizer": "tokenization",
    "embed": "embed",
    "Embedder": "embed",
    "RobertaConfig": "models.roberta_config",
    "AlbertConfig": "models.albert_config",
    "DistilBertConfig": "models.distilbert_config",
    "AlbertForPreTraining": "models.albert",
    "RobertaModel": "models.roberta",
    "RobertaForMaskedLM": "models.roberta",
    "RobertaForSequenceClassification": "models.roberta",
    "RobertaForTokenClassification": "models.roberta",
    "RobertaForQuestionAnswering": "models.roberta",
    "RobertaForMultipleChoice": "models.roberta",
    "AlbertModel": "models.albert",
    "AlbertForMaskedLM": "models.albert",
    "AlbertForSequenceClassification": "models.albert",
    "AlbertForTokenClassification": "models.albert",
    "AlbertForQuestionAnswering": "models.albert",
    "AlbertForMultipleChoice": "models.albert",
    "DistilBertModel": "models.distilbert",
    "DistilBertForMaskedLM": "models.distilbert",
    "DistilBertForSequenceClassification": "models.distilbert",
    "DistilBertForTokenClassification": "models.distilbert",
    "DistilBertForQuestionAnswering": "models.distilbert",
    "DistilBertForMultipleChoice": "models.distilbert",
}

__all__ = [
    "AlbertConfig",
    "AlbertForMaskedLM",
    "AlbertForMultipleChoice",
    "AlbertForPreTraining",
    "AlbertForQuestionAnswering",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertModel",
    "AlbertTokenizer",
    "AutoConfig",
    "AutoModel",
    "AutoModelForMaskedLM",
    "AutoModelForMultipleChoice",
    "AutoModelForNextSentencePrediction",
    "AutoModelForPreTraining",
    "AutoModelForQuestionAnswering",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoTokenizer",
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
    "BertTokenizer",
    "DistilBertConfig",
    "DistilBertForMaskedLM",
    "DistilBertForMultipleChoice",
    "DistilBertForQuestionAnswering",
    "DistilBertForSequenceClassification",
    "DistilBertForTokenClassification",
    "DistilBertModel",
    "DistilBertTokenizer",
    "Embedder",
    "RobertaConfig",
    "RobertaForMaskedLM",
    "RobertaForMultipleChoice",
    "RobertaForQuestionAnswering",
    "RobertaForSequenceClassification",
    "RobertaForTokenClassification",
    "RobertaModel",
    "RobertaTokenizer",
    "embed",
    "load_tokenizer",
    "preset_names",
]
assert sorted(__all__) == sorted(_EXPORTS)

if TYPE_CHECKING:
    from .auto import (
        AutoConfig,
        AutoModel,
        AutoModelForMaskedLM,
        AutoModelForMultipleChoice,
        AutoModelForNextSentencePrediction,
        AutoModelForPreTraining,
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )
    from .config import (
        BertConfig,
        preset_names,
    )
    from .embed import (
        Embedder,
        embed,
    )
    from .errors import (
        BertForgeError,
    )
    from .heads import (
        BertForMaskedLM,
        BertForMultipleChoice,
        BertForNextSentencePrediction,
        BertForPreTraining,
        BertForQuestionAnswering,
        BertForSequenceClassification,
        BertForTokenClassification,
    )
    from .model import (
        BertModel,
    )
    from .models.albert import (
        AlbertForMaskedLM,
        AlbertForMultipleChoice,
        AlbertForPreTraining,
        AlbertForQuestionAnswering,
        AlbertForSequenceClassification,
        AlbertForTokenClassification,
        AlbertModel,
    )
    from .models.albert_config import (
        AlbertConfig,
    )
    from .models.distilbert import (
        DistilBertForMaskedLM,
        DistilBertForMultipleChoice,
        DistilBertForQuestionAnswering,
        DistilBertForSequenceClassification,
        DistilBertForTokenClassification,
        DistilBertModel,
    )
    from .models.distilbert_config import (
        DistilBertConfig,
    )
    from .models.roberta import (
        RobertaForMaskedLM,
        RobertaForMultipleChoice,
        RobertaForQuestionAnswering,
        RobertaForSequenceClassification,
        RobertaForTokenClassification,
        RobertaModel,
    )
    from .models.roberta_config import (
        RobertaConfig,
    )
    from .tokenization import (
        AlbertTokenizer,
        AutoTokenizer,
        BertTokenizer,
        DistilBertTokenizer,
        RobertaTokenizer,
        load_tokenizer,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bertforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
