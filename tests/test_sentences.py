"""Sentence splitting, line re-joining and control-character cleaning (bertforge.data.sentences)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bertforge.data import sentences
from bertforge.data.sentences import join_lines, looks_like_one_sentence, split_sentences, strip_control_chars


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Bennet and Mrs. Long met Dr. Watson near St. Paul's.",
        "Bring fruit, e.g. apples, i.e. anything red, etc. and so on.",
        "The U.S. Army fought Napoleon vs. Wellington.",
        "Pi is 3.14 and a coffee costs $2.50 today.",
        "J. R. R. Tolkien wrote it in No. 5 Fig. 3 style.",
        '"What is his name?" asked she.',
        "Wait... what did you say?",
    ],
)
def test_split_keeps_abbreviations_decimals_and_lowercase_continuations_in_one_sentence(text: str) -> None:
    assert split_sentences(text) == [text]


def test_split_english_sentences_at_terminators_followed_by_a_capital_or_quote() -> None:
    text = 'It was I. Then he left! Did he? "Yes," she said. (Really.) 42 people came.'
    assert split_sentences(text) == [
        "It was I.",
        "Then he left!",
        "Did he?",
        '"Yes," she said.',
        "(Really.)",
        "42 people came.",
    ]


def test_split_keeps_closing_quotes_with_the_sentence() -> None:
    assert split_sentences('He said "stop." Then silence.') == ['He said "stop."', "Then silence."]
    assert split_sentences("She wrote ’done.’ Next came more.") == ["She wrote ’done.’", "Next came more."]


def test_split_chinese_at_full_width_terminators_with_closing_quotes() -> None:
    text = "他来了。她说：“好！”我问道「真的吗？」然后（笑）；此书也．完"
    assert split_sentences(text) == [
        "他来了。",
        "她说：“好！”",
        "我问道「真的吗？」",
        "然后（笑）；",
        "此书也．",
        "完",
    ]
    assert split_sentences("『走吧。』』他说") == ["『走吧。』』", "他说"]


def test_split_collapses_whitespace_and_drops_empty_pieces() -> None:
    assert split_sentences("  One\n  two.   Three  ") == ["One two.", "Three"]
    assert split_sentences("   ") == []
    assert split_sentences("。。。") == ["。。。"]


def test_join_lines_puts_spaces_between_english_lines_and_none_between_chinese_lines() -> None:
    assert join_lines(["It is a truth universally", "  acknowledged, that a man"]) == (
        "It is a truth universally acknowledged, that a man"
    )
    assert join_lines(["    滚滚长江东逝水，浪花", "淘尽英雄。"]) == "滚滚长江东逝水，浪花淘尽英雄。"
    assert join_lines(["我们使用BERT", "模型 and", "more"]) == "我们使用BERT模型 and more"


def test_looks_like_one_sentence() -> None:
    assert looks_like_one_sentence("This is one sentence.")
    assert looks_like_one_sentence('"Is it?"')
    assert looks_like_one_sentence("这是一句话。")
    assert not looks_like_one_sentence("of a good fortune, must be in want of a")
    assert not looks_like_one_sentence("One sentence. And another.")


def test_strip_control_chars_drops_controls_bom_and_zero_width_and_turns_tabs_into_spaces() -> None:
    assert strip_control_chars("\ufeffa\tb\x00c\x0cd\u200be\x7f\x85f") == "a bcdef"
    assert strip_control_chars("全角\u3000空格 ok") == "全角\u3000空格 ok"


def test_strip_control_chars_can_keep_line_ends_and_drops_astral_format_characters() -> None:
    text = "a\r\nb\u2028\x0c\tc\U000e0041d\U0001d173e\U0001f600\n"
    assert strip_control_chars(text) == "ab cde\U0001f600"
    assert strip_control_chars(text, keep_line_ends=True) == "a\r\nb cde\U0001f600\n"
    # Cleaning a block with its line ends kept, then cutting it, gives the lines cleaned one by one.
    lines = text.replace("\r\n", "\n").split("\n")
    kept = strip_control_chars(text, keep_line_ends=True).replace("\r\n", "\n").split("\n")
    assert kept == [strip_control_chars(line) for line in lines]


# ------------------------------------------------------------------- the rules applied literally
# split_sentences collapses whitespace once and checks each candidate in O(1); this oracle applies
# the rules from the module docstring to the raw text, one candidate at a time, the slow obvious way.

_ORACLE_BOUNDARY = re.compile(
    rf"(?P<cjk>[。！？；．｡]+[{re.escape(sentences._CLOSERS)}]*)"
    rf"|(?P<latin>[.!?…]+[{re.escape(sentences._CLOSERS)}]*)(?=\s)"
)


def _oracle_ends_sentence(text: str, match: re.Match[str]) -> bool:
    rest = text[match.end() :].lstrip()
    if not rest:
        return True
    following = rest.lstrip(sentences._OPENERS)[:1] or rest[0]
    if following.islower():
        return False
    if match.group("latin").rstrip(sentences._CLOSERS) != ".":
        return True
    start = match.start()
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start : match.start()].lstrip(sentences._OPENERS).lower()
    if word in sentences._NEVER_FINAL or sentences._DOTTED_INITIALISM.fullmatch(word):
        return False
    if len(word) == 1 and word.isalpha() and word not in ("i", "a"):
        return False
    return not (word in sentences._BEFORE_NUMBER and following.isdigit())


def oracle_split(text: str) -> list[str]:
    out, start = [], 0
    for match in _ORACLE_BOUNDARY.finditer(text):
        if match.group("latin") is not None and not _oracle_ends_sentence(text, match):
            continue
        out.append(" ".join(text[start : match.end()].split()))
        start = match.end()
    out.append(" ".join(text[start:].split()))
    return [piece for piece in out if piece]


_ALPHABET = st.sampled_from(
    list("aAbBzZ.!?…\"'”’»)]}」』）》“‘«([{「『（《 \t\n\u3000\xa0。！？；．｡05")
    + ["Mr", "e.g", "U.S", "J", "No", "i", "a", "  ", "他来了", "Dr.", "etc", "3.14"]
)


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(st.lists(_ALPHABET, max_size=30).map("".join))
def test_split_matches_the_rules_applied_literally(text: str) -> None:
    assert split_sentences(text) == oracle_split(text)
