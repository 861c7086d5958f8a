"""Examples -> model features for fine-tuning: classification and regression (single texts and
pairs), token tagging (NER) and multiple choice. Question answering lives in
:mod:`.preprocess_qa`, batching and padding in :mod:`.preprocess_batches`.

A feature is a plain dict of Python lists (``input_ids``, ``token_type_ids``, ``labels`` ...) plus
``example_index``, the example it came from; :func:`~.preprocess_batches.collate` pads a list of
them into tensors. Keeping features as lists (not tensors) makes them cheap to sort by length.

Choices that are not obvious:

* Pairs are truncated ``longest_first`` (the longer segment loses a token at a time), so neither
  segment is wiped out by the other, as in BERT's ``_truncate_seq_pair``.
* A tagged sentence longer than the model's window is cut into overlapping windows
  (:func:`token_windows`) instead of truncated, so no gold tag is lost in training; at prediction
  time each token's tag comes from the window in which it is most central (:func:`max_context_owner`,
  BERT's ``_check_is_max_context``).
* Only the first sub-word of a word carries the word's tag; the rest get -100 and are ignored by the
  loss (BERT paper, section 5.3). ``label_all_subwords=True`` tags them too, with ``B-X`` turned into
  ``I-X`` for continuation pieces, as transformers' ``run_ner.py --label_all_tokens`` does.
* Multiple choice pairs the context (segment A) with ``question + " " + ending`` (segment B), one row
  per ending, as in transformers' SWAG example.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import BertForgeError

if TYPE_CHECKING:
    from ..tokenizer import BertTokenizer
    from .examples import ChoiceExample, TaggedExample, TextExample

IGNORE_INDEX = -100

Feature = dict[str, Any]


# ------------------------------------------------------------------------------------------ windows
def token_windows(num_tokens: int, room: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) token ranges of at most ``room`` tokens covering ``num_tokens`` tokens, where
    consecutive windows share ``stride`` tokens (transformers' meaning of stride / doc_stride).

    One window (possibly empty) when everything fits. The last window ends exactly at ``num_tokens``.
    """
    if room < 1:
        raise BertForgeError(f"no room for text tokens in the window ({room}); use a larger max length")
    if not 0 <= stride < room:
        raise BertForgeError(
            f"stride {stride} must be smaller than the window's room for text tokens ({room}); "
            "pass a smaller stride or a larger max length"
        )
    windows = []
    start = 0
    while True:
        end = min(start + room, num_tokens)
        windows.append((start, end))
        if end >= num_tokens:
            return windows
        start = end - stride


def max_context_owner(windows: Sequence[tuple[int, int]], num_tokens: int) -> list[int]:
    """For each token, the index of the window in which it has the most context on both sides.

    Score of a token in a window: min(tokens to its left, tokens to its right) + 0.01 * window length,
    BERT's ``_check_is_max_context``; ties go to the earlier window.
    """
    owner = [0] * num_tokens
    best = [-1.0] * num_tokens
    for index, (start, end) in enumerate(windows):
        for position in range(start, end):
            score = min(position - start, end - 1 - position) + 0.01 * (end - start)
            if score > best[position]:
                best[position], owner[position] = score, index
    return owner


def _window_feature(
    tokenizer: BertTokenizer, ids: Sequence[int], start: int, end: int, example_index: int
) -> Feature:
    return {
        "input_ids": [tokenizer.cls_token_id, *ids[start:end], tokenizer.sep_token_id],
        "token_type_ids": [0] * (end - start + 2),
        "example_index": example_index,
        "window": (start, end),
    }


# ------------------------------------------------------------------------------------------- labels
def label_maps(labels: Sequence[str]) -> tuple[dict[int, str], dict[str, int]]:
    """id2label and label2id for a label list (its order decides the ids)."""
    return dict(enumerate(labels)), {label: i for i, label in enumerate(labels)}


def _label_id(label: Any, label2id: dict[str, int], where: str) -> int:
    key = str(label)
    if key not in label2id:
        known = ", ".join(sorted(label2id)[:20])
        raise BertForgeError(
            f"{where}: label {key!r} is not one of the model's labels ({known}); fix the label or "
            "fine-tune on training data that contains it"
        )
    return label2id[key]


# ----------------------------------------------------------------------------------- classification
def encode_texts(
    examples: Sequence[TextExample] | Sequence[Any],
    tokenizer: BertTokenizer,
    max_length: int = 128,
    label2id: dict[str, int] | None = None,
    regression: bool = False,
    source: str = "input",
) -> list[Feature]:
    """One truncated feature per example; ``labels`` is a class id, a float (regression) or absent."""
    features: list[Feature] = [{} for _ in examples]
    singles = [i for i, e in enumerate(examples) if not e.text_pair]
    pairs = [i for i, e in enumerate(examples) if e.text_pair]
    batches: tuple[tuple[list[int], list[Any]], ...] = (
        (singles, [examples[i].text for i in singles]),
        (pairs, [(examples[i].text, examples[i].text_pair) for i in pairs]),
    )
    for indices, texts in batches:
        if not indices:
            continue
        encoded = tokenizer(texts, truncation="longest_first", max_length=max_length)
        for row, index in enumerate(indices):
            features[index] = {
                "input_ids": encoded["input_ids"][row],
                "token_type_ids": encoded["token_type_ids"][row],
                "example_index": index,
            }
    for index, (example, feature) in enumerate(zip(examples, features, strict=True)):
        if example.label is None:
            continue
        where = f"{source}:{example.line}"
        if regression:
            try:
                feature["labels"] = float(example.label)
            except ValueError:
                raise BertForgeError(f"{where}: regression label {example.label!r} is not a number") from None
        elif label2id is not None:
            feature["labels"] = _label_id(example.label, label2id, where)
        assert feature["example_index"] == index
    return features


