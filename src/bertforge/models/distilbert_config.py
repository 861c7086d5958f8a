"""DistilBERT's configuration: :class:`DistilBertConfig`, with transformers' ``config.json`` names
(``dim``, ``n_layers`` ...) and BERT's generic names as read-only properties, and the named presets.

Kept apart from the modules in :mod:`bertforge.models.distilbert`, as transformers keeps
``configuration_distilbert.py`` apart from ``modeling_distilbert.py``: reading, checking or listing a
config needs no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import ACTIVATIONS, PretrainedConfig
from ..errors import BertForgeError

__all__ = ["GENERIC_NAMES", "LAYER_NORM_EPS", "PRESETS", "PRESET_ALIASES", "DistilBertConfig", "preset_names"]

# DistilBERT hard-codes its LayerNorm epsilon (transformers too); it is not a config.json key.
LAYER_NORM_EPS = 1e-12

# Generic (BERT) config names -> DistilBERT's config.json names; accepted by from_preset and replace,
# so a recipe's --model.hidden_size works for every family.
GENERIC_NAMES = {
    "hidden_size": "dim",
    "num_hidden_layers": "n_layers",
    "num_attention_heads": "n_heads",
    "intermediate_size": "hidden_dim",
    "hidden_act": "activation",
    "hidden_dropout_prob": "dropout",
    "attention_probs_dropout_prob": "attention_dropout",
}


def _to_distilbert_names(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = GENERIC_NAMES.get(key, key)
        if name in out and out[name] != value:
            raise BertForgeError(f"{key} and {name} are the same DistilBERT setting; give one of them")
        out[name] = value
    return out


@dataclass
class DistilBertConfig(PretrainedConfig):
    """Architecture of a DistilBERT model with transformers' config.json names and defaults
    (distilbert-base-uncased). The generic names other code reads (``hidden_size``,
    ``num_hidden_layers``, ``num_attention_heads``, ``intermediate_size``, ``type_vocab_size`` = 0,
    ``layer_norm_eps``) are read-only properties over these fields."""

    model_type: ClassVar[str] = "distilbert"

    vocab_size: int = 30522
    max_position_embeddings: int = 512
    sinusoidal_pos_embds: bool = False
    n_layers: int = 6
    n_heads: int = 12
    dim: int = 768
    hidden_dim: int = 3072
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation: str = "gelu"
    initializer_range: float = 0.02
    qa_dropout: float = 0.1
    seq_classif_dropout: float = 0.2
    pad_token_id: int = 0
    # Old checkpoints' spelling of "tie the MLM decoder to the word embeddings"; kept for round
    # trips. What ties the weights (here and in transformers) is tie_word_embeddings.
    tie_weights_: bool = True
    tie_word_embeddings: bool = True

    def validate(self) -> None:
        self._check_positive(
            "vocab_size", "max_position_embeddings", "n_layers", "n_heads", "dim", "hidden_dim"
        )
        if self.dim % self.n_heads != 0:
            suggestion = max(d for d in range(1, self.n_heads + 1) if self.dim % d == 0)
            raise BertForgeError(
                f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads}); try n_heads={suggestion}"
            )
        if self.activation not in ACTIVATIONS:
            raise BertForgeError(
                f"activation {self.activation!r} is not supported; choose from {', '.join(ACTIVATIONS)}"
            )
        self._check_probabilities("dropout", "attention_dropout", "qa_dropout", "seq_classif_dropout")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise BertForgeError(
                f"pad_token_id ({self.pad_token_id}) must be in [0, vocab_size={self.vocab_size})"
            )
        if self.initializer_range <= 0:
            raise BertForgeError(
                f"initializer_range ({self.initializer_range}) must be positive; DistilBERT uses 0.02"
            )
        super().validate()

    # ------------------------------------------------------------- generic names
    @property
    def hidden_size(self) -> int:
        return self.dim

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layers

    @property
    def num_attention_heads(self) -> int:
        return self.n_heads

    @property
    def intermediate_size(self) -> int:
        return self.hidden_dim

    @property
    def hidden_act(self) -> str:
        return self.activation

    @property
    def hidden_dropout_prob(self) -> float:
        return self.dropout

    @property
    def attention_probs_dropout_prob(self) -> float:
        return self.attention_dropout

    @property
    def type_vocab_size(self) -> int:
        return 0  # no segment embeddings: feed no token_type_ids

    @property
    def layer_norm_eps(self) -> float:
        return LAYER_NORM_EPS

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    # ------------------------------------------------------------------- building
    def replace(self, **changes: Any) -> DistilBertConfig:
        """A copy with some fields changed; BERT's names (hidden_size, num_hidden_layers ...) are
        accepted for DistilBERT's (dim, n_layers ...)."""
        return super().replace(**_to_distilbert_names(changes))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> DistilBertConfig:
        """A named architecture: ``distilbert-base`` (6 x 768), ``distilbert-tiny`` (2 x 128),
        ``distilbert-mini`` (4 x 256), ``distilbert-small`` (4 x 512), or ``distilbert-L{n}-H{h}``.
        Overrides may use DistilBERT's or BERT's field names."""
        canonical = PRESET_ALIASES.get(name, name)
        if canonical not in PRESETS:
            raise BertForgeError(f"unknown preset {name!r}; choose from {', '.join(preset_names())}")
        overrides = _to_distilbert_names(overrides)
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise BertForgeError(f"unknown DistilBERT config field(s) {', '.join(sorted(unknown))}")
        return cls(**{**PRESETS[canonical], **overrides})


def _compact(layers: int, hidden: int) -> dict[str, Any]:
    return {"n_layers": layers, "dim": hidden, "n_heads": hidden // 64, "hidden_dim": 4 * hidden}


PRESETS: dict[str, dict[str, Any]] = {
    f"distilbert-L{layers}-H{hidden}": _compact(layers, hidden)
    for layers in (2, 3, 4, 6)
    for hidden in (128, 256, 512, 768)
}
PRESET_ALIASES: dict[str, str] = {
    "distilbert-tiny": "distilbert-L2-H128",
    "distilbert-mini": "distilbert-L4-H256",
    "distilbert-small": "distilbert-L4-H512",
    "distilbert-base": "distilbert-L6-H768",
}


def preset_names() -> list[str]:
    return [*PRESET_ALIASES, *PRESETS]
