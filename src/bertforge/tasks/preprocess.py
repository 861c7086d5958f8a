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
* Windows are wrapped in the tokenizer's own special tokens, read from its post-processor
  (:func:`special_layout`): ``[CLS] x [SEP]`` for BERT, ``<s> x </s>`` for RoBERTa, and the pair
  form ``<s> q </s></s> c </s>`` for QA; nothing here spells a special token or looks for ``##``.
  ``token_type_ids`` are written only for tokenizers that return them (RoBERTa's do not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SpecialLayout:
    """The special tokens (ids and segment ids) a tokenizer puts around one segment and around a pair,
    read from its post-processor by :func:`special_layout`.

    Single: ``prefix + A + suffix``; pair: ``pair_prefix + A + pair_middle + B + pair_suffix``.
    Each part is a tuple of (token id, type id); ``type_a`` / ``type_b`` are the segments' type ids.
    ``token_type_ids``: whether the tokenizer returns them (BERT, ALBERT: yes; RoBERTa, DistilBERT: no).
    """

    prefix: tuple[tuple[int, int], ...]
    suffix: tuple[tuple[int, int], ...]
    pair_prefix: tuple[tuple[int, int], ...]
    pair_middle: tuple[tuple[int, int], ...]
    pair_suffix: tuple[tuple[int, int], ...]
    type_a: int = 0
    type_b: int = 1
    token_type_ids: bool = True

    @property
    def single_specials(self) -> int:
        return len(self.prefix) + len(self.suffix)

    @property
    def pair_specials(self) -> int:
        return len(self.pair_prefix) + len(self.pair_middle) + len(self.pair_suffix)


def _split_template(
    encoding: Any, lengths: Sequence[int]
) -> tuple[list[tuple[tuple[int, int], ...]], list[int]]:
    """The special-token runs around the segments of a post-processed encoding whose segments have
    ``lengths`` (non-special) tokens, and each segment's type id."""
    runs: list[list[tuple[int, int]]] = [[]]
    types: list[int] = []
    segments = iter(lengths)
    remaining = 0
    mask = encoding.attention_mask or [1] * len(encoding.ids)
    for token_id, type_id, special, real in zip(
        encoding.ids, encoding.type_ids, encoding.special_tokens_mask, mask, strict=True
    ):
        if not real:
            continue  # padding a caller left enabled on the backend
        if not special and remaining == 0:
            remaining = next(segments, 0)
            if remaining:  # the next segment starts here
                types.append(type_id)
                runs.append([])
        if special or remaining == 0:
            runs[-1].append((token_id, type_id))
        else:
            remaining -= 1
    return [tuple(run) for run in runs], types


def special_layout(tokenizer: Any) -> SpecialLayout:
    """Where ``tokenizer`` (bertforge's or transformers' fast tokenizer, any family) puts its special
    tokens, found by post-processing probe segments with its backend's post-processor and reading the
    result's special-tokens mask."""
    backend = tokenizer.backend_tokenizer
    probe = backend.encode("a", add_special_tokens=False)
    n = len(probe.ids)
    single, single_types = _split_template(backend.post_process(probe, None, add_special_tokens=True), [n])
    pair, pair_types = _split_template(backend.post_process(probe, probe, add_special_tokens=True), [n, n])
    if n == 0 or len(single) != 2 or len(pair) != 3:  # pragma: no cover - an unusual post-processor
        raise BertForgeError(f"cannot read the special-token layout of {type(tokenizer).__name__}")
    names = getattr(tokenizer, "model_input_names", None)
    return SpecialLayout(
        prefix=single[0],
        suffix=single[1],
        pair_prefix=pair[0],
        pair_middle=pair[1],
        pair_suffix=pair[2],
        type_a=pair_types[0] if pair_types else 0,
        type_b=pair_types[1] if len(pair_types) > 1 else 0,
        token_type_ids=names is None or "token_type_ids" in names,
    )


def _ids(part: Sequence[tuple[int, int]]) -> list[int]:
    return [token for token, _ in part]


def _types(part: Sequence[tuple[int, int]]) -> list[int]:
    return [type_id for _, type_id in part]


def _window_feature(
    layout: SpecialLayout, ids: Sequence[int], start: int, end: int, example_index: int
) -> Feature:
    """``prefix window suffix`` ([CLS] window [SEP] for BERT); ``offset`` is the window's first position."""
    feature: Feature = {
        "input_ids": [*_ids(layout.prefix), *ids[start:end], *_ids(layout.suffix)],
        "example_index": example_index,
        "window": (start, end),
        "offset": len(layout.prefix),
    }
    if layout.token_type_ids:
        feature["token_type_ids"] = [*_types(layout.prefix), *[0] * (end - start), *_types(layout.suffix)]
    return feature


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
            features[index] = {"input_ids": encoded["input_ids"][row], "example_index": index}
            if "token_type_ids" in encoded:  # RoBERTa's tokenizer returns none
                features[index]["token_type_ids"] = encoded["token_type_ids"][row]
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
    """Overlapping ``[CLS] window [SEP]`` features (the tokenizer's own specials) over single texts
    longer than ``max_length`` tokens."""
    layout = special_layout(tokenizer)
    encodings = tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)
    features = []
    room = max_length - layout.single_specials
    for index, encoding in enumerate(encodings):
        for start, end in token_windows(len(encoding.ids), room, min(stride, room // 2)):
            features.append(_window_feature(layout, encoding.ids, start, end, index))
    return features


# ------------------------------------------------------------------------------------------ tagging
def tag_list(examples: Sequence[TaggedExample]) -> list[str]:
    """Sorted tag set of tagged training examples."""
    return sorted({tag for example in examples for tag in example.tags or ()})


def encode_words(
    words: Sequence[Sequence[str]], tokenizer: BertTokenizer, max_length: int, stride: int
) -> tuple[list[Feature], list[list[int | None]]]:
    """Windows over pre-split sentences; also each sentence's token -> word map (no specials).

    Features carry ``window`` (token range), ``offset`` (the window's first position in the feature,
    after the tokenizer's leading specials) and ``first`` (window positions that start a word).
    ``stride`` is capped at half the window, so short windows still make progress.
    """
    layout = special_layout(tokenizer)
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
        room = max_length - layout.single_specials
        for start, end in token_windows(len(word_ids), room, min(stride, room // 2)):
            feature = _window_feature(layout, encoding.ids, start, end, index)
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
    """Training features for token tagging: windows with ``labels`` on first sub-words (others -100).
    An unlabelled example (``tags`` None: a distillation's transfer data) gives windows without labels."""
    features, word_maps = encode_words([e.words for e in examples], tokenizer, max_length, stride)
    tag_ids: list[list[int]] = []
    continuation: list[list[int]] = []
    for example in examples:
        if example.tags is None:
            tag_ids.append([])
            continuation.append([])
            continue
        tags = example.tags
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
        if examples[index].tags is None:
            continue
        start, end = feature["window"]
        labels = [IGNORE_INDEX] * feature["offset"]  # the leading specials
        for position, is_first in zip(range(start, end), feature["first"], strict=True):
            word = word_maps[index][position]
            if word is None:
                labels.append(IGNORE_INDEX)
            elif is_first:
                labels.append(tag_ids[index][word])
            else:
                labels.append(continuation[index][word] if label_all_subwords else IGNORE_INDEX)
        labels += [IGNORE_INDEX] * (len(feature["input_ids"]) - len(labels))  # the trailing specials
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
        feature: Feature = {"input_ids": encoded["input_ids"][row : row + count], "example_index": index}
        if "token_type_ids" in encoded:
            feature["token_type_ids"] = encoded["token_type_ids"][row : row + count]
        if example.label is not None:
            if not 0 <= int(example.label) < count:
                raise BertForgeError(
                    f"line {example.line}: label {example.label} is not an ending index 0..{count - 1}"
                )
            feature["labels"] = int(example.label)
        features.append(feature)
        row += count
    return features
