"""RoBERTa (Liu et al., 2019): BERT's encoder with learned positions numbered from ``padding_idx + 1``,
one token type, a byte-level BPE vocabulary and masked-LM-only pretraining.

Below the embeddings the module tree is BERT's (``encoder.layer.N.attention.self.query`` ...), so
:class:`RobertaModel` *is* a :class:`~bertforge.model.BertModel` with other embeddings: the encoder,
the pooler, ``sequence_output`` and ``forward_rows`` (the last layer at masked positions only) are
BERT's code. The heads carry transformers' names (``roberta.``, ``lm_head.dense``,
``lm_head.layer_norm``, ``lm_head.decoder``, ``classifier.dense``, ``classifier.out_proj``), so a
state dict moves between the two libraries with no rename table.

The configuration and its presets are in :mod:`bertforge.models.roberta_config`.

Positions: a token's position id is its index among the non-padding tokens plus ``padding_idx + 1``
(fairseq's ``make_positions``); padding tokens get ``padding_idx``, whose row is kept at zero. A
(B, T) input therefore uses position rows up to ``T + padding_idx``: roberta-base's 514-row table
takes 512 tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..heads import _classifier_dropout
from ..model import BertModel, Dropout
from ..outputs import BaseModelOutputWithPooling
from ..pretrained import PreTrainedModel, deferred_init
from ..task_heads import (
    MaskedLMModel,
    MultipleChoiceHead,
    QuestionAnsweringHead,
    SequenceClassificationHead,
    TokenClassificationHead,
)

# The config has its own module (transformers' configuration_roberta.py); its names stay importable
# from here, where they lived first.
from .roberta_config import ROBERTA_PRESET_ALIASES as ROBERTA_PRESET_ALIASES
from .roberta_config import ROBERTA_PRESETS, RobertaConfig, roberta_preset_names

__all__ = [
    "ROBERTA_PRESETS",
    "RobertaClassificationHead",
    "RobertaConfig",
    "RobertaEmbeddings",
    "RobertaForMaskedLM",
    "RobertaForMultipleChoice",
    "RobertaForQuestionAnswering",
    "RobertaForSequenceClassification",
    "RobertaForTokenClassification",
    "RobertaLMHead",
    "RobertaModel",
    "RobertaPreTrainedModel",
    "create_position_ids_from_input_ids",
    "roberta_preset_names",
]


# --------------------------------------------------------------------------------------- embeddings
def create_position_ids_from_input_ids(input_ids: torch.Tensor, padding_idx: int) -> torch.Tensor:
    """(B, T) position ids: ``padding_idx + 1, + 2, ...`` over the non-padding tokens, ``padding_idx``
    at padding. transformers' function, op for op (fairseq's ``make_positions``)."""
    mask = input_ids.ne(padding_idx).int()
    incremental_indices = torch.cumsum(mask, dim=1).type_as(mask) * mask
    return incremental_indices.long() + padding_idx


class RobertaEmbeddings(nn.Module):
    """word + token type + learned position embeddings (positions from the input ids, see the module
    docstring), then LayerNorm and dropout. Sub-modules in transformers' order (state-dict order)."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.padding_idx = config.pad_token_id
        self.position_embeddings = nn.Embedding(
            config.max_position_embeddings, config.hidden_size, padding_idx=self.padding_idx
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if position_ids is None:
            position_ids = create_position_ids_from_input_ids(input_ids, self.padding_idx)
        # Summed in transformers' order (word + type, then position) so float rounding matches too.
        if token_type_ids is None:
            embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
        else:
            embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


# --------------------------------------------------------------------------------------- base model
class RobertaPreTrainedModel(PreTrainedModel):
    """Base of RobertaModel and every RoBERTa head: the config class and checkpoint layout."""

    config: RobertaConfig
    config_class = RobertaConfig
    base_model_prefix = "roberta"


class RobertaModel(RobertaPreTrainedModel, BertModel):
    """The bare encoder: BertModel with RoBERTa's embeddings. ``forward``, ``sequence_output`` and
    ``forward_rows`` are BERT's; the pooler (dense + tanh over ``<s>``) is BERT's too."""

    # BertModel's code runs on a RobertaConfig: it reads the names both configs share.
    config: RobertaConfig  # type: ignore[assignment]
    config_class = RobertaConfig
    embeddings_class = RobertaEmbeddings

    def __init__(self, config: RobertaConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config, add_pooling_layer)  # type: ignore[arg-type]

    @property
    def position_offset(self) -> int:
        return int(self.config.pad_token_id) + 1


# -------------------------------------------------------------------------------------------- heads
class RobertaLMHead(nn.Module):
    """dense + gelu + layer_norm, then the (V, H) decoder and its bias: tied to the word embeddings
    and to ``bias`` by RobertaForMaskedLM with config.tie_word_embeddings, the decoder's own untied
    (``bias`` then unused), as in transformers.

    Works on hidden states of any leading shape, so the pretraining loss projects only the masked rows.
    """

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def reset_extra_parameters(self) -> None:
        nn.init.zeros_(self.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # transformers' RobertaLMHead uses the exact (erf) gelu whatever config.hidden_act says.
        return self.decoder(self.layer_norm(F.gelu(self.dense(features))))


class RobertaForMaskedLM(MaskedLMModel, RobertaPreTrainedModel):
    """Masked-LM scores for every position (no pooler); also RoBERTa's pretraining model."""

    tied_weights = {
        "lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
        "lm_head.decoder.bias": "lm_head.bias",
    }

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.roberta = RobertaModel(config, add_pooling_layer=False)
            self.lm_head = RobertaLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def mlm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden_states)


class RobertaClassificationHead(nn.Module):
    """dropout, dense + tanh, dropout, out_proj over the ``<s>`` vector (RoBERTa has no pooler here)."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = Dropout(_classifier_dropout(config))  # type: ignore[arg-type]
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.dropout(features[:, 0])  # <s>, position 0
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out_proj(x)


class RobertaForSequenceClassification(SequenceClassificationHead, RobertaPreTrainedModel):
    """Classification (or regression when num_labels == 1) from the ``<s>`` vector."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        with deferred_init():
            self.roberta = RobertaModel(config, add_pooling_layer=False)
            self.classifier = RobertaClassificationHead(config)
        self.post_init()

    def _sequence_logits(self, out: BaseModelOutputWithPooling) -> torch.Tensor:
        # No pooler: the classification head reads <s> from the last hidden state itself.
        return self.classifier(out.last_hidden_state)


class RobertaForTokenClassification(TokenClassificationHead, RobertaPreTrainedModel):
    """A linear layer over every token's hidden state: tagging such as NER."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        with deferred_init():
            self.roberta = RobertaModel(config, add_pooling_layer=False)
            self.dropout = Dropout(_classifier_dropout(config))  # type: ignore[arg-type]
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


class RobertaForQuestionAnswering(QuestionAnsweringHead, RobertaPreTrainedModel):
    """Extractive QA: start and end logits for every token."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        with deferred_init():
            self.roberta = RobertaModel(config, add_pooling_layer=False)
            self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


class RobertaForMultipleChoice(MultipleChoiceHead, RobertaPreTrainedModel):
    """Scores C candidates: inputs (B, C, T), one logit per choice from the pooled ``<s>`` vector.

    As in transformers, the dropout here is ``hidden_dropout_prob`` (classifier_dropout is not read).
    """

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.roberta = RobertaModel(config)
            self.dropout = Dropout(config.hidden_dropout_prob)
            self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()
