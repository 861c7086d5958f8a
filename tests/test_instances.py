"""Instance planning: NSP/SOP segment pairs and RoBERTa full-sentence packing.

The fake corpora are "traceable": every token id is unique, so each instance token can be traced
back to its document, sentence and offset (``dataset.origin``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from _data_helpers import CLS, SEP, FakeTokenDataset, make_corpus
from bertforge.data.instances import InstanceConfig, build_instances, trim_counts
from bertforge.errors import BertForgeError


def segments(instance) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) token ids of a pair instance."""
    ids = instance.input_ids
    assert ids[0] == CLS and ids[-1] == SEP
    first_sep = int(np.flatnonzero(ids == SEP)[0])
    return ids[1:first_sep], ids[first_sep + 1 : -1]


def docs_of(dataset: FakeTokenDataset, ids: np.ndarray) -> set[int]:
    return {dataset.origin[int(t)][0] for t in ids}


def within_tolerance(count: int, n: int, p: float, sds: float = 4.0) -> bool:
    return abs(count - n * p) <= sds * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"objective": "mlm+spam"}, "mlm+spam"),
        ({"max_seq_length": 4}, "max_seq_length=4"),
        ({"short_seq_prob": 1.5}, "short_seq_prob=1.5"),
    ],
)
def test_instance_config_rejects_bad_values_naming_them(kwargs, named):
    with pytest.raises(BertForgeError, match=named.replace("+", r"\+")):
        InstanceConfig(**kwargs)


def test_nsp_labels_are_balanced_and_random_b_comes_from_another_document():
    dataset = make_corpus([80] * 80, min_len=3, max_len=6, seed=1)
    plan = build_instances(dataset, InstanceConfig(max_seq_length=64, short_seq_prob=0.0), seed=3, epoch=0)
    fair = positives = 0
    for instance in plan:
        a, b = segments(instance)
        assert np.all(np.diff(a) == 1) and np.all(np.diff(b) == 1), "segments are contiguous text"
        (doc_a,) = docs_of(dataset, a)
        doc_b = docs_of(dataset, b)
        if instance.sentence_label == 1:
            assert doc_a not in doc_b and len(doc_b) == 1
        else:
            assert doc_b == {doc_a} and b[0] > a[-1]
        # A chunk left with one sentence at a document's end is forced random (as in the original);
        # everywhere else the coin is fair.
        d, s, o = dataset.origin[int(a[-1])]
        if not (s == len(dataset.documents[d]) - 1 and o == len(dataset.documents[d][s]) - 1):
            fair += 1
            positives += instance.sentence_label
    assert fair > 500
    assert within_tolerance(positives, fair, 0.5)


def test_single_sentence_documents_still_give_nsp_instances_with_a_random_b():
    dataset = make_corpus([1] * 30, seed=2)
    plan = build_instances(dataset, InstanceConfig(max_seq_length=32), seed=0, epoch=0)
    assert len(plan) == 30
    for instance in plan:
        a, b = segments(instance)
        assert instance.sentence_label == 1
        assert docs_of(dataset, a).isdisjoint(docs_of(dataset, b))


def test_sop_negatives_are_the_two_segments_swapped():
    # Sentences of exactly 4 tokens and a 32-token target: chunks of 8 sentences, never trimmed.
    dataset = make_corpus([40] * 20, min_len=4, max_len=4, seed=4)
    plan = build_instances(
        dataset, InstanceConfig(objective="mlm+sop", max_seq_length=35, short_seq_prob=0.0), seed=1, epoch=0
    )
    assert not plan.trims.any()
    labels = []
    for instance in plan:
        a, b = segments(instance)
        assert len(docs_of(dataset, np.concatenate([a, b]))) == 1, "both segments from one document"
        in_order = np.concatenate([b, a] if instance.sentence_label else [a, b])
        assert np.all(np.diff(in_order) == 1), "a negative is exactly the positive with A and B swapped"
        labels.append(instance.sentence_label)
    assert within_tolerance(sum(labels), len(labels), 0.5)


def test_sop_skips_and_counts_single_sentence_documents():
    dataset = make_corpus([1, 6, 1, 1, 6], min_len=4, max_len=4, seed=5)
    plan = build_instances(dataset, InstanceConfig(objective="mlm+sop", max_seq_length=16), seed=0, epoch=0)
    assert plan.stats["skipped_single_sentence"] >= 3
    for instance in plan:
        a, b = segments(instance)
        assert len(a) and len(b)
        assert docs_of(dataset, a) <= {1, 4}


@pytest.mark.parametrize("objective", ["mlm+nsp", "mlm+sop", "mlm"])
def test_lengths_never_exceed_max_seq_length_even_for_very_long_sentences(objective):
    dataset = make_corpus([3, 1, 8, 2, 5] * 6, min_len=1, max_len=150, seed=6)
    config = InstanceConfig(objective=objective, max_seq_length=48, short_seq_prob=0.2)
    plan = build_instances(dataset, config, seed=0, epoch=0)
    assert len(plan) > 20
    for instance in plan:
        n = len(instance.input_ids)
        assert 3 <= n <= 48
        for array in (instance.token_type_ids, instance.word_starts, instance.special_mask):
            assert len(array) == n
        assert instance.special_mask.sum() == (instance.input_ids == SEP).sum() + 1
        assert instance.word_starts[instance.special_mask].all()


