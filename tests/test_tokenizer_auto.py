"""load_tokenizer / AutoTokenizer picks the family; DistilBertTokenizer; the train-tokenizer and tokenize CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import transformers

from bertforge.cli import main
from bertforge.errors import BertForgeError
from bertforge.tokenization import (
    AlbertTokenizer,
    AutoTokenizer,
    BertTokenizer,
    DistilBertTokenizer,
    RobertaTokenizer,
    load_tokenizer,
)
from test_tokenizer_parity import assert_pair_parity, assert_parity, corpus_excerpt


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("auto")
    texts = corpus_excerpt(3000)[:5]  # English only: small vocabularies suffice
    BertTokenizer.train_from_iterator(texts, vocab_size=400, save_to=root / "bert")
    wordpiece = BertTokenizer.from_pretrained(root / "bert")
    DistilBertTokenizer(wordpiece.get_vocab()).save_pretrained(root / "distilbert")
    RobertaTokenizer.train_from_iterator(texts, vocab_size=400, save_to=root / "roberta")
    AlbertTokenizer.train_from_iterator(texts, vocab_size=400, save_to=root / "albert")
    return {name: root / name for name in ("bert", "distilbert", "roberta", "albert")}


@pytest.mark.parametrize(
    ("name", "cls", "hf_class"),
    [
        ("bert", BertTokenizer, "BertTokenizer"),
        ("distilbert", DistilBertTokenizer, "DistilBertTokenizer"),
        ("roberta", RobertaTokenizer, "RobertaTokenizer"),
        ("albert", AlbertTokenizer, "AlbertTokenizer"),
    ],
)
def test_class_from_tokenizer_config(dirs: dict[str, Path], name: str, cls: type, hf_class: str) -> None:
    loaded = load_tokenizer(dirs[name])
    assert type(loaded) is cls and type(AutoTokenizer.from_pretrained(dirs[name])) is cls
    config = json.loads((dirs[name] / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == hf_class
    hf = transformers.AutoTokenizer.from_pretrained(str(dirs[name]))
    assert type(hf).__name__ == hf_class
    assert (
        loaded(["Hello world, the end.", "a b"])["input_ids"]
        == hf(["Hello world, the end.", "a b"])["input_ids"]
    )


def test_distilbert_parity_and_no_token_type_ids(dirs: dict[str, Path]) -> None:
    ours = load_tokenizer(dirs["distilbert"])
    hf = transformers.DistilBertTokenizerFast.from_pretrained(str(dirs["distilbert"]))
    assert "token_type_ids" not in ours("hello") and ours.model_input_names == hf.model_input_names
    assert assert_parity(ours, hf) >= 80
    assert_pair_parity(ours, hf)
    assert ours.fingerprint() == load_tokenizer(dirs["bert"]).fingerprint()  # same ids, same data


@pytest.mark.parametrize(
    ("keep", "model_type", "cls"),
    [
        (("vocab.txt",), "distilbert", DistilBertTokenizer),
        (("vocab.txt",), None, BertTokenizer),
        (("vocab.json", "merges.txt"), "roberta", RobertaTokenizer),
        (("vocab.json", "merges.txt"), None, RobertaTokenizer),
        (("spiece.model",), None, AlbertTokenizer),
        (("tokenizer.json",), None, None),  # by the model type inside tokenizer.json
    ],
)
def test_class_from_model_type_or_files(
    dirs: dict[str, Path], tmp_path: Path, keep: tuple[str, ...], model_type: str | None, cls: type | None
) -> None:
    for source in ("bert", "roberta", "albert"):
        if not all((dirs[source] / name).is_file() for name in keep):
            continue
        target = tmp_path / source
        target.mkdir()
        for name in keep:
            shutil.copy(dirs[source] / name, target / name)
        if model_type is not None:
            (target / "config.json").write_text(json.dumps({"model_type": model_type}))
        expected = (
            cls or {"bert": BertTokenizer, "roberta": RobertaTokenizer, "albert": AlbertTokenizer}[source]
        )
        loaded = load_tokenizer(target)
        assert type(loaded) is expected, (source, keep)
        reference = load_tokenizer(dirs[source])
        assert (
            loaded(["Hello world, the end."])["input_ids"]
            == reference(["Hello world, the end."])["input_ids"]
        )


def test_unknown_directory_names_what_it_found(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(BertForgeError, match=r"weights\.bin.*supported: BERT"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "T5Tokenizer"}))
    with pytest.raises(BertForgeError, match="T5Tokenizer.*RobertaTokenizer"):
        load_tokenizer(tmp_path)
    with pytest.raises(BertForgeError, match="does not exist"):
        load_tokenizer(tmp_path / "missing")


@pytest.mark.parametrize(("kind", "cls"), [("bpe", RobertaTokenizer), ("unigram", AlbertTokenizer)])
def test_cli_train_tokenizer_types_and_tokenize(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str, cls: type
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(corpus_excerpt(3000)[:3]), encoding="utf-8")
    out = tmp_path / kind
    assert main(
        ["train-tokenizer", str(corpus), "--out", str(out), "--type", kind, "--vocab-size", "400"]
    ) in (0, None)
    assert type(load_tokenizer(out)) is cls
    capsys.readouterr()
    assert main(["tokenize", str(out), "Hello world", "and more", "--json"]) in (0, None)
    result = json.loads(capsys.readouterr().out)
    expected = load_tokenizer(out)("Hello world", "and more", return_token_type_ids=True)
    assert (
        result["input_ids"] == expected["input_ids"]
        and result["token_type_ids"] == expected["token_type_ids"]
    )
