"""RoBERTa (Liu et al., 2019): BERT's encoder with learned positions numbered from ``padding_idx + 1``,
one token type, a byte-level BPE vocabulary and masked-LM-only pretraining.

Below the embeddings the module tree is BERT's (``encoder.layer.N.attention.self.query`` ...), so
:class:`RobertaModel` *is* a :class:`~bertforge.model.BertModel` with other embeddings: the encoder,
the pooler, ``sequence_output`` and ``forward_rows`` (the last layer at masked positions only) are
BERT's code. The heads carry transformers' names (``roberta.``, ``lm_head.dense``,
``lm_head.layer_norm``, ``lm_head.decoder``, ``classifier.dense``, ``classifier.out_proj``), so a
state dict moves between the two libraries with no rename table.

Positions: a token's position id is its index among the non-padding tokens plus ``padding_idx + 1``
(fairseq's ``make_positions``); padding tokens get ``padding_idx``, whose row is kept at zero. A
(B, T) input therefore uses position rows up to ``T + padding_idx``: roberta-base's 514-row table
takes 512 tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ACTIVATIONS, PretrainedConfig
from ..errors import BertForgeError
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


# ------------------------------------------------------------------------------------------- config
@dataclass
class RobertaConfig(PretrainedConfig):
    """Architecture of a RoBERTa model, with transformers' field names.

    Defaults are roberta-base's ``config.json`` (514 positions, one token type, LayerNorm eps 1e-5),
    so ``RobertaConfig()`` loads roberta-base. transformers' own class defaults differ (512, 2, 1e-12)
    but every ``config.json`` it writes carries all three keys, so a checkpoint reads the same in both.
    Decoder-only keys transformers writes (``is_decoder``, ``add_cross_attention``, ``use_cache``) are
    kept in ``extra``; a decoder configuration is refused (bertforge's encoder is bidirectional).
    """

    model_type: ClassVar[str] = "roberta"

    vocab_size: int = 50265
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1
    bos_token_id: int | None = 0
    eos_token_id: int | None = 2
    classifier_dropout: float | None = None
    tie_word_embeddings: bool = True

    def validate(self) -> None:
        """Raise :class:`BertForgeError` naming the first invalid value and how to fix it."""
        self._check_positive(
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        )
        if self.hidden_size % self.num_attention_heads != 0:
            suggestion = max(d for d in range(1, self.num_attention_heads + 1) if self.hidden_size % d == 0)
            raise BertForgeError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}); try num_attention_heads={suggestion}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise BertForgeError(
                f"hidden_act {self.hidden_act!r} is not supported; choose from {', '.join(ACTIVATIONS)}"
            )
        self._check_probabilities("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise BertForgeError(
                f"pad_token_id ({self.pad_token_id}) must be in [0, vocab_size={self.vocab_size})"
            )
        if self.max_position_embeddings <= self.pad_token_id + 1:
            raise BertForgeError(
                f"max_position_embeddings ({self.max_position_embeddings}) leaves no position for a token: "
                f"RoBERTa numbers positions from pad_token_id + 1 = {self.pad_token_id + 1}; use "
                f"max_position_embeddings = longest sequence + {self.pad_token_id + 1} (roberta-base: 514)"
            )
        if self.layer_norm_eps <= 0:
            raise BertForgeError(
                f"layer_norm_eps ({self.layer_norm_eps}) must be positive; RoBERTa uses 1e-5"
            )
        if self.initializer_range <= 0:
            raise BertForgeError(
                f"initializer_range ({self.initializer_range}) must be positive; RoBERTa uses 0.02"
            )
        for key in ("is_decoder", "add_cross_attention"):
            if self.extra.get(key):
                raise BertForgeError(
                    f"config has {key} = true: a RoBERTa decoder (RobertaForCausalLM) is not supported; "
                    "bertforge implements the bidirectional encoder"
                )
        super().validate()

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def max_sequence_length(self) -> int:
        """The longest input the position table covers: max_position_embeddings - pad_token_id - 1."""
        return self.max_position_embeddings - self.pad_token_id - 1

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> RobertaConfig:
        """Build a named architecture: ``roberta-base``, ``roberta-large``, or a compact size
        (``roberta-tiny`` L2-H128, ``roberta-mini`` L4-H256, ``roberta-small`` L4-H512,
        ``roberta-medium`` L8-H512, any ``roberta-L{2..12}-H{128,256,512,768}``); the ``roberta-``
        prefix may be left out (``tiny``)."""
        full = name if name.startswith("roberta-") else f"roberta-{name}"
        canonical = ROBERTA_PRESET_ALIASES.get(full, full)
        if canonical not in ROBERTA_PRESETS:
            raise BertForgeError(
                f"unknown RoBERTa preset {name!r}; choose from {', '.join(roberta_preset_names())}"
            )
        return cls(**{**ROBERTA_PRESETS[canonical], **overrides})


def _size(layers: int, hidden: int) -> dict[str, Any]:
    # The compact grid of Turc et al. (2019) applied to RoBERTa: heads = H/64, feed-forward = 4H.
    # Every preset keeps roberta-base's 514 positions (512 tokens after the padding offset).
    return {
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": hidden // 64,
        "intermediate_size": 4 * hidden,
    }


ROBERTA_PRESETS: dict[str, dict[str, Any]] = {
    f"roberta-L{layers}-H{hidden}": _size(layers, hidden)
    for layers in (2, 4, 6, 8, 10, 12)
    for hidden in (128, 256, 512, 768)
}
ROBERTA_PRESETS["roberta-large"] = _size(24, 1024)
ROBERTA_PRESET_ALIASES: dict[str, str] = {
    "roberta-tiny": "roberta-L2-H128",
    "roberta-mini": "roberta-L4-H256",
    "roberta-small": "roberta-L4-H512",
    "roberta-medium": "roberta-L8-H512",
    "roberta-base": "roberta-L12-H768",
}


def roberta_preset_names() -> list[str]:
    """All RoBERTa preset names, aliases first."""
    return [*ROBERTA_PRESET_ALIASES, "roberta-large", *(n for n in ROBERTA_PRESETS if n != "roberta-large")]


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