def test_short_seq_prob_gives_short_targets_to_about_that_share_of_documents():
    dataset = make_corpus([12] * 400, min_len=3, max_len=12, seed=7)
    plan = build_instances(dataset, InstanceConfig(max_seq_length=128, short_seq_prob=0.3), seed=2, epoch=0)
    target_of_doc: dict[int, int] = {}
    for i in range(len(plan)):
        a, _ = segments(plan[i])
        (doc,) = docs_of(dataset, a)
        assert target_of_doc.setdefault(doc, int(plan.targets[i])) == plan.targets[i], (
            "one target per document"
        )
    targets = np.array(list(target_of_doc.values()))
    short = int((targets < 125).sum())
    # randint(2, 125) lands on 125 itself once in 124 draws.
    assert within_tolerance(short, len(targets), 0.3 * 123 / 124)
    assert targets.min() >= 2


def test_full_sentence_packing_crosses_documents_and_uses_every_token_once():
    dataset = make_corpus([1, 2, 7, 3, 1, 4] * 10, min_len=2, max_len=15, seed=8)
    plan = build_instances(dataset, InstanceConfig(objective="mlm", max_seq_length=64), seed=0, epoch=0)
    seen: list[np.ndarray] = []
    crossing = 0
    for instance in plan:
        assert instance.sentence_label == -100
        assert not instance.token_type_ids.any()
        body = instance.input_ids[1:-1]
        runs = np.split(body, np.flatnonzero(body == SEP))
        runs = [run[run != SEP] for run in runs]
        for run in runs:
            assert len(docs_of(dataset, run)) == 1 and np.all(np.diff(run) == 1)
        if len(runs) > 1:
            crossing += 1
            assert len(set().union(*(docs_of(dataset, run) for run in runs))) == len(runs)
        seen.extend(runs)
    assert crossing > len(plan) // 2
    every_token = np.concatenate([s for doc in dataset.documents for s in doc])
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), every_token)


def test_full_sentence_packing_splits_sentences_longer_than_a_block():
    dataset = make_corpus([1, 1], min_len=100, max_len=100, seed=9)
    plan = build_instances(dataset, InstanceConfig(objective="mlm", max_seq_length=34), seed=0, epoch=0)
    lengths = sorted(len(instance.input_ids) - 2 for instance in plan)
    assert lengths == [4, 4, 32, 32, 32, 32, 32, 32]


def test_plans_are_deterministic_per_seed_and_epoch_and_differ_between_epochs():
    dataset = make_corpus([5, 9, 2, 14, 1, 7] * 5, seed=10)
    for objective in ("mlm+nsp", "mlm+sop", "mlm"):
        config = InstanceConfig(objective=objective, max_seq_length=40)

        def ids(seed, epoch, config=config):
            return [tuple(x.input_ids) for x in build_instances(dataset, config, seed, epoch)]

        assert ids(1, 0) == ids(1, 0)
        assert ids(1, 0) != ids(1, 1)
        assert ids(1, 0) != ids(2, 0)


def test_trim_counts_match_truncate_seq_pair_one_token_at_a_time():
    def simulate(len_a, len_b, max_tokens):
        cut_a = cut_b = 0
        while len_a + len_b > max_tokens:
            if len_a > len_b:
                len_a, cut_a = len_a - 1, cut_a + 1
            else:
                len_b, cut_b = len_b - 1, cut_b + 1
        return cut_a, cut_b

    grid = [(a, b, m) for a in range(1, 16) for b in range(1, 16) for m in (2, 5, 9, 20)]
    got_a, got_b = trim_counts(*(np.array(column) for column in zip(*grid, strict=True)))
    expected = [simulate(*case) for case in grid]
    assert list(zip(got_a.tolist(), got_b.tolist(), strict=True)) == expected


def test_empty_sentences_and_documents_are_ignored():
    base = make_corpus([3, 2], min_len=3, max_len=5, seed=11)
    empty = np.zeros(0, dtype=np.int64)
    no_flags = np.zeros(0, dtype=np.bool_)
    docs = [[empty], [empty, *base.documents[0], empty], [], base.documents[1]]
    flags = [[no_flags], [no_flags, *base.word_starts[0], no_flags], [], base.word_starts[1]]
    dataset = FakeTokenDataset(docs, flags, base.vocab_size)
    for objective in ("mlm+nsp", "mlm+sop", "mlm"):
        plan = build_instances(dataset, InstanceConfig(objective=objective, max_seq_length=24), 0, 0)
        assert len(plan) > 0
        for instance in plan:
            assert (instance.input_ids >= 5).sum() > 0


def test_build_instances_needs_cls_and_sep_ids_when_the_dataset_does_not_record_them():
    dataset = make_corpus([3, 3], seed=12)
    dataset.manifest = {}
    with pytest.raises(BertForgeError, match="cls_token_id"):
        build_instances(dataset, InstanceConfig(), 0, 0)
    plan = build_instances(dataset, InstanceConfig(), 0, 0, cls_token_id=CLS, sep_token_id=SEP)
    assert plan[0].input_ids[0] == CLS


def test_a_dataset_without_tokens_is_a_user_error():
    dataset = FakeTokenDataset([[np.zeros(0, dtype=np.int64)]], [[np.zeros(0, dtype=np.bool_)]], 10)
    with pytest.raises(BertForgeError, match="no tokens"):
        build_instances(dataset, InstanceConfig(), 0, 0)


@pytest.mark.parametrize(("seed", "epoch", "named"), [(-1, 0, "seed=-1"), (0, -2, "epoch=-2")])
def test_build_instances_rejects_negative_seed_or_epoch(seed, epoch, named):
    with pytest.raises(BertForgeError, match=named):
        build_instances(make_corpus([3, 3], seed=13), InstanceConfig(), seed, epoch)
