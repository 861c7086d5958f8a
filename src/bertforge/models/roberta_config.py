"""RoBERTa's configuration: :class:`RobertaConfig`, with transformers' ``config.json`` field names and
roberta-base's defaults, and the named presets (the compact grid, ``roberta-base``, ``roberta-large``).

Kept apart from the modules in :mod:`bertforge.models.roberta`, as transformers keeps
``configuration_roberta.py`` apart from ``modeling_roberta.py``: reading, checking or listing a config
needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import ACTIVATIONS, PretrainedConfig
from ..errors import BertForgeError

__all__ = ["ROBERTA_PRESETS", "ROBERTA_PRESET_ALIASES", "RobertaConfig", "roberta_preset_names"]


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
