"""Choose the tokens a masked-language-model predicts, and corrupt them (BERT's 80/10/10).

``mask_instance`` is a pure function of its inputs and ``rng``: the caller seeds ``rng`` from
(seed, epoch or static copy, instance index) — see :func:`masking_rng` — so a batch is the same
whichever rank, world size or resumed run produces it.

Budget, as in google-research/bert: ``min(max_predictions_per_seq, max(1, round(n * p)))`` where n
counts the maskable tokens (everything except [CLS]/[SEP] and any id in ``special_ids``; so [PAD]
and [UNK] are never targets either). Strategies:

* ``token`` — BERT: a uniform sample of ``budget`` maskable positions.
* ``whole-word`` — BERT's whole-word masking: words (a word start and its ``##`` pieces, or a
  jieba word of CJK characters, per ``word_starts``) in random order, each taken whole if it still
  fits in the budget, skipped otherwise.
* ``span`` — SpanBERT: span lengths in whole words drawn from a geometric distribution with
  ``p = span_geometric_p`` over 1..``max_span_length``, renormalised as SpanBERT's code does (which
  is what gives the paper's mean of 3.8 words for p=0.2, max 10); each span starts at a random
  unmasked word and stops early at a [SEP] or an already masked word; spans are added until the
  token budget is spent (the last one is cut at the budget, as in SpanBERT). The 80/10/10 decision
  is made once per span.
* ``ngram`` — ALBERT: an n-gram of whole words, n ≤ ``max_ngram`` with p ∝ 1/n, starting at each
  word in random order; an n-gram that would overflow the budget is shortened, one overlapping
  already chosen words is skipped (ALBERT's ``create_masked_lm_predictions``).

For ``token``, ``whole-word`` and ``ngram`` the 80/10/10 decision is made per token, as in the
originals. Random replacements are drawn from the vocabulary without the special ids.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import BertForgeError

STRATEGIES = ("token", "whole-word", "span", "ngram")
_MASK_STREAM = 0x4D41534B  # "MASK": keeps masking draws apart from the instance planner's


@dataclass
class MaskingConfig:
    """What to predict and how to corrupt it; see the module docstring for the strategies."""

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


def masking_rng(seed: int, copy: int, index: int) -> np.random.Generator:
    """The generator for instance ``index`` of epoch (or static copy) ``copy``: independent of order."""
    return np.random.Generator(np.random.PCG64([_MASK_STREAM, seed, copy, index]))


def span_length_probs(p: float, max_length: int) -> np.ndarray:
    """SpanBERT's span-length distribution over 1..max_length words: geometric(p), renormalised."""
    probs = p * (1.0 - p) ** np.arange(max_length)
    return probs / probs.sum()


def ngram_probs(max_ngram: int) -> np.ndarray:
    """ALBERT's n-gram length distribution over 1..max_ngram: p(n) ∝ 1/n."""
    probs = 1.0 / np.arange(1, max_ngram + 1)
    return probs / probs.sum()


@functools.lru_cache(maxsize=8)
def _vocab_tables(vocab_size: int, special_ids: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(is_special bool [vocab_size], the non-special ids to draw random replacements from)."""
    is_special = np.zeros(vocab_size, dtype=np.bool_)
    specials = [i for i in special_ids if 0 <= i < vocab_size]
    is_special[specials] = True
    replacements = np.flatnonzero(~is_special)
    if len(replacements) == 0:
        raise BertForgeError(f"every id of the vocabulary ({vocab_size}) is special; nothing to mask with")
    return is_special, replacements


def mask_instance(
    input_ids: np.ndarray,
    word_starts: np.ndarray,
    special_mask: np.ndarray,
    config: MaskingConfig,
    rng: np.random.Generator,
    vocab_size: int,
    mask_token_id: int,
    special_ids: Iterable[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Mask one unpadded instance: (masked input_ids int64 [L], labels int64 [L], -100 = not predicted)."""
    input_ids = np.asarray(input_ids, dtype=np.int64)
    is_special, replacements = _vocab_tables(vocab_size, tuple(sorted(set(special_ids))))
    maskable = ~np.asarray(special_mask, dtype=np.bool_) & ~is_special[input_ids]
    candidates = np.flatnonzero(maskable)  # [n]
    masked = input_ids.copy()
    labels = np.full(len(input_ids), -100, dtype=np.int64)
    if len(candidates) == 0:
        return masked, labels
    budget = min(config.max_predictions_per_seq, max(1, int(round(len(candidates) * config.mlm_probability))))

    if config.strategy == "token":
        positions = rng.permutation(candidates)[:budget]
        decisions = rng.random(len(positions))
    else:
        # Words among the maskable tokens: a word starts at a word start or after a non-maskable token.
        starts = np.asarray(word_starts, dtype=np.bool_)[candidates]
        starts[1:] |= np.diff(candidates) != 1
        starts[0] = True
        word_of = np.cumsum(starts) - 1  # [n] word index of each candidate
        word_first = np.flatnonzero(starts)  # [W] candidate index of each word's first token
        word_len = np.diff(np.append(word_first, len(candidates)))  # [W]
        if config.strategy == "whole-word":
            chosen = _whole_words(word_len, budget, rng)
        elif config.strategy == "ngram":
            chosen = np.zeros(len(word_len), dtype=np.bool_)
            for start, n in select_ngrams(word_len, candidates[word_first], budget, config.max_ngram, rng):
                chosen[start : start + n] = True
        else:
            spans = select_spans(word_len, candidates[word_first], budget, config, rng)
            positions = np.concatenate([candidates[a:b] for a, b in spans])
            per_span = rng.random(len(spans))
            decisions = np.repeat(per_span, [b - a for a, b in spans])
            return _corrupt(masked, labels, positions, decisions, config, rng, mask_token_id, replacements)
        positions = candidates[chosen[word_of]]
        decisions = rng.random(len(positions))
    return _corrupt(masked, labels, positions, decisions, config, rng, mask_token_id, replacements)


def _corrupt(
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


def _whole_words(word_len: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
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
    """ALBERT's n-grams as (first word, n), in selection order (see the module docstring).

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
