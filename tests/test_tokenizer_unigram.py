"""AlbertTokenizer (SentencePiece-style Unigram) must give exactly what transformers' AlbertTokenizer gives."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import transformers

from bertforge.data.build import build_dataset
from bertforge.data.dataset import TokenDataset
from bertforge.errors import BertForgeError
from bertforge.tokenization import AlbertTokenizer
from bertforge.tokenization.unigram import read_sentencepiece_model
from test_tokenizer_parity import TEXTS, assert_pair_parity, assert_parity, corpus_excerpt

# Plain ASCII sentences: there SentencePiece itself and the tokenizers Unigram must agree exactly.
SIMPLE = [
    "hello world, this is a test.",
    "the quick brown fox jumps over the lazy dog",
    "alice was beginning to get very tired of sitting by her sister on the bank.",
    "sherlock holmes took his bottle from the corner of the mantelpiece",
    "a",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[AlbertTokenizer, Path]:
    directory = tmp_path_factory.mktemp("unigram") / "tok"
    # The Chinese excerpts hold ~2,000 distinct characters, and Unigram keeps every one.
    return AlbertTokenizer.train_from_iterator(
        corpus_excerpt(), vocab_size=3000, save_to=directory
    ), directory


@pytest.fixture(scope="module")
def hf(trained: tuple[AlbertTokenizer, Path]) -> transformers.AlbertTokenizerFast:
    return transformers.AlbertTokenizerFast.from_pretrained(str(trained[1]))


@pytest.fixture(scope="module")
def spm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with only a spiece.model trained by the sentencepiece package, ALBERT-style."""
    spm = pytest.importorskip(
        "sentencepiece", reason="sentencepiece (a dev extra) is needed to train a model"
    )
    directory = tmp_path_factory.mktemp("spm")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(
            [line for text in corpus_excerpt(8000)[:5] for line in text.splitlines() if line.strip()]
        ),
        model_writer=model,
        vocab_size=600,
        model_type="unigram",
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        minloglevel=2,
    )
    (directory / "spiece.model").write_bytes(model.getvalue())
    return directory


