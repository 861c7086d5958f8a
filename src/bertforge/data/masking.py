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
"""

from __future__ import annotations

import functools
import json
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BertForgeError
from ..fileio import read_text_file

STRATEGIES = ("token", "whole-word", "span", "ngram", "phrase", "entity")
CORRECTION_STRATEGIES = ("whole-word", "ngram")  # MacBERT: whole words and n-grams of them
log = logging.getLogger(__name__)
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


@dataclass
class MaskingTables:
    """Vocabulary-dependent data some strategies need, built once per run (:func:`build_masking_tables`).

    ``similar``: word (tuple of token ids) -> int64 [k, n] similar words of the same token length n
    (``correction``). ``entities``: first token id -> the lexicon's entities (tuples of token ids)
    starting with it, longest first (``entity``). ``punctuation`` / ``cjk``: bool [V] per token id,
    (``phrase``: punctuation separates English chunks, a Chinese word is a phrase by itself).
    """

    similar: dict[tuple[int, ...], np.ndarray] | None = None
    entities: dict[int, list[tuple[int, ...]]] | None = None
    punctuation: np.ndarray | None = None
    cjk: np.ndarray | None = None


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
        _corrupt(masked, labels, positions, decisions, config, rng, mask_token_id, replacements)
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
            chosen = _whole_words(word_len, budget, rng)
        else:
            chosen = np.zeros(len(word_len), dtype=np.bool_)
            for start, n in select_ngrams(word_len, word_pos, budget, config.max_ngram, rng):
                chosen[start : start + n] = True
        picked = chosen[word_of]
        positions = candidates[picked]
        if config.correction:
            similar = tables.similar if tables is not None else None
            _correct(masked, labels, positions, word_of[picked], config, rng, replacements, similar)
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
    chosen_units = np.flatnonzero(_whole_words(unit_len, budget, rng))
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


def _correct(
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


def phrase_units(
    word_len: np.ndarray,
    word_pos: np.ndarray,
    first_ids: np.ndarray,
    tables: MaskingTables | None,
    rng: np.random.Generator,
) -> list[tuple[int, int]]:
    """ERNIE phrases as (first word, number of words): a Chinese (jieba) word or a punctuation
    token is a unit alone; a run of other adjacent words is cut into chunks of 2-4 words (uniform),
    a one-word remainder staying alone. ``first_ids``: the token id each word starts with."""
    n_words = len(word_len)
    breaks = np.zeros(n_words, dtype=np.bool_)
    if tables is not None:
        for table in (tables.punctuation, tables.cjk):
            if table is not None:
                breaks |= table[first_ids]
    adjacent = np.zeros(n_words, dtype=np.bool_)  # word w continues the text of word w-1
    adjacent[1:] = word_pos[1:] == word_pos[:-1] + word_len[:-1]
    sizes = rng.integers(2, 5, size=n_words).tolist()
    units: list[tuple[int, int]] = []
    w = 0
    while w < n_words:
        run = 1
        if not breaks[w]:
            while w + run < n_words and adjacent[w + run] and not breaks[w + run]:
                run += 1
        while run > 0:  # cut the run into chunks
            n = min(sizes[w], run)
            units.append((w, n))
            w += n
            run -= n
    return units


def entity_units(
    input_ids: np.ndarray,
    candidates: np.ndarray,
    starts: np.ndarray,
    word_of: np.ndarray,
    entities: dict[int, list[tuple[int, ...]]],
) -> list[tuple[int, int]]:
    """Lexicon matches as (first word, number of words), left to right, longest match first; a match
    starts and ends on word boundaries and stays inside contiguous maskable text."""
    units: list[tuple[int, int]] = []
    n = len(candidates)
    ids = input_ids[candidates].tolist()
    i = 0
    while i < n:
        found = 0
        if starts[i]:
            for entity in entities.get(ids[i], ()):
                e = i + len(entity)
                if (
                    e <= n
                    and candidates[e - 1] - candidates[i] == e - 1 - i
                    and (e == n or starts[e])
                    and tuple(ids[i:e]) == entity
                ):
                    found = e - i
                    break
        if found:
            units.append((int(word_of[i]), int(word_of[i + found - 1] - word_of[i]) + 1))
            i += found
        else:
            i += 1
    return units


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


# ------------------------------------------------------------------------------- lookup tables
# Built once per run from the tokenizer (and a checkpoint or files), then shared by every phase.


def _encode_words(tokenizer: Any, words: list[str]) -> list[tuple[int, ...]]:
    if not words:
        return []
    encoded = tokenizer(words, add_special_tokens=False)["input_ids"]
    return [tuple(int(i) for i in ids) for ids in encoded]


def load_similar_words(path: str | Path, tokenizer: Any) -> dict[tuple[int, ...], np.ndarray]:
    """MacBERT's similar-word table from a file: lines ``word<TAB>sim1 sim2 ...`` (the similar words
    separated by spaces or tabs) or a JSON object ``{word: [sim, ...]}``. Words are tokenised with
    ``tokenizer``; only similar words with as many tokens as the word are kept (a replacement must
    fill the same positions), so a word may end up with none."""
    hint = "pass --data.similar_words a word<TAB>similar words file, or drop it to use similar_from"
    text = read_text_file(path, "similar-word file", hint)
    pairs: list[tuple[str, list[str]]] = []
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise BertForgeError(f"similar-word file {path} is not valid JSON: {err}") from None
        for word, similar in data.items():
            if not isinstance(similar, list) or not all(isinstance(w, str) for w in similar):
                raise BertForgeError(f"{path}: the similar words of {word!r} must be a list of strings")
            pairs.append((word, similar))
    else:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            word, tab, rest = line.partition("\t")
            if not tab:
                raise BertForgeError(f"{path}:{number}: expected `word<TAB>similar words`, got {line!r}")
            pairs.append((word.strip(), rest.split()))
    words = _encode_words(tokenizer, [w for w, _ in pairs])
    similar_ids = _encode_words(tokenizer, [s for _, sims in pairs for s in sims])
    table: dict[tuple[int, ...], np.ndarray] = {}
    k = 0
    for word_ids, (_, sims) in zip(words, pairs, strict=True):
        options = [s for s in similar_ids[k : k + len(sims)] if len(s) == len(word_ids) and s != word_ids]
        k += len(sims)
        if word_ids and options:
            previous = table.get(word_ids)
            rows = np.array(options, dtype=np.int64)
            table[word_ids] = rows if previous is None else np.concatenate([previous, rows])
    return table


def similar_words_from_embeddings(
    embeddings: Any, words: Iterable[tuple[int, ...]], top_k: int = 10, chunk: int = 1024
) -> dict[tuple[int, ...], np.ndarray]:
    """Nearest neighbours by cosine similarity: a word's vector is the mean of its tokens' input
    embeddings (``embeddings`` [V, H]); each word gets the ``top_k`` most similar *other* words of
    the same token length among ``words``."""
    import torch

    matrix = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    by_length: dict[int, list[tuple[int, ...]]] = {}
    for word in dict.fromkeys(words):
        if word:
            by_length.setdefault(len(word), []).append(word)
    table: dict[tuple[int, ...], np.ndarray] = {}
    for group in by_length.values():
        if len(group) < 2:
            continue
        ids = torch.tensor(group, dtype=torch.long)  # [N, n]
        vectors = torch.nn.functional.normalize(matrix[ids].mean(1), dim=-1)  # [N, H]
        k = min(top_k, len(group) - 1)
        rows = np.asarray(group, dtype=np.int64)
        for lo in range(0, len(group), chunk):
            scores = vectors[lo : lo + chunk] @ vectors.T  # [c, N]
            scores[torch.arange(scores.shape[0]), torch.arange(lo, lo + scores.shape[0])] = -float("inf")
            best = scores.topk(k, dim=1).indices.numpy()
            for r, neighbours in enumerate(best):
                table[group[lo + r]] = rows[neighbours]
    return table


def dataset_words(
    dataset: Any, max_tokens: int = 2_000_000, max_words: int = 50_000
) -> list[tuple[int, ...]]:
    """The most frequent multi-token words (2-4 tokens) in the first ``max_tokens`` tokens of a
    dataset (its whole-word flags): the word inventory a checkpoint's embeddings cannot list."""
    import collections

    counts: collections.Counter[tuple[int, ...]] = collections.Counter()
    seen = 0
    for ids, starts in zip(dataset.shard_arrays("ids"), dataset.shard_arrays("word_starts"), strict=True):
        ids = np.asarray(ids[: max_tokens - seen], dtype=np.int64)
        starts = np.asarray(starts[: len(ids)], dtype=np.bool_)
        first = np.flatnonzero(starts)
        lengths = np.diff(np.append(first, len(ids)))
        values = ids.tolist()
        for a, n in zip(first.tolist(), lengths.tolist(), strict=True):
            if 2 <= n <= 4:
                counts[tuple(values[a : a + n])] += 1
        seen += len(ids)
        if seen >= max_tokens:
            break
    return [word for word, _ in counts.most_common(max_words)]


