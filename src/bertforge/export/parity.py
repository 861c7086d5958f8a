"""The texts an export is checked on, and the agreement figures between two runs of a model.

The parity batches vary what a graph with dynamic axes must get right: one text alone (batch 1),
several texts of very different lengths padded together, sentence pairs (two segments), and texts
cut at the model's window; multiple-choice models get (batch, choices, seq) inputs with a number of
choices other than the export example's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Real sentences of varied length and content (punctuation, numbers, names, a non-ASCII word).
TEXTS = (
    "Hello world.",
    "The quick brown fox jumps over the lazy dog.",
    "BERT reads a sentence in both directions at once, which is why it is good at filling gaps.",
    "Paris is the capital of France; it has about 2.1 million inhabitants.",
    "I loved this film!",
    "The committee postponed its decision until next week, citing the need for more data on costs.",
    "Where is the nearest train station?",
    "Zürich and Genève are the largest cities of Switzerland.",
)
PAIRS = (
    ("What is the capital of France?", "Paris is the capital and largest city of France."),
    ("A man is playing a guitar.", "Someone plays an instrument."),
    ("The weather is nice today.", "It is raining heavily and the streets are flooded."),
)
LONG_TEXT = " ".join(TEXTS) * 8

EXAMPLE_BATCH, EXAMPLE_CHOICES = 2, 3  # distinct sizes, neither 0 nor 1 (torch.export specialises those)


def _encode(
    tokenizer: Any, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int
) -> dict[str, np.ndarray]:
    encoding = tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        padding=True,
        truncation=True,
        max_length=max_length,
        return_token_type_ids=True,
        return_attention_mask=True,
        return_tensors="np",
    )
    return {
        k: np.asarray(encoding[k], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")
    }


def _choices(tokenizer: Any, contexts: Sequence[str], choices: int, max_length: int) -> dict[str, np.ndarray]:
    endings = [t for _, t in PAIRS] + list(TEXTS)
    firsts = [c for c in contexts for _ in range(choices)]
    seconds = [endings[(i * 3 + c) % len(endings)] for i in range(len(contexts)) for c in range(choices)]
    flat = _encode(tokenizer, firsts, seconds, max_length)
    return {k: v.reshape(len(contexts), choices, -1) for k, v in flat.items()}


def example_inputs(tokenizer: Any, multiple_choice: bool, max_length: int) -> dict[str, np.ndarray]:
    """The inputs the graph is traced with: padded, EXAMPLE_BATCH rows (x EXAMPLE_CHOICES)."""
    if multiple_choice:
        return _choices(tokenizer, TEXTS[1:3], EXAMPLE_CHOICES, max_length)
    return _encode(tokenizer, TEXTS[1:3], None, max_length)


def parity_batches(tokenizer: Any, multiple_choice: bool, max_length: int) -> list[dict[str, np.ndarray]]:
    """Batches of other sizes than the example's: 1 text; 5 texts of mixed lengths; 3 pairs; a text
    cut at ``max_length`` padded with a short one (multiple choice: 1 x 2, 4 x 4, 3 x 3 long)."""
    if multiple_choice:
        return [
            _choices(tokenizer, TEXTS[:1], 2, max_length),
            _choices(tokenizer, TEXTS[2:6], 4, max_length),
            _choices(tokenizer, [LONG_TEXT, TEXTS[0], TEXTS[4]], 3, max_length),
        ]
    return [
        _encode(tokenizer, TEXTS[6:7], None, max_length),
        _encode(tokenizer, TEXTS[:5], None, max_length),
        _encode(tokenizer, [p[0] for p in PAIRS], [p[1] for p in PAIRS], max_length),
        _encode(tokenizer, [LONG_TEXT, TEXTS[0]], None, max_length),
    ]


def max_abs_diff(ours: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Largest absolute difference per output name."""
    return {name: float(np.abs(ours[name] - reference[name]).max()) for name in reference}


SPAN_OUTPUTS = ("start_logits", "end_logits")  # (B, T): one distribution over positions per row


def argmax_agreement(name: str, ours: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> tuple[int, int]:
    """(agreeing, total) predictions: argmax over the last axis of (B, C) logits per row, of per-token
    (B, T, C) logits per real token, and over the real positions of (B, T) span logits per row."""
    real = mask.astype(bool)
    if name in SPAN_OUTPUTS:
        ours, reference = np.where(real, ours, -np.inf), np.where(real, reference, -np.inf)
    same = ours.argmax(-1) == reference.argmax(-1)
    keep = real if same.shape == real.shape and name not in SPAN_OUTPUTS else np.ones(same.shape, dtype=bool)
    return int(same[keep].sum()), int(keep.sum())


def mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over real tokens, as sentence-transformers pools: (B, T, H) -> (B, H)."""
    weights = mask.astype(np.float64)[..., None]
    return (hidden.astype(np.float64) * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)


def cosine_rows(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``ours`` with the same row of ``reference``."""
    dots = (ours * reference).sum(-1)
    norms = np.linalg.norm(ours, axis=-1) * np.linalg.norm(reference, axis=-1)
    return dots / np.maximum(norms, 1e-12)


def min_cosine(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(cosine_rows(ours, reference).min())