def test_saved_files_and_layout(trained: tuple[AlbertTokenizer, Path]) -> None:
    tokenizer, directory = trained
    assert {p.name for p in directory.iterdir()} == {
        "spiece.model",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    }
    vocab = tokenizer.get_vocab()
    assert [vocab[t] for t in ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    assert len(vocab) == 3000 and "▁the" in vocab
    assert (
        json.loads((directory / "tokenizer_config.json").read_text())["tokenizer_class"] == "AlbertTokenizer"
    )


def test_parity_with_transformers(
    trained: tuple[AlbertTokenizer, Path], hf: transformers.AlbertTokenizerFast
) -> None:
    ours = trained[0]
    assert ours.model_input_names == hf.model_input_names
    assert assert_parity(ours, hf) >= 80
    assert_pair_parity(ours, hf)
    pair = ours("first part", "second part", return_token_type_ids=True)
    first = len(ours("first part")["input_ids"])
    assert pair["token_type_ids"] == [0] * first + [1] * (len(pair["input_ids"]) - first)


@pytest.mark.parametrize("options", [{"keep_accents": True}, {"do_lower_case": False}])
def test_normalisation_options(trained: tuple[AlbertTokenizer, Path], options: dict) -> None:
    mine = AlbertTokenizer.from_pretrained(trained[1], **options)
    theirs = transformers.AlbertTokenizerFast.from_pretrained(str(trained[1]), **options)
    assert_parity(mine, theirs, texts=["Crème Brûlée à la FRANÇAISE", "``Quoted''", "e\u0301 n\u0303", ""])


def test_written_spiece_model_loads_in_sentencepiece_and_transformers(
    trained: tuple[AlbertTokenizer, Path], tmp_path: Path
) -> None:
    ours, directory = trained
    spm = pytest.importorskip("sentencepiece", reason="sentencepiece (a dev extra) checks the written model")
    processor = spm.SentencePieceProcessor(model_file=str(directory / "spiece.model"))
    assert processor.get_piece_size() == len(ours.get_vocab())
    for text in SIMPLE:
        assert processor.encode(text) == ours(text, add_special_tokens=False)["input_ids"], text
    only_model = tmp_path / "only_model"
    only_model.mkdir()
    shutil.copy(directory / "spiece.model", only_model / "spiece.model")
    texts = [*SIMPLE, "Café CRÈME, ``quoted''", "我爱自然语言处理。"]
    expected = ours(texts)["input_ids"]
    assert AlbertTokenizer.from_pretrained(only_model)(texts)["input_ids"] == expected
    assert transformers.AlbertTokenizerFast.from_pretrained(str(only_model))(texts)["input_ids"] == expected


def test_reads_a_sentencepiece_trained_model(spm_dir: Path, tmp_path: Path) -> None:
    import sentencepiece as spm

    ours = AlbertTokenizer.from_pretrained(spm_dir)
    model = read_sentencepiece_model(spm_dir / "spiece.model")
    assert model["precompiled_charsmap"]  # nmt_nfkc: exercised through the Precompiled normaliser
    processor = spm.SentencePieceProcessor(model_file=str(spm_dir / "spiece.model"))
    assert [processor.id_to_piece(i) for i in range(5)] == ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    assert ours.get_vocab() == {processor.id_to_piece(i): i for i in range(processor.get_piece_size())}
    for text in SIMPLE:
        assert processor.encode(text) == ours(text, add_special_tokens=False)["input_ids"], text
    hf = transformers.AlbertTokenizerFast.from_pretrained(str(spm_dir))
    # With no config beside spiece.model, transformers 5 matches [MASK] without lstrip; we keep the
    # lstrip of transformers 4 and of ALBERT's released tokenizer.json: ids agree, offsets differ.
    with_mask = [t for t in TEXTS if "[MASK]" in t]
    assert with_mask and [ours.encode(t) for t in with_mask] == [hf.encode(t) for t in with_mask]
    assert assert_parity(ours, hf, texts=[t for t in TEXTS if "[MASK]" not in t]) >= 80
    # Saved again, the original spiece.model is kept byte for byte and tokenizer.json agrees.
    ours.save_pretrained(tmp_path / "again")
    assert (tmp_path / "again" / "spiece.model").read_bytes() == (spm_dir / "spiece.model").read_bytes()
    reloaded = AlbertTokenizer.from_pretrained(tmp_path / "again")
    assert reloaded.fingerprint() == ours.fingerprint()


def test_training_is_deterministic(tmp_path: Path) -> None:
    texts = corpus_excerpt(2000)[:5]  # English only: a small vocabulary suffices
    for i in range(2):
        AlbertTokenizer.train_from_iterator(texts, vocab_size=400, save_to=tmp_path / f"run{i}")
    for name in ("tokenizer.json", "spiece.model"):
        assert (tmp_path / "run0" / name).read_bytes() == (tmp_path / "run1" / name).read_bytes(), name


def test_word_start_table(trained: tuple[AlbertTokenizer, Path]) -> None:
    ours = trained[0]
    table = ours.word_start_table()
    vocab = ours.get_vocab()
    assert table[vocab["▁the"]] and table[vocab["[CLS]"]] and not table[vocab[","]]
    ids = ours("unbelievably quick, friends", add_special_tokens=False)["input_ids"]
    tokens = ours.convert_ids_to_tokens(ids)
    assert ours.word_starts(ids).tolist() == [t.startswith("▁") for t in tokens]


def test_data_build_with_unigram(trained: tuple[AlbertTokenizer, Path], tmp_path: Path) -> None:
    ours = trained[0]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The cat sat on the mat, quietly.\nIt was happy.\n\nHello world again.\n", "utf-8")
    build_dataset(corpus, ours, tmp_path / "ds", eval_fraction=0.0)
    dataset = TokenDataset.open(tmp_path / "ds")
    expected = ours("The cat sat on the mat, quietly.", add_special_tokens=False)["input_ids"]
    assert dataset.document(0)[0].tolist() == expected
    tokens = ours.convert_ids_to_tokens(expected)
    assert dataset.document_word_starts(0)[0].tolist() == [t.startswith("▁") for t in tokens]
    assert AlbertTokenizer.from_pretrained(tmp_path / "ds" / "tokenizer").fingerprint() == ours.fingerprint()


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(BertForgeError, match="distinct characters"):
        AlbertTokenizer.train_from_iterator(["天地玄黄宇宙洪荒日月盈昃辰宿列张"], vocab_size=8)
    with pytest.raises(BertForgeError, match="unknown Unigram training option"):
        AlbertTokenizer.train_from_iterator(["text"], vocab_size=100, min_frequency=3)
    (tmp_path / "spiece.model").write_bytes(b"\x0a\xff\xff")
    with pytest.raises(BertForgeError, match="SentencePiece"):
        AlbertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BertForgeError, match="spiece.model"):
        AlbertTokenizer.from_pretrained(tmp_path / "empty")


def test_a_trained_vocabulary_gives_segment_ids_for_pairs_in_both_libraries(
    trained: tuple[AlbertTokenizer, Path], hf: transformers.AlbertTokenizerFast
) -> None:
    # ALBERT pretrains with segment ids (SOP); fine-tuning on pairs must see them too.
    ours, _ = trained
    mine, theirs = ours("first part", "second part"), hf("first part", "second part")
    assert mine["token_type_ids"] == theirs["token_type_ids"]
    assert set(mine["token_type_ids"]) == {0, 1}