def load_entity_lexicon(path: str | Path, tokenizer: Any) -> dict[int, list[tuple[int, ...]]]:
    """ERNIE's entity lexicon: one entity per line (blank lines and ``#`` comments skipped),
    tokenised with ``tokenizer``; indexed by first token id, longest entity first."""
    text = read_text_file(path, "entity lexicon", "pass --data.entity_lexicon a file of one entity per line")
    lines = text.splitlines()
    names = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    index: dict[int, list[tuple[int, ...]]] = {}
    for entity in dict.fromkeys(_encode_words(tokenizer, names)):
        if entity:
            index.setdefault(entity[0], []).append(entity)
    for options in index.values():
        options.sort(key=len, reverse=True)
    return index


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")


def vocabulary_classes(tokenizer: Any) -> tuple[np.ndarray, np.ndarray]:
    """(punctuation, cjk) bool [V]: tokens made of punctuation only, and tokens holding a Han character."""
    vocab = tokenizer.get_vocab()
    size = max(len(tokenizer), max(vocab.values()) + 1)
    punctuation = np.zeros(size, dtype=np.bool_)
    cjk = np.zeros(size, dtype=np.bool_)
    for token, i in vocab.items():
        text = token
        for prefix in ("##", "\u0120", "\u2581"):  # WordPiece continuation, byte-level BPE and Unigram spaces
            if token.startswith(prefix) and len(token) > len(prefix):
                text = token[len(prefix) :]
        if text and all(
            unicodedata.category(c).startswith("P") or (c.isascii() and not c.isalnum()) for c in text
        ):
            punctuation[i] = True
        if _HAN.search(text):
            cjk[i] = True
    return punctuation, cjk


