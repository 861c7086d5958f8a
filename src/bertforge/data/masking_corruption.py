"""What replaces the chosen tokens: BERT's 80/10/10, and MacBERT's correction (similar words,
never [MASK])."""

from __future__ import annotations

import numpy as np

from .masking_config import MaskingConfig


def corrupt_80_10_10(
    masked: np.ndarray,
    labels: np.ndarray,
    positions: np.ndarray,
    decisions: np.ndarray,
    config: MaskingConfig,
    rng: np.random.Generator,
    mask_token_id: int,
    replacements: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """80/10/10: ``decisions`` (U[0,1) per position) below mask_token_prob -> [MASK], then random."""
    labels[positions] = masked[positions]
    to_mask = decisions < config.mask_token_prob
    to_random = ~to_mask & (decisions < config.mask_token_prob + config.random_token_prob)
    masked[positions[to_mask]] = mask_token_id
    n_random = int(to_random.sum())
    if n_random:
        masked[positions[to_random]] = replacements[rng.integers(len(replacements), size=n_random)]
    return masked, labels


def correct_with_similar_words(
    masked: np.ndarray,
    labels: np.ndarray,
    positions: np.ndarray,
    word_ids: np.ndarray,
    config: MaskingConfig,
    rng: np.random.Generator,
    replacements: np.ndarray,
    similar: dict[tuple[int, ...], np.ndarray] | None,
) -> None:
    """MacBERT: per chosen word (``positions`` ascending, ``word_ids`` the word of each), a similar
    word (mask_token_prob), random tokens (random_token_prob) or unchanged; never [MASK]."""
    labels[positions] = masked[positions]
    if len(positions) == 0:
        return
    first = np.flatnonzero(np.r_[True, word_ids[1:] != word_ids[:-1]])
    bounds = np.append(first, len(positions))
    decisions = rng.random(len(first))
    for k, u in enumerate(decisions.tolist()):
        if u >= config.mask_token_prob + config.random_token_prob:
            continue  # kept
        word = positions[bounds[k] : bounds[k + 1]]
        if u < config.mask_token_prob and similar:
            options = similar.get(tuple(masked[word].tolist()))
            if options is not None and len(options):
                masked[word] = options[rng.integers(len(options))]
                continue
        # random (or no similar word of this length: MacBERT then uses a random word too)
        masked[word] = replacements[rng.integers(len(replacements), size=len(word))]
