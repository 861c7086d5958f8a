"""ALBERT's configuration: :class:`AlbertConfig`, with transformers' ``config.json`` field names, and the
named presets, from ``albert-tiny`` to the published v2 sizes.

Kept apart from the modules in :mod:`bertforge.models.albert`, as transformers keeps
``configuration_albert.py`` apart from ``modeling_albert.py``: reading, checking or listing a config
needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import ACTIVATIONS, PretrainedConfig
from ..errors import BertForgeError

__all__ = ["ALBERT_PRESETS", "ALBERT_PRESET_ALIASES", "AlbertConfig", "albert_preset_names"]


@dataclass
class AlbertConfig(PretrainedConfig):
    """Architecture of an ALBERT model, with transformers' field names and defaults (which are
    ALBERT-xxlarge's: H 4096, 64 heads, feed-forward 16384). Use :meth:`from_preset` for the
    published sizes (``albert-base`` ... ``albert-xxlarge``) and tiny ones for CPU runs."""

    model_type: ClassVar[str] = "albert"

    vocab_size: int = 30000
    embedding_size: int = 128
    hidden_size: int = 4096
    num_hidden_layers: int = 12
    num_hidden_groups: int = 1
    num_attention_heads: int = 64
    intermediate_size: int = 16384
    inner_group_num: int = 1
    hidden_act: str = "gelu_new"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    classifier_dropout_prob: float | None = 0.1
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: Any = 3
    tie_word_embeddings: bool = True

    def validate(self) -> None:
        """Raise :class:`BertForgeError` naming the first invalid value and how to fix it."""
        self._check_positive(
            "vocab_size",
            "embedding_size",
            "hidden_size",
            "num_hidden_layers",
            "num_hidden_groups",
            "num_attention_heads",
            "intermediate_size",
            "inner_group_num",
            "max_position_embeddings",
            "type_vocab_size",
        )
        if self.hidden_size % self.num_attention_heads != 0:
            suggestion = max(d for d in range(1, self.num_attention_heads + 1) if self.hidden_size % d == 0)
            raise BertForgeError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}); try num_attention_heads={suggestion}"
            )
        if self.num_hidden_groups > self.num_hidden_layers:
            # Layer i runs group int(i / (L / G)): with G > L some groups would never run.
            raise BertForgeError(
                f"num_hidden_groups ({self.num_hidden_groups}) must not exceed num_hidden_layers "
                f"({self.num_hidden_layers}): layer i runs group int(i / (num_hidden_layers / "
                "num_hidden_groups)), so the extra groups would never be used"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise BertForgeError(
                f"hidden_act {self.hidden_act!r} is not supported; choose from {', '.join(ACTIVATIONS)}"
            )
        self._check_probabilities(
            "hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout_prob"
        )
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise BertForgeError(
                f"pad_token_id ({self.pad_token_id}) must be in [0, vocab_size={self.vocab_size})"
            )
        if self.layer_norm_eps <= 0:
            raise BertForgeError(
                f"layer_norm_eps ({self.layer_norm_eps}) must be positive; ALBERT uses 1e-12"
            )
        if self.initializer_range <= 0:
            raise BertForgeError(
                f"initializer_range ({self.initializer_range}) must be positive; ALBERT uses 0.02"
            )
        # Older transformers wrote this key for ALBERT; only absolute positions are implemented.
        position_type = self.extra.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise BertForgeError(
                f"position_embedding_type {position_type!r} is not supported; bertforge implements "
                "ALBERT's absolute positions ('absolute')"
            )
        if self.pruned_heads:
            raise BertForgeError(
                "config has pruned_heads: pruning ALBERT's attention heads is not supported (its "
                "layers share one set of parameters); remove pruned_heads or use an unpruned checkpoint"
            )
        super().validate()

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def group_index(self, layer: int) -> int:
        """The parameter group layer ``layer`` runs: transformers' ``int(i / (L / G))``, float
        division included, so every (L, G) maps layers to groups exactly as transformers does."""
        return int(layer / (self.num_hidden_layers / self.num_hidden_groups))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> AlbertConfig:
        """A named architecture: ``albert-tiny``, ``albert-mini``, ``albert-small``, or the published
        ``albert-base``/``-large``/``-xlarge``/``-xxlarge`` (v2; ``-v2`` suffixes accepted)."""
        canonical = ALBERT_PRESET_ALIASES.get(name, name)
        if canonical not in ALBERT_PRESETS:
            raise BertForgeError(
                f"unknown ALBERT preset {name!r}; choose from {', '.join(albert_preset_names())}"
            )
        return cls(**{**ALBERT_PRESETS[canonical], **overrides})


def _size(embedding: int, hidden: int, layers: int, heads: int, intermediate: int) -> dict[str, Any]:
    return {
        "embedding_size": embedding,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
    }


# The published sizes are those of the v2 checkpoints' config.json (all share every layer: one group
# of one layer, E 128, vocab 30000, gelu_new, no dropout); the small ones are for CPU runs and tests.
ALBERT_PRESETS: dict[str, dict[str, Any]] = {
    "albert-tiny": _size(64, 128, 4, 2, 512),
    "albert-mini": _size(128, 256, 4, 4, 1024),
    "albert-small": _size(128, 512, 6, 8, 2048),
    "albert-base": _size(128, 768, 12, 12, 3072),
    "albert-large": _size(128, 1024, 24, 16, 4096),
    "albert-xlarge": _size(128, 2048, 24, 16, 8192),
    "albert-xxlarge": _size(128, 4096, 12, 64, 16384),
}
ALBERT_PRESET_ALIASES: dict[str, str] = {
    f"{name}-v2": name for name in ("albert-base", "albert-large", "albert-xlarge", "albert-xxlarge")
}


def albert_preset_names() -> list[str]:
    return [*ALBERT_PRESETS, *ALBERT_PRESET_ALIASES]
