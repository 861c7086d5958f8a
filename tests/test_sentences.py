"""Sentence splitting, line re-joining and control-character cleaning (bertforge.data.sentences)."""

from __future__ import annotations

import pytest

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
