"""JiebaSegmenter (bertforge.data.segment): word starts identical to jieba.cut's, on real Chinese and
on generated strings that mix Han, Latin letters, digits, jieba's in-word punctuation and rare CJK."""

from __future__ import annotations

import builtins
import logging
from pathlib import Path
from typing import Any

import jieba
import numpy as np
import pytest

import bertforge

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bertforge.data.corpus import Corpus  # noqa: E402
from bertforge.data.segment import JiebaSegmenter, _JiebaHMM  # noqa: E402

rjieba = pytest.importorskip("rjieba")
jieba.setLogLevel(logging.WARNING)
CORPUS_DIR = Path(bertforge.__file__).parent / "resources" / "corpus"

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def jieba_flags(sentences: list[str]) -> np.ndarray:
    """What the dataset builder computed before JiebaSegmenter: jieba.cut, positions summed."""
    flags = []
    for sentence in sentences:
        row = np.zeros(len(sentence) + 1, dtype=np.bool_)
        position = 0
        for word in jieba.cut(sentence):
            if position < len(sentence):
                row[position] = True
            position += len(word)
        flags.append(row)
    return np.concatenate(flags) if flags else np.zeros(0, dtype=np.bool_)


def marked(sentence: str, flags: np.ndarray) -> str:
    return "".join(("|" if flag else "") + char for char, flag in zip(sentence, flags, strict=False))


def assert_same_as_jieba(segmenter: JiebaSegmenter, sentences: list[str]) -> None:
    got = segmenter.word_start_flags(sentences)
    want = jieba_flags(sentences)
    if not np.array_equal(got, want):
        base = 0
        for sentence in sentences:
            mine, theirs = got[base : base + len(sentence)], want[base : base + len(sentence)]
            assert marked(sentence, mine) == marked(sentence, theirs), sentence
            base += len(sentence) + 1
        raise AssertionError("the separator slots differ")


@pytest.fixture(scope="module")
def chinese_sentences() -> list[str]:
    sentences = [s for document in Corpus(sorted(CORPUS_DIR.glob("zh_*.txt"))) for s in document]
    return sentences[::6]  # every sixth: a spread over both books, quick enough for jieba


def test_word_starts_match_jieba_on_the_bundled_novels(chinese_sentences: list[str]) -> None:
    segmenter = JiebaSegmenter()
    for start in range(0, len(chinese_sentences), 500):
        assert_same_as_jieba(segmenter, chinese_sentences[start : start + 500])


def test_hmm_near_tie_follows_jieba_not_jieba_rs() -> None:
    # jieba-rs 0.2.2's own HMM cuts 常在 here (the two paths differ by rounding); jieba keeps 常|在.
    sentence = "行者道：“你等既受他节制常在他洞下可知他是那里妖精叫做甚么名字？”"
    assert_same_as_jieba(JiebaSegmenter(), [sentence])


def test_latin_digits_and_urls_inside_han_blocks_follow_jieba() -> None:
    sentences = [
        "小^说^无广告的~顶点*小说~网www.shuyaya.com这个",
        "涨了3.5%的A股和T恤",
        "用C++写#号&_下划线-减号",
    ]
    assert_same_as_jieba(JiebaSegmenter(), sentences)


_HAN = "天下大势分久必合合久必分周末七国分争并入于秦及秦灭之后楚汉分争又并入于汉行者道你等既受他节制常在洞下"
_PIECE = st.one_of(
    st.text(st.sampled_from(_HAN), min_size=1, max_size=12),
    st.text(st.sampled_from("abcXYZ0123456789"), min_size=1, max_size=5),
    st.sampled_from(list("+#&._%-") + [" ", "  ", "，", "。", "“", "”", "\t", "\u3000", "\r\n", "\n"]),
    # Characters jieba-rs counts as Han and jieba does not (CJK extension A, U+9FD6.., compatibility
    # ideographs, extension B), and full-width forms.
    st.sampled_from(["\u3400", "\u4dbf", "\u9fd6", "\u9fff", "\uf900", "\U00020000", "Ａ", "１"]),
)


@FUZZ
@given(sentences=st.lists(st.lists(_PIECE, max_size=10).map("".join), min_size=1, max_size=5))
def test_generated_strings_match_jieba(sentences: list[str]) -> None:
    assert_same_as_jieba(_SEGMENTER, sentences)


_SEGMENTER = JiebaSegmenter()


@FUZZ
@given(run=st.text(st.sampled_from(_HAN + "\u4e00\u9fd5\u9fa5"), min_size=1, max_size=30))
def test_hmm_matches_jieba_viterbi_float_for_float(run: str) -> None:
    from jieba import finalseg

    _, path = finalseg.viterbi(run, "BMES", finalseg.start_P, finalseg.trans_P, finalseg.emit_P)
    want = [i == 0 or path[i - 1] in "ES" for i in range(len(run))]
    codes = np.array([ord(c) for c in run], dtype=np.uint32)
    assert _HMM.word_starts(codes, np.array([len(run)])).tolist() == want


_HMM = _JiebaHMM()


def test_without_rjieba_every_sentence_goes_to_jieba(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_import = builtins.__import__

    def no_rjieba(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "rjieba":
            raise ImportError("no rjieba here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rjieba)
    with caplog.at_level(logging.WARNING, logger="bertforge.data.segment"):
        segmenter = JiebaSegmenter()
    assert "rjieba is not installed" in caplog.text
    assert_same_as_jieba(segmenter, ["他节制常在他洞下", "abc 你好"])
