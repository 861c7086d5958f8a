"""Shared parity checks for the tokenizer families (BPE, Unigram, WordPiece variants) against transformers.

The family test modules (test_tokenizer_bpe.py, test_tokenizer_unigram.py, test_tokenizer_auto.py)
call :func:`assert_parity` with their own tokenizer and transformers' tokenizer loaded from the same
directory; the texts are test_tokenizer.py's multilingual list plus the cases listed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertforge.errors import BertForgeError
from test_tokenizer import CORPUS, PAIRS

CORPUS_DIR = Path(__file__).resolve().parents[1] / "src" / "bertforge" / "resources" / "corpus"

EXTRA = [
    "Hello world",
    " Hello world",
    "  two leading spaces",
    "trailing spaces   ",
    "runs   of     spaces\t\ttabs\n\n\nnewlines\r\n",
    "a <mask> in the middle <mask>.",
    "<mask>start and end<mask>",
    "<s> literal </s> specials <pad> <unk>",
    "[CLS] literal [SEP] [MASK] specials <pad> <unk>",
    "日本語のテキストと English の混在。",
    "``quoted'' text with ``double'' quotes",
    "x" * 1000,
    "supercalifragilisticexpialidocious" * 5,
    "Ünïcödé ÀÉÎÕÜ façade",
    "\u0000\u0001\u001f control \u007f chars",
    "zw\u200bsp zw\u200cnj zw\u200dj \u2060wj \ufeffbom",
]
TEXTS = [*CORPUS, *EXTRA]
# Pairs with a long side, so every truncation strategy has something to cut.
FAMILY_PAIRS = [
    *PAIRS,
    ("What does the <mask> say?", "The fox says nothing at all, as far as anyone can tell."),
    ("東京は日本の首都です。", "Tokyo is the capital of Japan."),
]
CALL_VARIANTS: list[dict[str, Any]] = [
    {},
    {"padding": True},
    {"padding": "max_length", "truncation": True, "max_length": 24},
    {"truncation": "longest_first", "max_length": 7},
    {"padding": "longest", "add_special_tokens": False},
    {"padding": True, "pad_to_multiple_of": 8},
    {"return_length": True, "return_token_type_ids": True},
]


def corpus_excerpt(chars_per_file: int = 6000) -> list[str]:
    """The first ``chars_per_file`` characters of every bundled corpus file, one string per file."""
    return [p.read_text(encoding="utf-8")[:chars_per_file] for p in sorted(CORPUS_DIR.glob("*.txt"))]


def same(mine: Any, theirs: Any, what: Any) -> None:
    if isinstance(theirs, torch.Tensor):
        assert isinstance(mine, torch.Tensor) and mine.dtype == theirs.dtype, what
        assert torch.equal(mine, theirs), what
    elif isinstance(theirs, np.ndarray):
        np.testing.assert_array_equal(mine, theirs)
    else:
        assert mine == theirs, what


def assert_outputs_equal(mine: Any, theirs: Any, what: Any, rows: int | None = None) -> None:
    assert set(mine) == set(theirs), (what, set(mine), set(theirs))
    for key in theirs:
        same(mine[key], theirs[key], (what, key))
    for row in range(rows or 1):
        assert mine.word_ids(row) == theirs.word_ids(row), (what, row)
        assert mine.sequence_ids(row) == theirs.sequence_ids(row), (what, row)


def assert_parity(ours: Any, hf: Any, texts: list[str] = TEXTS) -> int:
    """Every comparison listed in the module docstring; returns how many texts were compared."""
    flags = {"return_offsets_mapping": True, "return_special_tokens_mask": True}
    for text in texts:
        assert_outputs_equal(ours(text, **flags), hf(text, **flags), text)
        assert_outputs_equal(ours(text), hf(text), text)  # the default keys (model_input_names)
        assert ours.tokenize(text) == hf.tokenize(text), text
        ids = ours.encode(text)
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == hf.decode(ids, skip_special_tokens=skip), (
                text
            )
    for kwargs in CALL_VARIANTS:
        assert_outputs_equal(ours(texts, **flags, **kwargs), hf(texts, **flags, **kwargs), kwargs, len(texts))
    batch = [ours.encode(t) for t in texts[:20]]
    assert ours.batch_decode(batch) == hf.batch_decode(batch)
    assert ours.all_special_ids == hf.all_special_ids
    assert ours.all_special_tokens == [str(t) for t in hf.all_special_tokens]
    assert ours.vocab_size == hf.vocab_size and len(ours) == len(hf)
    assert ours.get_vocab() == hf.get_vocab()
    return len(texts)


def assert_pair_parity(ours: Any, hf: Any) -> None:
    """Pairs, one by one and as batches, with every truncation strategy, several max_length, padding."""
    flags = {
        "return_offsets_mapping": True,
        "return_special_tokens_mask": True,
        "return_token_type_ids": True,
    }
    for strategy in ("longest_first", "only_first", "only_second"):
        for max_length in (5, 9, 16, 40):
            for first, second in FAMILY_PAIRS:
                kwargs = {"truncation": strategy, "max_length": max_length, **flags}
                try:
                    theirs = hf(first, second, **kwargs)
                except Exception:
                    # transformers (i.e. the Rust library) refuses; we refuse with a BertForgeError instead.
                    try:
                        ours(first, second, **kwargs)
                    except BertForgeError as exc:
                        assert "cannot truncate" in str(exc)
                        continue
                    raise AssertionError(
                        ("transformers refused, we did not", first, second, kwargs)
                    ) from None
                assert_outputs_equal(ours(first, second, **kwargs), theirs, (first, second, kwargs))
    firsts, seconds = [p[0] for p in FAMILY_PAIRS], [p[1] for p in FAMILY_PAIRS]
    for padding in ("longest", "max_length"):
        for tensors in (None, "pt", "np"):
            kwargs = {"padding": padding, "truncation": "longest_first", "max_length": 16}
            mine = ours(firsts, seconds, return_tensors=tensors, **flags, **kwargs)
            theirs = hf(firsts, seconds, return_tensors=tensors, **flags, **kwargs)
            assert_outputs_equal(mine, theirs, (padding, tensors), len(firsts))
    ids = ours.encode(*FAMILY_PAIRS[0])
    assert ours.decode(ids) == hf.decode(ids)


def test_shared_texts_are_varied() -> None:
    assert len(TEXTS) >= 80 and "" in TEXTS and any("\t" in t for t in TEXTS)
    assert all(CORPUS_DIR.joinpath(name).is_file() for name in ("en_alice.txt", "zh_xiyouji_1-30.txt"))
