"""Masking: budgets, the 80/10/10 split, and the token / whole-word / span / n-gram strategies.

Statistical checks allow 4 binomial standard deviations, so a correct implementation fails about
once in 16,000 runs per check — and the seeds are fixed, so it never flakes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from _data_helpers import CLS, MASK, PAD, SEP, SPECIAL_IDS, UNK
from bertforge.data.masking import (
    MaskingConfig,
    mask_instance,
    masking_rng,
    ngram_probs,
    select_ngrams,
    select_spans,
    span_length_probs,
)
from bertforge.errors import BertForgeError

VOCAB = 30_000


def within(count: float, n: int, p: float, sds: float = 4.0) -> bool:
    return abs(count - n * p) <= sds * math.sqrt(n * p * (1 - p))


def pair_instance(rng: np.random.Generator, length: int = 128, continuation: float = 0.3):
    """[CLS] A [SEP] B [SEP] with random ids and word starts: (ids, word_starts, special_mask)."""
    ids = rng.integers(5, VOCAB, size=length)
    special = np.zeros(length, dtype=np.bool_)
    middle = int(rng.integers(2, length - 2))
    special[[0, middle, length - 1]] = True
    ids[0], ids[middle], ids[-1] = CLS, SEP, SEP
    starts = rng.random(length) >= continuation
    starts[special] = True
    starts[middle + 1] = starts[1] = True  # a segment starts with a word
    return ids, starts, special


def words(starts: np.ndarray) -> list[np.ndarray]:
    """Token positions of each word (a start and its continuations)."""
    return np.split(np.arange(len(starts)), np.flatnonzero(starts)[1:])


def run(config: MaskingConfig, ids, starts, special, seed: int):
    return mask_instance(ids, starts, special, config, masking_rng(0, 0, seed), VOCAB, MASK, SPECIAL_IDS)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"strategy": "spam"}, "'spam'"),
        ({"mlm_probability": 0.0}, "mlm_probability=0.0"),
        ({"mask_token_prob": 0.9, "random_token_prob": 0.2}, "exceeds 1"),
        ({"random_token_prob": -0.1}, "random_token_prob=-0.1"),
        ({"max_predictions_per_seq": 0}, "max_predictions_per_seq=0"),
        ({"span_geometric_p": 0.0}, "span_geometric_p=0.0"),
        ({"max_ngram": 0}, "max_ngram=0"),
        ({"dupe_factor": 0}, "dupe_factor=0"),
    ],
)
def test_masking_config_rejects_bad_values_naming_them(kwargs, named):
    with pytest.raises(BertForgeError, match=named):
        MaskingConfig(**kwargs)


def test_token_masking_predicts_15_percent_split_80_10_10():
    config = MaskingConfig(max_predictions_per_seq=1000)
    data = np.random.default_rng(0)
    chosen = as_mask = as_random = unchanged = 0
    for i in range(600):
        ids, starts, special = pair_instance(data)
        masked, labels = run(config, ids, starts, special, i)
        picked = labels != -100
        assert picked.sum() == round(125 * 0.15)  # 125 maskable tokens: 18.75 -> 19
        np.testing.assert_array_equal(labels[picked], ids[picked])
        np.testing.assert_array_equal(masked[~picked], ids[~picked])
        chosen += int(picked.sum())
        as_mask += int((masked[picked] == MASK).sum())
        unchanged += int((masked[picked] == ids[picked]).sum())
        as_random += int(((masked[picked] != MASK) & (masked[picked] != ids[picked])).sum())
    assert within(as_mask, chosen, 0.8)
    assert within(as_random, chosen, 0.1)
    assert within(unchanged, chosen, 0.1)


def test_token_masking_chooses_positions_uniformly():
    config = MaskingConfig()
    data = np.random.default_rng(1)
    ids, starts, special = pair_instance(data)
    counts = np.zeros(len(ids))
    for i in range(2000):
        counts += run(config, ids, starts, special, i)[1] != -100
    rate = counts[~special] / 2000
    expected = 19 / 125
    assert np.all(np.abs(rate - expected) < 5 * math.sqrt(expected * (1 - expected) / 2000))


@pytest.mark.parametrize("strategy", ["token", "whole-word", "span", "ngram"])
def test_budget_follows_the_original_formula_and_the_cap(strategy):
    data = np.random.default_rng(2)
    for cap, length, expected in ((20, 128, 19), (5, 128, 5), (20, 12, 1), (20, 40, 6)):
        config = MaskingConfig(strategy=strategy, max_predictions_per_seq=cap)
        for i in range(20):
            ids, starts, special = pair_instance(data, length=length, continuation=0.0)
            labels = run(config, ids, starts, special, i)[1]
            # Single-token words: every strategy can fill its budget exactly.
            assert (labels != -100).sum() == min(cap, max(1, round((length - 3) * 0.15))) == expected


@pytest.mark.parametrize("strategy", ["token", "whole-word", "span", "ngram"])
def test_specials_padding_and_unk_are_never_masked_nor_used_as_replacements(strategy):
    config = MaskingConfig(
        strategy=strategy, mlm_probability=0.5, max_predictions_per_seq=100, random_token_prob=0.2
    )
    data = np.random.default_rng(3)
    for i in range(100):
        ids, starts, special = pair_instance(data, length=60)
        ids[data.integers(1, 59, size=4)] = UNK
        ids[-10:-1], special[-1] = PAD, False  # padding that is not in special_mask: its id still excludes it
        masked, labels = run(config, ids, starts, special, i)
        forbidden = special | np.isin(ids, SPECIAL_IDS)
        assert (labels[forbidden] == -100).all()
        np.testing.assert_array_equal(masked[forbidden], ids[forbidden])
        replaced = (labels != -100) & (masked != MASK)
        assert not np.isin(masked[replaced], SPECIAL_IDS).any()


def test_random_replacements_spread_over_the_whole_non_special_vocabulary():
    config = MaskingConfig(
        mask_token_prob=0.0, random_token_prob=1.0, mlm_probability=1.0, max_predictions_per_seq=200
    )
    ids = np.full(202, 7)
    ids[0], ids[-1] = CLS, SEP
    special = np.zeros(202, dtype=np.bool_)
    special[[0, -1]] = True
    masked, labels = mask_instance(
        ids, np.ones(202, bool), special, config, masking_rng(0, 0, 0), 12, MASK, SPECIAL_IDS
    )
    assert (labels[1:-1] == 7).all()
    assert set(masked[1:-1].tolist()) == set(range(5, 12))


def test_an_instance_without_maskable_tokens_gets_no_labels():
    ids = np.array([CLS, SEP, SEP])
    special = np.ones(3, dtype=np.bool_)
    masked, labels = mask_instance(
        ids, special, special, MaskingConfig(), masking_rng(0, 0, 0), VOCAB, MASK, SPECIAL_IDS
    )
    np.testing.assert_array_equal(masked, ids)
    assert (labels == -100).all()


@pytest.mark.parametrize("strategy", ["whole-word", "span", "ngram"])
def test_word_strategies_mask_all_pieces_of_a_word_or_none(strategy):
    config = MaskingConfig(strategy=strategy)
    data = np.random.default_rng(4)
    for i in range(300):
        ids, starts, special = pair_instance(data, continuation=0.6)
        labels = run(config, ids, starts, special, i)[1]
        partial = 0
        for word in words(starts):
            picked = labels[word] != -100
            partial += bool(picked.any() and not picked.all())
        # SpanBERT cuts its last span at the budget, which can split one word per instance.
        assert partial <= (1 if strategy == "span" else 0)


def test_whole_word_masking_can_group_pieces_that_token_masking_splits():
    data = np.random.default_rng(5)
    ids, starts, special = pair_instance(data, continuation=0.6)
    split = 0
    for i in range(100):
        labels = run(MaskingConfig(strategy="token"), ids, starts, special, i)[1]
        split += sum(0 < (labels[w] != -100).sum() < len(w) for w in words(starts))
    assert split > 0  # the whole-word test above can fail


def test_span_lengths_follow_the_geometric_distribution_in_words():
    config = MaskingConfig(strategy="span")
    probs = span_length_probs(0.2, 10)
    mean = float((np.arange(1, 11) * probs).sum())
    sd = math.sqrt(float((np.arange(1, 11) ** 2 * probs).sum()) - mean**2)
    assert 3.7 < mean < 3.9  # SpanBERT reports a mean span of 3.8 words
    n_words = 4000
    word_len = np.ones(n_words, dtype=np.int64)
    word_pos = np.arange(n_words)
    lengths: list[int] = []
    for i in range(40):
        spans = select_spans(word_len, word_pos, 100, config, np.random.default_rng(i))
        assert sum(b - a for a, b in spans) == 100
        lengths += [b - a for a, b in spans[:-1]]  # the last span is cut at the budget
    assert max(lengths) <= 10
    assert abs(np.mean(lengths) - mean) < 4 * sd / math.sqrt(len(lengths))


def test_spans_start_at_words_and_never_cross_a_separator():
    config = MaskingConfig(strategy="span")
    # 600 words of 1-3 tokens; a separator (a gap in positions) after every 7th word.
    word_len = np.random.default_rng(6).integers(1, 4, size=600)
    word_pos = np.cumsum(np.concatenate([[1], word_len[:-1]])) + np.arange(600) // 7
    first_token = np.concatenate([[0], np.cumsum(word_len)])  # candidate index of each word's start
    starts = set(first_token.tolist())
    for i in range(50):
        spans = select_spans(word_len, word_pos, 120, config, np.random.default_rng(i))
        for a, b in spans:
            assert a in starts
            first_word = int(np.searchsorted(first_token, a))
            last_word = int(np.searchsorted(first_token, b - 1, side="right")) - 1
            assert first_word // 7 == last_word // 7, "a span stays between two separators"


def test_span_masking_decides_80_10_10_per_span():
    config = MaskingConfig(strategy="span", mlm_probability=0.03, max_predictions_per_seq=1000)
    data = np.random.default_rng(7)
    mixed = runs = 0
    for i in range(100):
        ids, starts, special = pair_instance(data, length=1000, continuation=0.0)
        masked, labels = run(config, ids, starts, special, i)
        picked = labels != -100
        for segment in np.split(np.arange(len(ids)), np.flatnonzero(np.diff(picked)) + 1):
            if picked[segment[0]] and len(segment) >= 3:
                runs += 1
                is_mask = masked[segment] == MASK
                mixed += bool(is_mask.any() and not is_mask.all())
    # Per-token decisions would mix [MASK] and other tokens in ~half the runs; per span only
    # where two spans happen to touch.
    assert runs > 200
    assert mixed < 0.1 * runs


def test_ngram_lengths_are_proportional_to_one_over_n():
    probs = ngram_probs(3)
    np.testing.assert_allclose(probs, np.array([6, 3, 2]) / 11)
    n_words = 3000
    counts = np.zeros(4, dtype=np.int64)
    for i in range(40):
        ngrams = select_ngrams(
            np.ones(n_words, np.int64), np.arange(n_words), 90, 3, np.random.default_rng(i)
        )
        assert sum(n for _, n in ngrams) == 90
        for _, n in ngrams[:-1]:  # the last may have been shortened to fit the budget
            counts[n] += 1
    total = int(counts.sum())
    for n in (1, 2, 3):
        assert within(counts[n], total, probs[n - 1])


def test_ngrams_are_shortened_at_separators():
    # Words of one token; every other position is a separator, so only 1-grams fit.
    word_pos = np.arange(0, 200, 2)
    ngrams = select_ngrams(np.ones(100, np.int64), word_pos, 30, 3, np.random.default_rng(0))
    assert {n for _, n in ngrams} == {1}


def test_masks_are_a_pure_function_of_seed_copy_and_index():
    data = np.random.default_rng(8)
    ids, starts, special = pair_instance(data)
    for strategy in ("token", "whole-word", "span", "ngram"):
        config = MaskingConfig(strategy=strategy)

        def mask(seed, copy, index, config=config):
            rng = masking_rng(seed, copy, index)
            return mask_instance(ids, starts, special, config, rng, VOCAB, MASK, SPECIAL_IDS)[1]

        np.testing.assert_array_equal(mask(1, 2, 3), mask(1, 2, 3))
        for other in ((2, 2, 3), (1, 3, 3), (1, 2, 4)):
            assert not np.array_equal(mask(1, 2, 3), mask(*other))