def encode_text_windows(
    texts: Sequence[str], tokenizer: BertTokenizer, max_length: int, stride: int
) -> list[Feature]:
    """Overlapping [CLS] window [SEP] features over single texts longer than ``max_length`` tokens."""
    encodings = tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)
    features = []
    room = max_length - 2
    for index, encoding in enumerate(encodings):
        for start, end in token_windows(len(encoding.ids), room, min(stride, room // 2)):
            features.append(_window_feature(tokenizer, encoding.ids, start, end, index))
    return features


# ------------------------------------------------------------------------------------------ tagging
def tag_list(examples: Sequence[TaggedExample]) -> list[str]:
    """Sorted tag set of tagged training examples."""
    return sorted({tag for example in examples for tag in example.tags or ()})


def encode_words(
    words: Sequence[Sequence[str]], tokenizer: BertTokenizer, max_length: int, stride: int
) -> tuple[list[Feature], list[list[int | None]]]:
    """Windows over pre-split sentences; also each sentence's token -> word map (no specials).

    Features carry ``window`` (token range) and ``first`` (window positions that start a word).
    ``stride`` is capped at half the window, so short windows still make progress.
    """
    encodings = tokenizer.backend_tokenizer.encode_batch(
        [list(w) for w in words], is_pretokenized=True, add_special_tokens=False
    )
    features: list[Feature] = []
    word_maps: list[list[int | None]] = []
    for index, encoding in enumerate(encodings):
        word_ids = list(encoding.word_ids)
        word_maps.append(word_ids)
        # A word's first piece: its word id differs from the previous token's.
        first = [k == 0 or word_ids[k] != word_ids[k - 1] for k in range(len(word_ids))]
        room = max_length - 2
        for start, end in token_windows(len(word_ids), room, min(stride, room // 2)):
            feature = _window_feature(tokenizer, encoding.ids, start, end, index)
            feature["first"] = first[start:end]
            features.append(feature)
    return features, word_maps


def encode_tagged(
    examples: Sequence[TaggedExample],
    tokenizer: BertTokenizer,
    label2id: dict[str, int],
    max_length: int = 128,
    stride: int = 32,
    label_all_subwords: bool = False,
    source: str = "input",
) -> list[Feature]:
    """Training features for token tagging: windows with ``labels`` on first sub-words (others -100)."""
    features, word_maps = encode_words([e.words for e in examples], tokenizer, max_length, stride)
    tag_ids: list[list[int]] = []
    continuation: list[list[int]] = []
    for example in examples:
        tags = example.tags or []
        where = f"{source}:{example.line}"
        if len(tags) != len(example.words):
            raise BertForgeError(f"{where}: {len(example.words)} words but {len(tags)} tags")
        tag_ids.append([_label_id(tag, label2id, where) for tag in tags])
        # Continuation pieces of a B-X word are inside the entity: I-X, where the label set has it.
        continuation.append(
            [
                label2id.get("I-" + tag[2:], label2id[tag]) if tag.startswith("B-") else label2id[tag]
                for tag in tags
            ]
        )
    for feature in features:
        index = feature["example_index"]
        start, end = feature["window"]
        labels = [IGNORE_INDEX]
        for position, is_first in zip(range(start, end), feature["first"], strict=True):
            word = word_maps[index][position]
            if word is None:
                labels.append(IGNORE_INDEX)
            elif is_first:
                labels.append(tag_ids[index][word])
            else:
                labels.append(continuation[index][word] if label_all_subwords else IGNORE_INDEX)
        labels.append(IGNORE_INDEX)
        feature["labels"] = labels
    return features


# ---------------------------------------------------------------------------------- multiple choice
def encode_choices(
    examples: Sequence[ChoiceExample], tokenizer: BertTokenizer, max_length: int = 128
) -> list[Feature]:
    """One feature per example with C rows: (context, question + ending) for each ending."""
    counts = {len(e.endings) for e in examples}
    if len(counts) > 1:
        raise BertForgeError(
            f"examples have different numbers of endings ({sorted(counts)}); every example needs the same"
        )
    firsts = [e.context for e in examples for _ in e.endings]
    seconds = [f"{e.question} {ending}".strip() for e in examples for ending in e.endings]
    if not firsts:
        return []
    encoded = tokenizer(firsts, seconds, truncation="longest_first", max_length=max_length)
    features: list[Feature] = []
    row = 0
    for index, example in enumerate(examples):
        count = len(example.endings)
        feature: Feature = {
            "input_ids": encoded["input_ids"][row : row + count],
            "token_type_ids": encoded["token_type_ids"][row : row + count],
            "example_index": index,
        }
        if example.label is not None:
            if not 0 <= int(example.label) < count:
                raise BertForgeError(
                    f"line {example.line}: label {example.label} is not an ending index 0..{count - 1}"
                )
            feature["labels"] = int(example.label)
        features.append(feature)
        row += count
    return features
