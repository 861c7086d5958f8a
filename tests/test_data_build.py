"""Building tokenised datasets (bertforge.data.build) and reading them back (bertforge.data.dataset)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from bertforge.cli import main
from bertforge.data.build import build_dataset, eval_draws
from bertforge.data.corpus import Corpus
from bertforge.data.dataset import TokenDataset
from bertforge.errors import BertForgeError
from bertforge.tokenizer import BertTokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "ran",
    "over",
    "under",
    "happy",
    "quickly",
    "believable",
    "unbelievable",
    "river",
    "mountain",
    "said",
]
HANZI = "我们喜欢模型天下大势分久必合江山风雨人物故事"


def make_corpus(path: Path, documents: int = 40, seed: int = 0) -> Path:
    """BERT-format text: English and Chinese sentences, a blank line between documents."""
    rng = random.Random(seed)
    lines = []
    for d in range(documents):
        for _ in range(rng.randint(1, 6)):
            if d % 3 == 2:
                lines.append("".join(rng.choices(HANZI, k=rng.randint(4, 12))) + "。")
            else:
                lines.append(" ".join(rng.choices(WORDS, k=rng.randint(3, 12))).capitalize() + ".")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tokenizer() -> BertTokenizer:
    rng = random.Random(1)
    texts = [" ".join(rng.choices(WORDS, k=8)) for _ in range(200)] + [HANZI] * 5
    return BertTokenizer.train_from_iterator(texts, vocab_size=120, min_frequency=1)


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt")


def load_arrays(path: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(path.glob("*.npy"))}


# ----------------------------------------------------------------------------------- round trip


def test_build_round_trips_the_token_ids_of_every_sentence(
    tokenizer: BertTokenizer, corpus_file: Path, tmp_path: Path
) -> None:
    summary = build_dataset(corpus_file, tokenizer, tmp_path / "ds", eval_fraction=0.0)
    dataset = TokenDataset.open(tmp_path / "ds")
    expected = list(Corpus(corpus_file))
    assert len(dataset) == len(expected) == summary.documents == 40
    assert dataset.num_sentences == sum(map(len, expected)) == summary.sentences
    for index, sentences in enumerate(expected):
        ids = tokenizer(sentences, add_special_tokens=False)["input_ids"]
        assert [s.tolist() for s in dataset.document(index)] == ids
        assert dataset.sentence_lengths(index).tolist() == [len(i) for i in ids]
        assert [len(w) for w in dataset.document_word_starts(index)] == [len(i) for i in ids]
    assert dataset.num_tokens == summary.tokens == int(dataset.all_sentence_lengths.sum())
    assert dataset.document_offsets.tolist() == np.cumsum([0] + [len(d) for d in expected]).tolist()
    assert TokenDataset.open(tmp_path / "ds", "eval").num_documents == 0


def test_manifest_describes_the_dataset(tokenizer: BertTokenizer, corpus_file: Path, tmp_path: Path) -> None:
    build_dataset(corpus_file, tokenizer, tmp_path / "ds", seed=3, eval_fraction=0.1)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["format"] == "bertforge-pretraining-data" and manifest["version"] == 1
    assert manifest["tokenizer_fingerprint"] == tokenizer.fingerprint()
    assert manifest["vocab_size"] == tokenizer.vocab_size and manifest["do_lower_case"] is True
    assert manifest["dtype"] == "uint16" and manifest["seed"] == 3 and manifest["eval_fraction"] == 0.1
    assert manifest["sources"] == [{"path": str(corpus_file), "format": "sentences"}]
    assert manifest["decode_errors"] == 0
    for split in ("train", "eval"):
        info = manifest["splits"][split]
        assert info["documents"] == sum(s["documents"] for s in info["shards"])
        assert info["tokens"] == sum(s["tokens"] for s in info["shards"])
    assert np.load(tmp_path / "ds" / "train-00000.ids.npy").dtype == np.uint16


# ----------------------------------------------------------------------------------- word starts


def test_word_starts_follow_wordpiece_continuations_and_jieba_words(tmp_path: Path) -> None:
    vocab = SPECIALS + ["the", "un", "##believ", "##able", "cat", ".", "。", "bert", "##s", "ok"]
    vocab += list("我们喜欢模型用卡拉")
    tokenizer = BertTokenizer({token: i for i, token in enumerate(vocab)})
    text = "the unbelievable cat.\n我们喜欢模型。\n我们用berts模型\n我们喜欢卡拉OK。\n"
    (tmp_path / "c.txt").write_text(text, encoding="utf-8")
    build_dataset(tmp_path / "c.txt", tokenizer, tmp_path / "ds", eval_fraction=0.0, format="sentences")
    dataset = TokenDataset.open(tmp_path / "ds")
    got = [
        "".join(
            ("|" if start else " ") + tokenizer.convert_ids_to_tokens(int(i))
            for i, start in zip(ids, flags, strict=True)
        )
        for ids, flags in zip(dataset.document(0), dataset.document_word_starts(0), strict=True)
    ]
    assert got == [
        "|the|un ##believ ##able|cat|.",
        "|我 们|喜 欢|模 型|。",  # jieba: 我们 / 喜欢 / 模型 / 。
        "|我 们|用|bert ##s|模 型",  # mixed: an English word inside Chinese keeps its ## pieces
        "|我 们|喜 欢|卡 拉|ok|。",
    ]


# ---------------------------------------------------------------------------- determinism, splits


def test_arrays_are_byte_identical_whatever_the_number_of_workers(
    tokenizer: BertTokenizer, corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bertforge.data.build as build_module

    monkeypatch.setattr(build_module, "CHUNK_CHARS", 300)  # many chunks, so workers really interleave
    one = build_dataset(
        corpus_file, tokenizer, tmp_path / "w1", workers=1, seed=5, eval_fraction=0.2, shard_tokens=150
    )
    two = build_dataset(
        corpus_file, tokenizer, tmp_path / "w2", workers=2, seed=5, eval_fraction=0.2, shard_tokens=150
    )
    assert load_arrays(tmp_path / "w1") == load_arrays(tmp_path / "w2")
    assert one.splits == two.splits and one.shards > 2
    assert two.peak_rss_children_mb > 0


def test_eval_split_is_a_deterministic_draw_per_document(
    tokenizer: BertTokenizer, corpus_file: Path, tmp_path: Path
) -> None:
    build_dataset(corpus_file, tokenizer, tmp_path / "ds", seed=7, eval_fraction=0.3, shard_tokens=100)
    train, held = TokenDataset.open(tmp_path / "ds"), TokenDataset.open(tmp_path / "ds", "eval")
    is_eval = eval_draws(7, np.arange(40)) < 0.3
    assert 0 < held.num_documents == int(is_eval.sum()) and train.num_documents == 40 - held.num_documents
    expected = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in Corpus(corpus_file)]
    got_train = [[s.tolist() for s in train.document(i)] for i in range(len(train))]
    got_eval = [[s.tolist() for s in held.document(i)] for i in range(len(held))]
    assert got_train == [
        doc for doc, e in zip(expected, is_eval, strict=True) if not e
    ]  # corpus order kept, across shards
    assert got_eval == [doc for doc, e in zip(expected, is_eval, strict=True) if e]
    assert len(train.shard_names) > 1
    other = eval_draws(8, np.arange(40)) < 0.3
    assert not np.array_equal(is_eval, other)


def test_eval_split_gets_at_least_one_document(tokenizer: BertTokenizer, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "small.txt", documents=3)
    summary = build_dataset(corpus, tokenizer, tmp_path / "ds", eval_fraction=1e-9)
    assert summary.splits["eval"]["documents"] == 1 and summary.splits["train"]["documents"] == 2
    last = tokenizer(list(Corpus(corpus))[-1], add_special_tokens=False)["input_ids"]
    assert [s.tolist() for s in TokenDataset.open(tmp_path / "ds", "eval").document(0)] == last


def test_uint32_ids_for_vocabularies_beyond_65535(tmp_path: Path) -> None:
    vocab = SPECIALS + [f"w{i}" for i in range(70_000)]
    tokenizer = BertTokenizer({token: i for i, token in enumerate(vocab)})
    (tmp_path / "c.txt").write_text("w69999 w5 w12\n", encoding="utf-8")
    build_dataset(tmp_path / "c.txt", tokenizer, tmp_path / "ds", format="sentences")
    dataset = TokenDataset.open(tmp_path / "ds")
    assert dataset.manifest["dtype"] == "uint32"
    assert dataset.document(0)[0].tolist() == [70_004, 10, 17]


# ------------------------------------------------------------------------------------- bad input


def test_check_tokenizer_refuses_a_different_vocabulary(
    tokenizer: BertTokenizer, corpus_file: Path, tmp_path: Path
) -> None:
    build_dataset(corpus_file, tokenizer, tmp_path / "ds")
    dataset = TokenDataset.open(tmp_path / "ds")
    dataset.check_tokenizer(tokenizer)
    other = BertTokenizer(tokenizer.get_vocab(), do_lower_case=False)
    with pytest.raises(
        BertForgeError, match=r"built with a different vocabulary \(fingerprint .*--tokenizer"
    ):
        dataset.check_tokenizer(other)


def test_existing_dataset_is_refused_without_overwrite_and_kept_when_a_rebuild_fails(
    tokenizer: BertTokenizer, corpus_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    build_dataset(corpus_file, tokenizer, out, eval_fraction=0.0)
    before = load_arrays(out)
    with pytest.raises(BertForgeError, match="already holds a dataset; pass --overwrite"):
        build_dataset(corpus_file, tokenizer, out)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine.\n\xff\n")
    with pytest.raises(BertForgeError, match="not UTF-8"):
        build_dataset([corpus_file, bad], tokenizer, out, overwrite=True, errors="strict")
    assert load_arrays(out) == before  # the old dataset survives a failed rebuild
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt", "ds"]  # no staging left behind
    build_dataset(make_corpus(tmp_path / "new.txt", documents=5), tokenizer, out, overwrite=True)
    assert TokenDataset.open(out).num_documents + TokenDataset.open(out, "eval").num_documents == 5


def test_out_that_is_not_a_dataset_is_never_overwritten(
    tokenizer: BertTokenizer, corpus_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("precious")
    with pytest.raises(BertForgeError, match="is not empty and is not a bertforge dataset"):
        build_dataset(corpus_file, tokenizer, tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "keep.txt").read_text() == "precious"


def test_empty_and_binary_corpora_are_refused(tokenizer: BertTokenizer, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(BertForgeError, match="holds no text"):
        build_dataset(tmp_path / "empty.txt", tokenizer, tmp_path / "ds")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(BertForgeError, match=r"blob\.bin looks like a binary file"):
        build_dataset(tmp_path / "blob.bin", tokenizer, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_replaced_bytes_are_counted_in_the_summary_and_manifest(
    tokenizer: BertTokenizer, tmp_path: Path
) -> None:
    (tmp_path / "c.txt").write_bytes(b"The cat sat.\nThe \xff dog ran.\n\nA river.\n")
    summary = build_dataset(tmp_path / "c.txt", tokenizer, tmp_path / "ds")
    assert summary.replaced_bytes == 1 and summary.decode_errors == [(str(tmp_path / "c.txt"), 17)]
    assert any("replaced bytes  1" in line for line in summary.lines())
    assert TokenDataset.open(tmp_path / "ds").manifest["decode_errors"] == 1


def test_opening_something_that_is_not_a_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BertForgeError, match="does not exist"):
        TokenDataset.open(tmp_path / "missing")
    with pytest.raises(BertForgeError, match="is not a bertforge dataset"):
        TokenDataset.open(tmp_path)


def test_unknown_split_and_bad_options_are_refused(
    tokenizer: BertTokenizer, corpus_file: Path, tmp_path: Path
) -> None:
    build_dataset(corpus_file, tokenizer, tmp_path / "ds")
    with pytest.raises(BertForgeError, match="no split 'dev'; choose from eval, train"):
        TokenDataset.open(tmp_path / "ds", "dev")
    with pytest.raises(BertForgeError, match="eval_fraction must be in"):
        build_dataset(corpus_file, tokenizer, tmp_path / "x", eval_fraction=1.0)


# ------------------------------------------------------------------------------------------- CLI


def test_cli_builds_and_describes_a_dataset(
    tokenizer: BertTokenizer, corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokenizer.save_pretrained(tmp_path / "tok")
    argv = ["data", "build", "--corpus", str(corpus_file), "--tokenizer", str(tmp_path / "tok")]
    argv += ["--out", str(tmp_path / "ds"), "--workers", "2", "--seed", "1", "--eval-fraction", "0.1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "train" in out and "tokens/s with 2 workers" in out and "peak RSS" in out
    assert TokenDataset.open(tmp_path / "ds").manifest["seed"] == 1
    assert main(["data", "info", str(tmp_path / "ds")]) == 0
    assert "documents" in capsys.readouterr().out
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("bertforge: error: ") and "--overwrite" in err and err.count("\n") == 1
    assert main([*argv, "--overwrite"]) == 0


def test_cli_builds_with_a_byte_level_bpe_tokenizer(corpus_file: Path, tmp_path: Path) -> None:
    from bertforge.tokenization import RobertaTokenizer

    texts = [line for line in corpus_file.read_text(encoding="utf-8").splitlines() if line]
    roberta = RobertaTokenizer.train_from_iterator(texts, vocab_size=400)
    roberta.save_pretrained(tmp_path / "tok")
    argv = ["data", "build", "--corpus", str(corpus_file), "--tokenizer", str(tmp_path / "tok")]
    assert main([*argv, "--out", str(tmp_path / "ds"), "--eval-fraction", "0"]) == 0
    dataset = TokenDataset.open(tmp_path / "ds")
    dataset.check_tokenizer(roberta)  # built with this vocabulary, not refused as "not WordPiece"
    first = Corpus(corpus_file).__iter__().__next__()
    assert [ids.tolist() for ids in dataset.document(0)] == [
        roberta.encode(s, add_special_tokens=False) for s in first
    ]


def test_cli_reports_bad_input_on_one_line(
    tokenizer: BertTokenizer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokenizer.save_pretrained(tmp_path / "tok")
    (tmp_path / "bad.txt").write_bytes(b"ok.\n\xff\n")
    base = ["data", "build", "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "ds")]
    for corpus, extra, message in (
        (tmp_path / "missing.txt", [], "does not exist"),
        (tmp_path / "bad.txt", ["--errors", "strict"], "at byte 4: not UTF-8"),
    ):
        assert main([*base, "--corpus", str(corpus), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("bertforge: error: ") and message in err and err.count("\n") == 1
    assert main(["data", "info", str(tmp_path)]) == 2
    assert "not a bertforge dataset" in capsys.readouterr().err
