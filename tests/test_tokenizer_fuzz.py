"""Property-based parity: bertforge's tokenizers equal transformers' fast tokenizers on generated text.

Every family (WordPiece for BERT and DistilBERT, byte-level BPE for RoBERTa, Unigram for ALBERT)
gets a vocabulary trained here from the bundled corpus excerpts; hypothesis generates text mixing
corpus words, any Unicode character (all planes, no lone surrogates), combining marks, control and
zero-width characters, whitespace runs, special-token literals and long words. For each text:
ids, token type ids, attention mask, offsets, special-tokens mask, word ids and sequence ids of the
text alone and of a pair under a random truncation strategy and length, and decode with and without
special tokens. transformers is compared twice: loading our tokenizer.json, and building its own
backend from the vocabulary files only (its slow-to-fast converter), which checks that our backend
is the one transformers would build.

Bounded for CI: derandomized, a fixed number of examples, no per-example deadline (a shared CPU
makes timings noisy) but a small total; ``benchmarks/tokenizer_fuzz.py`` runs 100,000 strings.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

transformers = pytest.importorskip("transformers")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bertforge.errors import BertForgeError  # noqa: E402
from bertforge.tokenization import (  # noqa: E402
    AlbertTokenizer,
    BertTokenizer,
    DistilBertTokenizer,
    RobertaTokenizer,
)
from test_tokenizer_parity import assert_outputs_equal, corpus_excerpt  # noqa: E402

FAMILIES = ("bert", "distilbert", "roberta", "albert")
HF_CLASSES = {
    "bert": "BertTokenizerFast",
    "distilbert": "DistilBertTokenizerFast",
    "roberta": "RobertaTokenizerFast",
    "albert": "AlbertTokenizerFast",
}
FLAGS = {"return_offsets_mapping": True, "return_special_tokens_mask": True, "return_token_type_ids": True}
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Any, Any]]:
    """family -> (ours, transformers from our tokenizer.json, transformers from the vocabulary files only)."""
    root = tmp_path_factory.mktemp("fuzz")
    texts = corpus_excerpt(3000)
    wordpiece = BertTokenizer.train_from_iterator(texts, vocab_size=1200, save_to=root / "bert")
    DistilBertTokenizer(wordpiece.get_vocab()).save_pretrained(root / "distilbert")
    RobertaTokenizer.train_from_iterator(texts, vocab_size=600, save_to=root / "roberta")
    AlbertTokenizer.train_from_iterator(texts, vocab_size=1600, save_to=root / "albert")
    classes = {"bert": BertTokenizer, "distilbert": DistilBertTokenizer, "roberta": RobertaTokenizer,
               "albert": AlbertTokenizer}  # fmt: skip
    found = {}
    for family in FAMILIES:
        directory = root / family
        files_only = root / f"{family}-files"
        shutil.copytree(directory, files_only)
        (files_only / "tokenizer.json").unlink()
        hf_class = getattr(transformers, HF_CLASSES[family])
        found[family] = (
            classes[family].from_pretrained(directory),
            hf_class.from_pretrained(str(directory)),
            hf_class.from_pretrained(str(files_only)),
        )
    return found


# --------------------------------------------------------------------------------- generated text
_WORDS = sorted({w for t in corpus_excerpt(800) for w in t.split()})
_ANY_CHAR = st.characters(blacklist_categories=("Cs",))  # every plane; lone surrogates cannot be UTF-8
_COMBINING = st.characters(min_codepoint=0x300, max_codepoint=0x36F)
_CONTROL = st.sampled_from([chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]])
_ZERO_WIDTH = st.sampled_from(
    ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u2063"]
)
_SPACE = st.sampled_from([" ", "\t", "\n", "\r", "\u00a0", "\u3000", "\u2028", "\u2003", "\u0085", "\u1680"])
_SPECIALS = st.sampled_from(
    ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "<s>", "</s>", "<mask>", "<pad>", "<unk>"]
)
_PIECE = st.one_of(
    st.sampled_from(_WORDS),
    st.text(_ANY_CHAR, min_size=1, max_size=6),
    st.tuples(st.sampled_from(_WORDS), st.text(_COMBINING, min_size=1, max_size=4)).map("".join),
    _CONTROL,
    _ZERO_WIDTH,
    st.text(_SPACE, min_size=1, max_size=5),
    _SPECIALS,
    st.tuples(st.sampled_from(_WORDS), st.integers(20, 150)).map(lambda wn: (wn[0] * wn[1])[: 40 + wn[1]]),
)
TEXT = st.lists(_PIECE, max_size=12).flatmap(
    lambda pieces: st.sampled_from(["", " "]).map(lambda sep: sep.join(pieces))
)


def _check(ours: Any, hf: Any, text: str, pair: str, strategy: str, max_length: int) -> None:
    assert_outputs_equal(ours(text, **FLAGS), hf(text, **FLAGS), text)
    ids = ours(text)["input_ids"]
    assert ids == hf(text)["input_ids"], text
    for skip in (False, True):
        assert ours.decode(ids, skip_special_tokens=skip) == hf.decode(ids, skip_special_tokens=skip), text
    kwargs = {"truncation": strategy, "max_length": max_length, **FLAGS}
    try:
        theirs = hf(text, pair, **kwargs)
    except Exception:  # the Rust library refuses (the side to cut is too short); so must we
        with pytest.raises(BertForgeError, match="cannot truncate"):
            ours(text, pair, **kwargs)
        return
    assert_outputs_equal(ours(text, pair, **kwargs), theirs, (text, pair, kwargs))
    pair_ids = ours(text, pair)["input_ids"]
    assert ours.decode(pair_ids) == hf.decode(pair_ids), (text, pair)


@pytest.mark.parametrize("family", FAMILIES)
@FUZZ
@given(
    text=TEXT,
    pair=TEXT,
    strategy=st.sampled_from(["longest_first", "only_first", "only_second"]),
    max_length=st.integers(4, 40),
)
def test_generated_text_matches_transformers(
    tokenizers: dict[str, tuple[Any, Any, Any]],
    family: str,
    text: str,
    pair: str,
    strategy: str,
    max_length: int,
) -> None:
    ours, hf_json, hf_files = tokenizers[family]
    _check(ours, hf_json, text, pair, strategy, max_length)
    _check(ours, hf_files, text, pair, strategy, max_length)
