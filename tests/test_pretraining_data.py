"""PretrainingData: padded batches that are identical across ranks, world sizes and resumes."""

from __future__ import annotations

import dataclasses
import random
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from _data_helpers import CLS, MASK, PAD, SPECIAL_IDS, make_corpus
from bertforge.data.build import build_dataset
from bertforge.data.corpus_index import CorpusIndex
from bertforge.data.dataset import TokenDataset
from bertforge.data.instances import InstanceConfig, build_instances
from bertforge.data.masking import MaskingConfig
from bertforge.data.pretraining import PretrainingData
from bertforge.errors import BertForgeError
from bertforge.tokenizer import BertTokenizer


def make_data(objective="mlm+nsp", strategy="token", dynamic=True, dupe_factor=3, dataset=None, seed=7):
    dataset = dataset or make_corpus([4, 1, 9, 3, 6, 2] * 6, seed=1, traceable=False, vocab_size=500)
    return PretrainingData(
        dataset,
        InstanceConfig(objective=objective, max_seq_length=48),
        MaskingConfig(strategy=strategy, dynamic=dynamic, dupe_factor=dupe_factor),
        mask_token_id=MASK,
        pad_token_id=PAD,
        special_ids=SPECIAL_IDS,
        seed=seed,
    )


def rows(batches) -> list[tuple]:
    """Each row of each batch without its padding, as comparable tuples."""
    out = []
    for batch in batches:
        for r in range(len(batch["input_ids"])):
            n = int(batch["attention_mask"][r].sum())
            row = tuple(tuple(batch[k][r, :n].tolist()) for k in ("input_ids", "token_type_ids", "labels"))
            if "next_sentence_label" in batch:
                row += (int(batch["next_sentence_label"][r]),)
            out.append(row)
    return out


@pytest.mark.parametrize("objective", ["mlm+nsp", "mlm"])
def test_batches_are_padded_to_a_multiple_and_carry_the_objective_labels(objective):
    data = make_data(objective)
    batches = list(data.batches(0, 5, pad_to_multiple_of=8))
    assert len(batches) == data.epoch_size(0) // 5 == data.num_batches(0, 5)
    for batch in batches:
        assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels"} | (
            {"next_sentence_label"} if objective != "mlm" else set()
        )
        ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
        assert ids.dtype == mask.dtype == labels.dtype == torch.int64
        assert ids.shape == mask.shape == labels.shape == batch["token_type_ids"].shape
        assert ids.shape[0] == 5 and ids.shape[1] % 8 == 0 and ids.shape[1] - int(mask.sum(1).max()) < 8
        assert (ids[mask == 0] == PAD).all() and (labels[mask == 0] == -100).all()
        assert (batch["token_type_ids"][mask == 0] == 0).all()
        assert (ids[:, 0] == CLS).all()
        assert ((labels != -100).sum(1) > 0).all()
        assert not torch.isin(labels[labels != -100], torch.tensor(SPECIAL_IDS)).any()
        if objective != "mlm":
            assert batch["next_sentence_label"].dtype == torch.int64
            assert set(batch["next_sentence_label"].tolist()) <= {0, 1}


@pytest.mark.parametrize("world_size", [2, 3])
def test_rank_slices_together_are_the_world_size_1_batch(world_size):
    data = make_data(strategy="whole-word")
    whole = rows(make_data(strategy="whole-word").batches(1, 2 * world_size, prefetch=0))
    per_rank = [list(data.batches(1, 2, rank=r, world_size=world_size)) for r in range(world_size)]
    assert len({len(b) for b in per_rank}) == 1 and len(per_rank[0]) == len(whole) // (2 * world_size)
    interleaved = [
        row for g in range(len(per_rank[0])) for r in range(world_size) for row in rows([per_rank[r][g]])
    ]
    assert interleaved == whole


def test_resuming_from_start_gives_the_same_batches():
    data = make_data(strategy="span")
    full = list(data.batches(2, 4, rank=1, world_size=2))
    resumed = list(make_data(strategy="span").batches(2, 4, start=3, rank=1, world_size=2))
    assert len(resumed) == len(full) - 3
    for a, b in zip(full[3:], resumed, strict=True):
        for key in a:
            assert torch.equal(a[key], b[key])


def test_epochs_differ_and_seeds_differ():
    data = make_data()
    assert rows(data.batches(0, 4)) != rows(data.batches(1, 4))
    assert rows(data.batches(0, 4)) != rows(make_data(seed=8).batches(0, 4))


def test_static_masking_replays_copy_epoch_mod_dupe_factor_in_a_new_order():
    data = make_data(dynamic=False, dupe_factor=3)
    epoch0, epoch3 = rows(data.batches(0, 1)), rows(data.batches(3, 1))
    assert sorted(epoch0) == sorted(epoch3), "same instances, same masks"
    assert epoch0 != epoch3, "visited in another order"
    assert sorted(epoch0) != sorted(rows(data.batches(1, 1)))


