"""Task preprocessing: windows, pair truncation, first-sub-word NER labels, QA windows and offsets
(English and Chinese, exact character spans), multiple-choice rows, collation and length grouping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertforge import BertForgeError
from bertforge.tasks.examples import ChoiceExample, TaggedExample, TextExample
from bertforge.tasks.preprocess import (
    IGNORE_INDEX,
    encode_choices,
    encode_tagged,
    encode_texts,
    max_context_owner,
    token_windows,
)
from bertforge.tasks.preprocess_batches import collate, length_grouped_batches, random_batches
from bertforge.tasks.preprocess_qa import _answer_tokens, decode_qa, encode_qa
from bertforge.tokenizer import BertTokenizer

WORDS = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "cafe",
    "is",
    "in",
    "paris",
    "who",
    "where",
    "runs",
    "##s",
    "##er",
    "##ing",
    "good",
    "bad",
    "movie",
    "john",
    "lives",
    "play",
    ".",
    ",",
    "?",
    "北",
    "京",
    "是",
    "中",
    "国",
    "的",
    "首",
    "都",
    "哪",
    "里",
]


@pytest.fixture(scope="module")
def tokenizer() -> BertTokenizer:
    return BertTokenizer({w: i for i, w in enumerate(WORDS)})


def ids(tokenizer: BertTokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


# ------------------------------------------------------------------------------------------ windows
def test_token_windows_overlap_by_stride_and_end_at_the_last_token() -> None:
    assert token_windows(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert token_windows(3, 4, 1) == [(0, 3)]
    assert token_windows(0, 4, 1) == [(0, 0)]
    windows = token_windows(100, 17, 5)
    assert windows[0][0] == 0 and windows[-1][1] == 100
    assert all(b[0] == a[1] - 5 for a, b in zip(windows, windows[1:], strict=False))


def test_token_windows_reject_a_stride_that_leaves_no_progress() -> None:
    with pytest.raises(BertForgeError, match="stride 4 must be smaller"):
        token_windows(10, 4, 4)


def test_max_context_owner_picks_the_window_where_a_token_is_most_central() -> None:
    windows = [(0, 4), (3, 7), (6, 10)]
    assert max_context_owner(windows, 10) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


# ----------------------------------------------------------------------------------- classification
def test_pairs_get_segment_ids_and_longest_first_truncation_keeps_both(tokenizer) -> None:
    long_a = " ".join(["the cafe"] * 10)  # 20 tokens
    examples = [TextExample(long_a, "who runs", "good", 1), TextExample(long_a, long_a, "bad", 2)]
    features = encode_texts(examples, tokenizer, max_length=12, label2id={"bad": 0, "good": 1})
    first, second = features
    # Short B survives whole; A gives up its tokens.
    assert first["input_ids"][-4:] == [
        tokenizer.sep_token_id,
        *ids(tokenizer, "who runs"),
        tokenizer.sep_token_id,
    ]
    assert len(first["input_ids"]) == 12 and first["token_type_ids"] == [0] * 9 + [1] * 3
    # Two long segments are cut to equal shares: [CLS] 4 [SEP] 5 [SEP] or 5/4.
    assert len(second["input_ids"]) == 12 and second["token_type_ids"].count(1) in (5, 6)
    assert [f["labels"] for f in features] == [1, 0]


def test_unknown_label_names_the_line_and_the_known_labels(tokenizer) -> None:
    with pytest.raises(BertForgeError, match=r"dev.tsv:7: label 'neutral' is not one of the model's labels"):
        encode_texts(
            [TextExample("good", None, "neutral", 7)], tokenizer, 16, {"bad": 0, "good": 1}, source="dev.tsv"
        )


def test_regression_labels_are_floats(tokenizer) -> None:
    (feature,) = encode_texts([TextExample("good", "bad", "3.5", 1)], tokenizer, 16, regression=True)
    assert feature["labels"] == 3.5


# ------------------------------------------------------------------------------------------ tagging
LABELS = {"B-PER": 0, "I-PER": 1, "O": 2}


def test_ner_labels_go_on_the_first_sub_word_only(tokenizer) -> None:
    example = TaggedExample(["john", "runs", "playing"], ["B-PER", "O", "O"], 1)
    (feature,) = encode_tagged([example], tokenizer, LABELS, max_length=16)
    tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
    assert tokens == ["[CLS]", "john", "runs", "play", "##ing", "[SEP]"]
    assert feature["labels"] == [IGNORE_INDEX, 0, 2, 2, IGNORE_INDEX, IGNORE_INDEX]


def test_ner_label_all_subwords_turns_b_into_i_for_continuations(tokenizer) -> None:
    example = TaggedExample(["players"], ["B-PER"], 1)  # play ##er ##s
    (feature,) = encode_tagged([example], tokenizer, LABELS, max_length=16, label_all_subwords=True)
    assert feature["labels"] == [IGNORE_INDEX, 0, 1, 1, IGNORE_INDEX]


def test_long_sentences_become_windows_that_keep_every_tag(tokenizer) -> None:
    words = ["john", "lives", "in", "paris"] * 6
    tags = ["B-PER", "O", "O", "O"] * 6
    features = encode_tagged([TaggedExample(words, tags, 3)], tokenizer, LABELS, max_length=10, stride=3)
    assert len(features) > 1 and all(len(f["input_ids"]) <= 10 for f in features)
    labelled = set()
    for feature in features:
        start, _ = feature["window"]
        for offset, label in enumerate(feature["labels"][1:-1]):
            if label != IGNORE_INDEX:
                labelled.add(start + offset)
                assert label == LABELS[tags[start + offset]]
    assert labelled == set(range(len(words)))


def test_tag_count_mismatch_is_an_error(tokenizer) -> None:
    with pytest.raises(BertForgeError, match="train.conll:4: 2 words but 1 tags"):
        encode_tagged([TaggedExample(["john", "runs"], ["O"], 4)], tokenizer, LABELS, source="train.conll")


# ----------------------------------------------------------------------------------------------- QA
def check_answer_roundtrip(tokenizer, question: str, context: str, answer: str, **kwargs) -> list[dict]:
    start = context.index(answer)
    end = start + len(answer)
    features = encode_qa([question], [context], tokenizer, answers=[(start, end)], **kwargs)
    hits = [f for f in features if f["start_positions"] != 0]
    assert hits, "no window holds the answer"
    for feature in hits:
        first, last = feature["start_positions"], feature["end_positions"]
        char_start, char_end = feature["offsets"][first][0], feature["offsets"][last][1]
        assert context[char_start:char_end] == answer
    return features


def test_qa_answer_tokens_map_back_to_the_exact_characters_english(tokenizer) -> None:
    context = "The Café is in Paris. " * 3 + "John runs the Café in PARIS."
    check_answer_roundtrip(tokenizer, "Who runs the cafe?", context, "John")
    check_answer_roundtrip(tokenizer, "Where is the cafe?", context, "PARIS")
    features = check_answer_roundtrip(
        tokenizer, "Who?", context, "Café in PARIS", max_seq_length=16, doc_stride=4
    )
    assert len(features) > 1


def test_qa_answer_tokens_map_back_to_the_exact_characters_chinese(tokenizer) -> None:
    context = "北京是中国的首都。" * 4 + "中国的首都是北京。"
    features = check_answer_roundtrip(
        tokenizer, "中国的首都是哪里？", context, "北京", max_seq_length=24, doc_stride=6
    )
    assert len(features) > 1


def test_answer_tokens_cover_partial_tokens_and_miss_gaps() -> None:
    offsets = [(0, 3), (4, 8), (8, 10)]
    assert _answer_tokens(offsets, 5, 7) == (1, 1)  # inside one token
    assert _answer_tokens(offsets, 2, 9) == (0, 2)
    assert _answer_tokens(offsets, 3, 4) is None  # only the space


def test_qa_windows_without_the_answer_point_at_cls(tokenizer) -> None:
    context = "the cafe is in paris . " * 6 + "john runs the cafe ."
    start = context.index("john")
    features = encode_qa(["who runs the cafe ?"], [context], tokenizer, 20, 4, answers=[(start, start + 4)])
    assert [f["start_positions"] == 0 for f in features].count(False) >= 1
    assert features[0]["start_positions"] == features[0]["end_positions"] == 0
    impossible = encode_qa(["who ?"], [context], tokenizer, 20, 4, answers=[None])
    assert all(f["start_positions"] == f["end_positions"] == 0 for f in impossible)


def test_qa_window_layout_question_truncation_and_segments(tokenizer) -> None:
    question = " ".join(["where"] * 10)
    (feature,) = encode_qa(
        [question], ["the cafe"], tokenizer, max_seq_length=32, doc_stride=8, max_query_length=4
    )
    tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
    assert tokens == ["[CLS]", "where", "where", "where", "where", "[SEP]", "the", "cafe", "[SEP]"]
    assert feature["token_type_ids"] == [0] * 6 + [1] * 3
    assert feature["offsets"] == [None] * 6 + [(0, 3), (4, 8), None]


def test_qa_every_context_token_is_max_context_in_exactly_one_window(tokenizer) -> None:
    context = "the cafe is in paris . " * 8
    features = encode_qa(["who ?"], [context], tokenizer, 16, 5)
    counts: dict[tuple[int, int], int] = {}
    for feature in features:
        for offsets, best in zip(feature["offsets"], feature["max_context"], strict=True):
            if offsets is not None and best:
                counts[offsets] = counts.get(offsets, 0) + 1
    assert len(counts) == len(ids(tokenizer, context)) and set(counts.values()) == {1}


def one_hot_logits(features: list[dict], start_char: int, end_char: int) -> tuple[list, list]:
    starts, ends = [], []
    for feature in features:
        n = len(feature["input_ids"])
        s, e = np.zeros(n), np.zeros(n)
        for k, offsets in enumerate(feature["offsets"]):
            if offsets is not None and offsets[0] == start_char:
                s[k] = 8.0
            if offsets is not None and offsets[1] == end_char:
                e[k] = 8.0
        starts.append(s)
        ends.append(e)
    return starts, ends


def test_decode_qa_recovers_the_answer_across_windows(tokenizer) -> None:
    context = "北京是中国的首都。" * 4 + "中国的首都是北京。"
    start = context.rindex("北京")
    features = encode_qa(["首都是哪里？"], [context], tokenizer, 24, 6)
    starts, ends = one_hot_logits(features, start, start + 2)
    (prediction,) = decode_qa(features, starts, ends, [context])
    assert (prediction.answer.text, prediction.answer.start, prediction.answer.end) == (
        "北京",
        start,
        start + 2,
    )
    assert prediction.n_best[0].score > 0.9


def test_decode_qa_respects_max_answer_length_and_says_no_answer_for_v2(tokenizer) -> None:
    context = "john runs the cafe in paris ."
    features = encode_qa(["who ?"], [context], tokenizer, 32, 8)
    starts, ends = one_hot_logits(features, 0, len("john runs the cafe in paris"))
    (short,) = decode_qa(features, starts, ends, [context], max_answer_length=3)
    assert len(short.answer.text.split()) <= 3
    starts[0][0] = ends[0][0] = 20.0  # [CLS] wins: unanswerable
    (v2,) = decode_qa(features, starts, ends, [context], version_2=True)
    assert v2.answer.text == "" and v2.null_score_diff is not None and v2.null_score_diff > 0
    (v1,) = decode_qa(features, starts, ends, [context], version_2=False)
    assert v1.answer.text != ""


# ---------------------------------------------------------------------------------- multiple choice
def test_multiple_choice_has_one_row_per_ending_with_context_as_segment_a(tokenizer) -> None:
    example = ChoiceExample("john runs the cafe .", ["in paris", "good", "bad movie"], 0, 1, question="where")
    (feature,) = encode_choices([example], tokenizer, max_length=16)
    assert len(feature["input_ids"]) == 3 and feature["labels"] == 0
    tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"][0])
    assert tokens == ["[CLS]", "john", "runs", "the", "cafe", ".", "[SEP]", "where", "in", "paris", "[SEP]"]
    assert feature["token_type_ids"][2] == [0] * 7 + [1] * 4
    batch = collate([feature, feature])
    assert batch["input_ids"].shape == (2, 3, 11) and batch["labels"].tolist() == [0, 0]


# ---------------------------------------------------------------------------------------- batching
def test_collate_pads_to_the_longest_row_and_masks_padding() -> None:
    features = [
        {"input_ids": [2, 5, 3], "token_type_ids": [0, 0, 0], "labels": [-100, 1, -100]},
        {"input_ids": [2, 3], "token_type_ids": [0, 0], "labels": [-100, -100]},
    ]
    batch = collate(features, pad_token_id=0)
    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[-100, 1, -100], [-100, -100, -100]]
    scalar = collate([{"input_ids": [2], "token_type_ids": [0], "labels": 0.5}])
    assert scalar["labels"].dtype == torch.float32


def test_length_grouped_batches_are_deterministic_complete_and_homogeneous() -> None:
    lengths = [int(x) for x in np.random.default_rng(0).integers(5, 200, size=1000)]
    a = length_grouped_batches(lengths, 16, seed=1, epoch=0, mega_batches=10)
    assert a == length_grouped_batches(lengths, 16, seed=1, epoch=0, mega_batches=10)
    assert a != length_grouped_batches(lengths, 16, seed=1, epoch=1, mega_batches=10)
    assert sorted(i for b in a for i in b) == list(range(1000))

    def padded(batches: list[list[int]]) -> int:
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    assert padded(a) < 0.7 * padded(random_batches(1000, 16, seed=1))
