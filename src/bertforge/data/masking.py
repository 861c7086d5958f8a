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

* ``phrase`` — ERNIE 1.0's phrase-level masking: units are jieba words for Chinese (the dataset's
  whole-word flags, as ``whole-word``) and, for other text, chunks of 2-4 consecutive words with no
  punctuation between them (lengths drawn uniformly; a run of words is cut into such chunks, a
  one-word remainder stays a unit of its own) — an approximation of ERNIE's lexical chunker. Units
  are taken whole, in random order, while they fit in the budget (BERT's whole-word greedy).
* ``entity`` — ERNIE 1.0's entity-level masking: units are the spans matching an entity lexicon
  (:func:`load_entity_lexicon`: token-id sequences; longest match first, left to right, only at
  word boundaries); entities are taken whole, in random order, while they fit in the budget, and the
  rest of the budget is filled with basic (token) masking of the remaining tokens.

For ``token``, ``whole-word`` and ``ngram`` the 80/10/10 decision is made per token, as in the
originals; for ``span`` per span, for ``phrase``/``entity`` per phrase or entity (ERNIE draws one
number per unit), and per token for the basic remainder. Random replacements are drawn from the
vocabulary without the special ids.

Options on top of a strategy:

* ``span_boundary`` (``span`` only) — SpanBERT's span-boundary objective needs, for every masked
  token, the positions of the tokens just outside its span (s-1 and e+1) and its 0-based offset
  inside the span: :func:`mask_instance_with_boundaries` returns them.
* ``correction`` (MacBERT's MLM as correction; with ``whole-word`` or ``ngram`` selection, as MacBERT) — chosen words are never replaced by [MASK]: per word, with probability
  ``mask_token_prob`` (0.8) by a similar word of the same token length from ``tables.similar``
  (:func:`load_similar_words` or :func:`similar_words_from_embeddings`), with ``random_token_prob``
  (0.1) by random tokens, else kept. A word without a similar word of its token length gets random
  tokens instead, as MacBERT does.

Where the parts live: the config in :mod:`.masking_config`; whole-word, n-gram and span
selection in :mod:`.masking_selection`; ERNIE's phrase and entity units in :mod:`.masking_ernie`;
80/10/10 and MacBERT's correction in :mod:`.masking_corruption`; the similar-word, entity and
vocabulary tables in :mod:`.masking_tables`. This module draws the budget and dispatches, and
re-exports their public names.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

from ..errors import BertForgeError
from .masking_config import CORRECTION_STRATEGIES, STRATEGIES, MaskingConfig
from .masking_corruption import correct_with_similar_words, corrupt_80_10_10
from .masking_ernie import entity_units, phrase_units
from .masking_selection import ngram_probs, select_ngrams, select_spans, select_whole_words, span_length_probs
from .masking_tables import (
    MaskingTables,
    build_masking_tables,
    dataset_words,
    load_entity_lexicon,
    load_similar_words,
    similar_words_from_embeddings,
    vocabulary_classes,
)

# Re-exported: callers imported these from here before the parts had modules of their own.
__all__ = [
    "CORRECTION_STRATEGIES",
    "STRATEGIES",
    "MaskingConfig",
    "MaskingTables",
    "build_masking_tables",
    "dataset_words",
    "entity_units",
    "load_entity_lexicon",
    "load_similar_words",
    "mask_instance",
    "mask_instance_with_boundaries",
    "masking_rng",
    "ngram_probs",
    "phrase_units",
    "select_ngrams",
    "select_spans",
    "similar_words_from_embeddings",
    "span_length_probs",
    "vocabulary_classes",
]

_MASK_STREAM = 0x4D41534B  # "MASK": keeps masking draws apart from the instance planner's


def masking_rng(seed: int, copy: int, index: int) -> np.random.Generator:
    """The generator for instance ``index`` of epoch (or static copy) ``copy``: independent of order."""
    return np.random.Generator(np.random.PCG64([_MASK_STREAM, seed, copy, index]))


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
    tables: MaskingTables | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mask one unpadded instance: (masked input_ids int64 [L], labels int64 [L], -100 = not predicted)."""
    masked, labels, _ = _mask(
        input_ids,
        word_starts,
        special_mask,
        config,
        rng,
        vocab_size,
        mask_token_id,
        special_ids,
        tables,
        False,
    )
    return masked, labels


def mask_instance_with_boundaries(
    input_ids: np.ndarray,
    word_starts: np.ndarray,
    special_mask: np.ndarray,
    config: MaskingConfig,
    rng: np.random.Generator,
    vocab_size: int,
    mask_token_id: int,
    special_ids: Iterable[int],
    tables: MaskingTables | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`mask_instance` (same draws, same result) plus int64 [3, L] span boundaries for SpanBERT's
    SBO: at each predicted position, row 0 = the position just left of its span (s - 1), row 1 = the
    one just right of it (e + 1), row 2 = its 0-based offset inside the span; 0 elsewhere. Only span
    masking has spans; other strategies give all zeros."""
    masked, labels, bounds = _mask(
        input_ids,
        word_starts,
        special_mask,
        config,
        rng,
        vocab_size,
        mask_token_id,
        special_ids,
        tables,
        True,
    )
    assert bounds is not None
    return masked, labels, bounds


def _mask(
    input_ids: np.ndarray,
    word_starts: np.ndarray,
    special_mask: np.ndarray,
    config: MaskingConfig,
    rng: np.random.Generator,
    vocab_size: int,
    mask_token_id: int,
    special_ids: Iterable[int],
    tables: MaskingTables | None,
    boundaries: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    input_ids = np.asarray(input_ids, dtype=np.int64)
    is_special, replacements = _vocab_tables(vocab_size, tuple(sorted(set(special_ids))))
    maskable = ~np.asarray(special_mask, dtype=np.bool_) & ~is_special[input_ids]
    candidates = np.flatnonzero(maskable)  # [n]
    masked = input_ids.copy()
    labels = np.full(len(input_ids), -100, dtype=np.int64)
    bounds = np.zeros((3, len(input_ids)), dtype=np.int64) if boundaries else None
    if len(candidates) == 0:
        return masked, labels, bounds
    budget = min(config.max_predictions_per_seq, max(1, int(round(len(candidates) * config.mlm_probability))))

    def corrupt(
        positions: np.ndarray, decisions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        corrupt_80_10_10(masked, labels, positions, decisions, config, rng, mask_token_id, replacements)
        return masked, labels, bounds

    if config.strategy == "token":
        positions = rng.permutation(candidates)[:budget]
        return corrupt(positions, rng.random(len(positions)))

    # Words among the maskable tokens: a word starts at a word start or after a non-maskable token.
    starts = np.asarray(word_starts, dtype=np.bool_)[candidates]
    starts[1:] |= np.diff(candidates) != 1
    starts[0] = True
    word_of = np.cumsum(starts) - 1  # [n] word index of each candidate
    word_first = np.flatnonzero(starts)  # [W] candidate index of each word's first token
    word_len = np.diff(np.append(word_first, len(candidates)))  # [W]
    word_pos = candidates[word_first]  # [W] position of each word's first token
    if config.strategy in ("whole-word", "ngram"):
        if config.strategy == "whole-word":
            chosen = select_whole_words(word_len, budget, rng)
        else:
            chosen = np.zeros(len(word_len), dtype=np.bool_)
            for start, n in select_ngrams(word_len, word_pos, budget, config.max_ngram, rng):
                chosen[start : start + n] = True
        picked = chosen[word_of]
        positions = candidates[picked]
        if config.correction:
            similar = tables.similar if tables is not None else None
            correct_with_similar_words(
                masked, labels, positions, word_of[picked], config, rng, replacements, similar
            )
            return masked, labels, bounds
        return corrupt(positions, rng.random(len(positions)))
    if config.strategy == "span":
        spans = select_spans(word_len, word_pos, budget, config, rng)
        positions = np.concatenate([candidates[a:b] for a, b in spans])
        per_span = rng.random(len(spans))
        decisions = np.repeat(per_span, [b - a for a, b in spans])
        if bounds is not None:
            last = len(input_ids) - 1
            for a, b in spans:
                span = candidates[a:b]  # contiguous: spans never cross a non-maskable token
                bounds[0, span] = span[0] - 1
                bounds[1, span] = min(int(span[-1]) + 1, last)
                bounds[2, span] = np.arange(b - a)
        return corrupt(positions, decisions)

    # ERNIE: whole units (phrases or entities) while they fit, one 80/10/10 draw per unit.
    if config.strategy == "phrase":
        units = phrase_units(word_len, word_pos, input_ids[word_pos], tables, rng)
    else:
        entities = tables.entities if tables is not None else None
        units = entity_units(input_ids, candidates, starts, word_of, entities or {})
    unit_first = np.array([word_first[w] for w, _ in units], dtype=np.int64)  # candidate index
    unit_len = np.array([int(word_len[w : w + n].sum()) for w, n in units], dtype=np.int64)  # tokens per unit
    chosen_units = np.flatnonzero(select_whole_words(unit_len, budget, rng))
    pieces = [candidates[unit_first[u] : unit_first[u] + unit_len[u]] for u in chosen_units]
    positions = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    decisions = np.repeat(rng.random(len(chosen_units)), unit_len[chosen_units])
    rest = budget - len(positions)
    if config.strategy == "entity" and rest > 0:
        # ERNIE falls back to basic-level masking: single tokens among those left.
        left = np.setdiff1d(candidates, positions, assume_unique=True)
        basic = rng.permutation(left)[:rest]
        positions = np.concatenate([positions, basic])
        decisions = np.concatenate([decisions, rng.random(len(basic))])
    return corrupt(positions, decisions)