def test_dynamic_masking_remasks_every_epoch():
    data = make_data(dynamic=True, dupe_factor=3)
    assert sorted(rows(data.batches(0, 1))) != sorted(rows(data.batches(3, 1)))


def test_prefetching_gives_the_same_batches_and_stops_its_thread_when_abandoned():
    data = make_data()
    inline = rows(data.batches(0, 3, prefetch=0))
    assert rows(data.batches(0, 3, prefetch=4)) == inline
    before = threading.active_count()
    iterator = data.batches(0, 3, prefetch=2)
    next(iterator)
    iterator.close()
    assert threading.active_count() == before


def test_errors_in_the_prefetch_thread_reach_the_consumer():
    data = make_data()

    def broken(index):
        raise RuntimeError("disk gone")

    data.dataset.document = broken
    with pytest.raises(RuntimeError, match="disk gone"):
        list(data.batches(0, 2, prefetch=2))


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"rank": 2, "world_size": 2}, "rank=2"),
        ({"world_size": 0}, "world_size=0"),
        ({"start": -1}, "start=-1"),
        ({"epoch": -1}, "epoch=-1"),
        ({"pad_to_multiple_of": 0}, "pad_to_multiple_of=0"),
    ],
)
def test_bad_batch_arguments_raise_naming_the_value(kwargs, named):
    args = {"epoch": 0, "batch_size": 2, **kwargs}
    with pytest.raises(BertForgeError, match=named):
        make_data().batches(args.pop("epoch"), args.pop("batch_size"), **args)


WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "while",
    "unbelievable",
    "rivers",
    "ran",
    "quickly",
    "under",
    "happy",
    "mountains",
]
HANZI = "我们喜欢模型天下大势分久必合江山风雨人物故事"


def test_batches_from_a_real_built_dataset_restore_to_its_text(tmp_path: Path):
    rng = random.Random(0)
    lines = []
    for d in range(30):
        for _ in range(rng.randint(1, 8)):
            if d % 4 == 3:
                lines.append("".join(rng.choices(HANZI, k=rng.randint(4, 14))) + "。")
            else:
                lines.append(" ".join(rng.choices(WORDS, k=rng.randint(3, 14))).capitalize() + ".")
        lines.append("")
    (tmp_path / "corpus.txt").write_text("\n".join(lines), encoding="utf-8")
    tokenizer = BertTokenizer.train_from_iterator(lines, vocab_size=150, min_frequency=1)
    build_dataset(tmp_path / "corpus.txt", tokenizer, tmp_path / "ds", eval_fraction=0.0, shard_tokens=300)
    dataset = TokenDataset.open(tmp_path / "ds")
    assert len(dataset.shard_names) > 2
    documents = [np.concatenate(dataset.document(d)).tolist() for d in range(len(dataset))]

    # Instances sliced straight from the shards equal those assembled through document().
    for objective in ("mlm+nsp", "mlm"):
        plan = build_instances(dataset, InstanceConfig(objective=objective, max_seq_length=40), 0, 0)
        slow_index = CorpusIndex(dataset)
        assert slow_index._shards is not None
        slow_index._shards = None
        slow = dataclasses.replace(plan, index=slow_index)
        for i in range(len(plan)):
            for key in ("input_ids", "token_type_ids", "word_starts", "special_mask"):
                np.testing.assert_array_equal(getattr(plan[i], key), getattr(slow[i], key))

    data = PretrainingData(
        dataset,
        InstanceConfig(objective="mlm+nsp", max_seq_length=32),
        MaskingConfig(strategy="whole-word"),
        mask_token_id=tokenizer.mask_token_id,
        pad_token_id=tokenizer.pad_token_id,
        special_ids=tokenizer.all_special_ids,
        seed=0,
    )  # [CLS]/[SEP] ids come from the manifest
    batches = list(data.batches(0, 4))
    assert batches
    for batch in batches:
        restored = torch.where(batch["labels"] != -100, batch["labels"], batch["input_ids"])
        for r, row in enumerate(restored.tolist()):
            n = int(batch["attention_mask"][r].sum())
            assert row[0] == tokenizer.cls_token_id and row[n - 1] == tokenizer.sep_token_id
            middle = row.index(tokenizer.sep_token_id)
            for segment in (row[1:middle], row[middle + 1 : n - 1]):
                assert any(_contains(doc, segment) for doc in documents), (
                    "each segment is text of one document"
                )
            assert tokenizer.decode(row[1:middle])


def _contains(haystack: list[int], needle: list[int]) -> bool:
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))
