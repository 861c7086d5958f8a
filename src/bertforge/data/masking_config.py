"""``MaskingConfig``: the masking strategy and its knobs, checked on construction.

The strategies themselves are described in :mod:`.masking`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BertForgeError

STRATEGIES = ("token", "whole-word", "span", "ngram", "phrase", "entity")
CORRECTION_STRATEGIES = ("whole-word", "ngram")  # MacBERT: whole words and n-grams of them


@dataclass
class MaskingConfig:
    """What to predict and how to corrupt it; see the docstring of :mod:`.masking` for the strategies."""

    strategy: str = "token"
    mlm_probability: float = 0.15
    mask_token_prob: float = 0.8  # of chosen positions -> [MASK]
    random_token_prob: float = 0.1  # -> random token; the remainder stays unchanged
    max_predictions_per_seq: int = 20
    span_geometric_p: float = 0.2
    max_span_length: int = 10
    max_ngram: int = 3
    dynamic: bool = True  # False: static masks, dupe_factor fixed copies (epoch e uses copy e % dupe_factor)
    dupe_factor: int = 10
    span_boundary: bool = False  # SpanBERT SBO: also emit each masked token's span boundaries
    correction: bool = False  # MacBERT: similar word / random / keep, never [MASK]

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise BertForgeError(
                f"unknown masking strategy {self.strategy!r}; choose from {', '.join(STRATEGIES)}"
            )
        if not 0.0 < self.mlm_probability <= 1.0:
            raise BertForgeError(f"mlm_probability={self.mlm_probability} must be in (0, 1]; BERT uses 0.15")
        for name in ("mask_token_prob", "random_token_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BertForgeError(f"{name}={value} is not a probability; use a value in [0, 1]")
        if self.mask_token_prob + self.random_token_prob > 1.0 + 1e-9:
            raise BertForgeError(
                f"mask_token_prob + random_token_prob = {self.mask_token_prob + self.random_token_prob:g} "
                "exceeds 1; they are shares of the chosen tokens (BERT: 0.8 and 0.1)"
            )
        for name in ("max_predictions_per_seq", "max_span_length", "max_ngram", "dupe_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BertForgeError(f"{name}={value!r} must be a positive integer")
        if not 0.0 < self.span_geometric_p <= 1.0:
            raise BertForgeError(
                f"span_geometric_p={self.span_geometric_p} must be in (0, 1]; SpanBERT uses 0.2"
            )
        if self.span_boundary and self.strategy != "span":
            raise BertForgeError(
                f'span_boundary needs span masking (SpanBERT); masking is {self.strategy!r}: use masking "span"'
            )
        if self.correction and self.strategy not in CORRECTION_STRATEGIES:
            raise BertForgeError(
                f"correction (MacBERT) replaces whole words, so it needs word selection: masking "
                f"{self.strategy!r} is not one of {', '.join(CORRECTION_STRATEGIES)}"
            )