_TABLES: dict[tuple[Any, ...], MaskingTables] = {}


def build_masking_tables(
    tokenizer: Any,
    *,
    strategies: Iterable[str] = (),
    correction: bool = False,
    similar_words: str | Path | None = None,
    similar_from: str | Path | None = None,
    similar_top_k: int = 10,
    entity_lexicon: str | Path | None = None,
    dataset: Any = None,
) -> MaskingTables | None:
    """The tables the given strategies need (None when none do), computed once per process and
    arguments: the similar-word table for ``correction`` (from ``similar_words``, else nearest
    neighbours in ``similar_from``'s input embeddings over the vocabulary's whole-word tokens and
    the frequent multi-token words of ``dataset``), the entity lexicon, the punctuation/CJK classes."""
    strategies = tuple(sorted(set(strategies)))
    key = (
        getattr(tokenizer, "fingerprint", lambda: id(tokenizer))(),
        strategies, correction, str(similar_words), str(similar_from), similar_top_k, str(entity_lexicon),
        str(getattr(dataset, "path", id(dataset))),
    )  # fmt: skip
    if key in _TABLES:
        return _TABLES[key]
    tables = MaskingTables()
    needed = False
    if correction:
        needed = True
        if similar_words is not None:
            tables.similar = load_similar_words(similar_words, tokenizer)
            source = f"file {similar_words}"
        elif similar_from is not None:
            tables.similar = _similar_from_checkpoint(tokenizer, similar_from, similar_top_k, dataset)
            source = f"the input embeddings of {similar_from}"
        else:
            raise BertForgeError(
                "correction (MacBERT) needs similar words: set data.similar_words FILE or "
                "data.similar_from CHECKPOINT"
            )
        log.info("MacBERT similar words for %d words, from %s", len(tables.similar), source)
    if "entity" in strategies:
        needed = True
        if entity_lexicon is None:
            raise BertForgeError(
                "entity masking needs a lexicon: set data.entity_lexicon FILE (one entity a line)"
            )
        tables.entities = load_entity_lexicon(entity_lexicon, tokenizer)
        log.info("entity lexicon %s: %d entities", entity_lexicon, sum(map(len, tables.entities.values())))
    if "phrase" in strategies:
        needed = True
        tables.punctuation, tables.cjk = vocabulary_classes(tokenizer)
    result = tables if needed else None
    _TABLES[key] = result  # type: ignore[assignment]
    return result


def _similar_from_checkpoint(
    tokenizer: Any, checkpoint: str | Path, top_k: int, dataset: Any
) -> dict[tuple[int, ...], np.ndarray]:
    from ..auto import AutoModel

    model = AutoModel.from_pretrained(checkpoint)
    weight = model.get_submodule("embeddings.word_embeddings").weight.detach().float().numpy()
    if weight.shape[0] != len(tokenizer):
        raise BertForgeError(
            f"data.similar_from {checkpoint} has {weight.shape[0]} word embeddings, the tokenizer "
            f"{len(tokenizer)} tokens; use a checkpoint with this vocabulary"
        )
    special = set(tokenizer.all_special_ids)
    words: list[tuple[int, ...]]
    if hasattr(tokenizer, "word_start_table"):  # which tokens begin a word (no ##, or a Ġ/▁ one)
        starts = tokenizer.word_start_table()
        words = [(i,) for i in np.flatnonzero(starts).tolist() if i not in special]
    else:
        words = [
            (i,) for t, i in tokenizer.get_vocab().items() if i not in special and not t.startswith("##")
        ]
    if dataset is not None:
        words += dataset_words(dataset)
    return similar_words_from_embeddings(weight, words, top_k)
