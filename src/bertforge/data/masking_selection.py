"""Which words BERT's whole-word, ALBERT's n-gram and SpanBERT's span masking choose.

Each works on the maskable words of one instance (their token counts and positions) and a
token budget; :func:`.masking.mask_instance` turns the choice into positions and corrupts them.
The rules of each strategy are in the docstring of :mod:`.masking`.
"""

from __future__ import annotations

import numpy as np

from .masking_config import MaskingConfig


def span_length_probs(p: float, max_length: int) -> np.ndarray:
    """SpanBERT's span-length distribution over 1..max_length words: geometric(p), renormalised."""
    probs = p * (1.0 - p) ** np.arange(max_length)
    return probs / probs.sum()


def ngram_probs(max_ngram: int) -> np.ndarray:
    """ALBERT's n-gram length distribution over 1..max_ngram: p(n) ∝ 1/n."""
    probs = 1.0 / np.arange(1, max_ngram + 1)
    return probs / probs.sum()


def select_whole_words(word_len: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """bool [W]: words in random order, each kept if it still fits in the budget (BERT's greedy)."""
    order = rng.permutation(len(word_len))
    lengths = word_len[order]
    total = np.cumsum(lengths)
    chosen = np.zeros(len(word_len), dtype=np.bool_)
    # The prefix that fits is taken whole; after the first word that overflows, the greedy goes on
    # one word at a time, taking the smaller words that still fit.
    n_fit = int(np.searchsorted(total, budget, side="right"))
    chosen[order[:n_fit]] = True
    used = int(total[n_fit - 1]) if n_fit else 0
    for k in range(n_fit + 1, len(order)):
        if used >= budget:
            break
        if used + lengths[k] <= budget:
            chosen[order[k]] = True
            used += int(lengths[k])
    return chosen


def select_ngrams(
    word_len: np.ndarray, word_pos: np.ndarray, budget: int, max_ngram: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """ALBERT's n-grams as (first word, n), in selection order (see the docstring of :mod:`.masking`).

    ``word_len[w]``/``word_pos[w]``: token count and position of maskable word w (words in order).
    """
    n_words = len(word_len)
    probs = ngram_probs(max_ngram)
    cdfs = [np.cumsum(probs[:k]) / probs[:k].sum() for k in range(1, max_ngram + 1)]
    order = rng.permutation(n_words)
    draws = rng.random(n_words)
    covered = np.zeros(n_words, dtype=np.bool_)
    ends = word_pos + word_len  # an n-gram must be contiguous text (not across [SEP])
    chosen: list[tuple[int, int]] = []
    used = 0
    for start, u in zip(order.tolist(), draws.tolist(), strict=True):
        if used >= budget:
            break
        # The longest n-gram available here, then n drawn ∝ 1/n among 1..that.
        available = 1
        while (
            available < max_ngram
            and start + available < n_words
            and word_pos[start + available] == ends[start + available - 1]
        ):
            available += 1
        n = min(int(np.searchsorted(cdfs[available - 1], u, side="right")) + 1, available)
        size = int(word_len[start : start + n].sum())
        while used + size > budget and n > 1:  # shorten rather than overflow
            n -= 1
            size = int(word_len[start : start + n].sum())
        if used + size > budget or covered[start : start + n].any():
            continue
        covered[start : start + n] = True
        chosen.append((start, n))
        used += size
    return chosen


def select_spans(
    word_len: np.ndarray,
    word_pos: np.ndarray,
    budget: int,
    config: MaskingConfig,
    rng: np.random.Generator,
) -> list[tuple[int, int]]:
    """SpanBERT spans as (first, last + 1) indices into the candidate list, in selection order.

    ``word_len[w]``/``word_pos[w]``: token count and position of maskable word w (words in order).
    """
    n_words = len(word_len)
    first = np.concatenate([[0], np.cumsum(word_len)])  # candidate index of each word's first token
    ends = word_pos + word_len
    covered = np.zeros(n_words, dtype=np.bool_)
    lengths = rng.choice(
        np.arange(1, config.max_span_length + 1),
        size=n_words,
        p=span_length_probs(config.span_geometric_p, config.max_span_length),
    ).tolist()
    spans: list[tuple[int, int]] = []
    used = 0
    for k, start in enumerate(rng.permutation(n_words).tolist()):
        if used >= budget:
            break
        if covered[start]:
            continue
        stop = start + 1
        while (
            stop < start + lengths[k]
            and stop < n_words
            and not covered[stop]
            and (word_pos[stop] == ends[stop - 1])
        ):
            stop += 1
        covered[start:stop] = True
        a, b = int(first[start]), int(first[stop])
        b = min(b, a + budget - used)  # the last span is cut at the budget, as in SpanBERT
        spans.append((a, b))
        used += b - a
    return spans
