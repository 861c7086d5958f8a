"""RobertaTokenizer (byte-level BPE) must give exactly what transformers' RobertaTokenizer(Fast) gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import transformers

from bertforge.data.build import build_dataset
from bertforge.data.dataset import TokenDataset
from bertforge.errors import BertForgeError
from bertforge.tokenization import RobertaTokenizer
from test_tokenizer_parity import assert_pair_parity, assert_parity, corpus_excerpt


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[RobertaTokenizer, Path]:
    directory = tmp_path_factory.mktemp("bpe")
    tokenizer = RobertaTokenizer.train_from_iterator(
        corpus_excerpt(), vocab_size=700, min_frequency=2, save_to=directory / "tok"
    )
    return tokenizer, directory / "tok"


@pytest.fixture(scope="module")
def hf(trained: tuple[RobertaTokenizer, Path]) -> transformers.RobertaTokenizerFast:
    return transformers.RobertaTokenizerFast.from_pretrained(str(trained[1]))


def test_saved_files_and_layout(trained: tuple[RobertaTokenizer, Path]) -> None:
    tokenizer, directory = trained
    names = {p.name for p in directory.iterdir()}
    assert names == {
        "vocab.json",
        "merges.txt",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    }
    vocab = tokenizer.get_vocab()
    assert [vocab[t] for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")] == [0, 1, 2, 3, 4]
    assert len(vocab) == 700 and "Ġthe" in vocab
    config = json.loads((directory / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "RobertaTokenizer"
    assert config["added_tokens_decoder"]["4"]["lstrip"] is True
    assert (directory / "merges.txt").read_text().startswith("#version: 0.2\n")


def test_parity_with_transformers(
    trained: tuple[RobertaTokenizer, Path], hf: transformers.RobertaTokenizerFast
) -> None:
    ours = trained[0]
    assert ours.model_input_names == hf.model_input_names == ["input_ids", "attention_mask"]
    assert assert_parity(ours, hf) >= 80
    assert_pair_parity(ours, hf)


def test_auto_tokenizer_and_vocab_files_only_agree(
    trained: tuple[RobertaTokenizer, Path], tmp_path: Path
) -> None:
    ours, directory = trained
    texts = ["Hello world, <mask> here.", "naïve café 🍕", "我爱自然语言处理。"]
    expected = ours(texts)["input_ids"]
    assert transformers.AutoTokenizer.from_pretrained(str(directory))(texts)["input_ids"] == expected
    # Without tokenizer.json both sides rebuild from vocab.json + merges.txt.
    files_only = tmp_path / "files_only"
    files_only.mkdir()
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(directory / name, files_only / name)
    reloaded = RobertaTokenizer.from_pretrained(files_only)
    assert reloaded(texts)["input_ids"] == expected
    assert reloaded.fingerprint() == ours.fingerprint()
    assert transformers.AutoTokenizer.from_pretrained(str(files_only))(texts)["input_ids"] == expected
    assert RobertaTokenizer.from_pretrained(directory / "tokenizer.json")(texts)["input_ids"] == expected


def test_add_prefix_space_and_trim_offsets(trained: tuple[RobertaTokenizer, Path]) -> None:
    ours, directory = trained
    for options in (
        {"add_prefix_space": True},
        {"trim_offsets": False},
        {"add_prefix_space": True, "trim_offsets": False},
    ):
        mine = RobertaTokenizer.from_pretrained(directory, **options)
        theirs = transformers.RobertaTokenizerFast.from_pretrained(str(directory), **options)
        assert_parity(mine, theirs, texts=["Hello world", "  spaced   out ", "a <mask> b", "", "東京 Tokyo"])
        words = [["Hello", "wonderful"], ["world", "!"]]
        if options.get("add_prefix_space"):
            mine_words = mine(words, is_split_into_words=True)
            theirs_words = theirs(words, is_split_into_words=True)
            assert mine_words["input_ids"] == theirs_words["input_ids"]
            assert mine_words.word_ids(1) == theirs_words.word_ids(1)
    assert ours(" Hello")["input_ids"] != ours("Hello")["input_ids"]


def test_training_is_deterministic(tmp_path: Path) -> None:
    files = []
    for i, text in enumerate(corpus_excerpt(3000)):
        files.append(tmp_path / f"part{i}.txt")
        files[-1].write_text(text, encoding="utf-8")
    # Rust hash maps are seeded per instance, so two runs in one process differ if anything is unordered.
    runs = [RobertaTokenizer.train(files, vocab_size=600, save_to=tmp_path / f"run{i}") for i in range(3)]
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        assert len({(tmp_path / f"run{i}" / name).read_bytes() for i in range(3)}) == 1, name
    assert len({run.fingerprint() for run in runs}) == 1


def test_word_start_table(trained: tuple[RobertaTokenizer, Path]) -> None:
    ours = trained[0]
    table = ours.word_start_table()
    vocab = ours.get_vocab()
    assert table.shape == (len(ours),)
    assert table[vocab["Ġthe"]] and not table[vocab["e"]] and table[vocab["<mask>"]]
    encoding = ours("Hello wonderful<mask>world", add_special_tokens=False)
    starts = ours.word_starts(encoding["input_ids"])
    tokens = ours.convert_ids_to_tokens(encoding["input_ids"])
    # First token (no Ġ, nothing before it) and the token after <mask> start words; the rest by Ġ.
    expected = [
        i == 0 or t.startswith("Ġ") or t == "<mask>" or tokens[i - 1] == "<mask>"
        for i, t in enumerate(tokens)
    ]
    assert starts.tolist() == expected
    assert ours.word_starts([], []).shape == (0,)


def test_data_build_with_bpe(trained: tuple[RobertaTokenizer, Path], tmp_path: Path) -> None:
    ours = trained[0]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "The cat sat on the mat.\nIt was happy.\n\n天下大势，分久必合。\nHello world again.\n", "utf-8"
    )
    build_dataset(corpus, ours, tmp_path / "ds", eval_fraction=0.0)
    dataset = TokenDataset.open(tmp_path / "ds")
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["tokenizer_fingerprint"] == ours.fingerprint()
    assert RobertaTokenizer.from_pretrained(tmp_path / "ds" / "tokenizer").fingerprint() == ours.fingerprint()
    sentences = dataset.document(0)
    starts = dataset.document_word_starts(0)
    expected = ours("The cat sat on the mat.", add_special_tokens=False)["input_ids"]
    assert sentences[0].tolist() == expected
    tokens = ours.convert_ids_to_tokens(expected)
    assert starts[0].tolist() == [i == 0 or t.startswith("Ġ") for i, t in enumerate(tokens)]
    assert starts[0][0] and not starts[0][-1]  # "mat" + "." : the full stop continues the word


def test_bad_inputs(tmp_path: Path, trained: tuple[RobertaTokenizer, Path]) -> None:
    with pytest.raises(BertForgeError, match="too small"):
        RobertaTokenizer.train_from_iterator(["some text"], vocab_size=100)
    with pytest.raises(BertForgeError, match="unknown BPE training option"):
        RobertaTokenizer.train_from_iterator(["some text"], vocab_size=300, lowercase=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BertForgeError, match="vocab.json"):
        RobertaTokenizer.from_pretrained(tmp_path / "empty")
    vocab = trained[0].get_vocab()
    with pytest.raises(BertForgeError, match="mask_token"):
        RobertaTokenizer({k: v for k, v in vocab.items() if k != "<mask>"}, trained[0].merges)
    bad_merges = tmp_path / "merges.txt"
    bad_merges.write_text("#version: 0.2\na b c\n")
    with pytest.raises(BertForgeError, match="merge"):
        RobertaTokenizer(vocab, bad_merges)
