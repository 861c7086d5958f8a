"""Extractive question answering: examples -> sliding windows, and window logits -> answer spans.

Encoding (:func:`encode_qa`), as in Google's ``run_squad.py`` and transformers' ``run_qa.py``:

* The question keeps at most ``max_query_length`` (64) tokens; each window is the tokenizer's pair
  form of (question, context window): ``[CLS] question [SEP] context-window [SEP]`` with segment 1
  from the context on for BERT, ``<s> question </s></s> context-window </s>`` for RoBERTa (read
  from the tokenizer's post-processor, :func:`~.preprocess.special_layout`).
* A context longer than the room left is cut into windows that share ``doc_stride`` tokens
  (transformers' meaning: the overlap; Google's ``run_squad.py`` used it as the step).
* Every context token keeps its character span in the context (``offsets``), from the Rust
  tokenizer's offsets, so an answer is sliced from the original text: casing, accents and Chinese
  characters come back exactly as written.
* In training, a window that does not contain the whole answer (and every window of an unanswerable
  question) points start and end at index 0 ([CLS], ``<s>``).

Decoding (:func:`decode_qa`): for each window, the ``n_best`` highest start and end logits over
context tokens make candidate spans (end >= start, at most ``max_answer_length`` tokens, start token
in its most central window); a span's score is start logit + end logit, and an example's candidates
across all its windows are ranked together, probabilities by softmax over the n-best. For SQuAD 2.0
models the null score is the lowest [CLS] start + end over the windows; the answer is "" when
null score - best span score > ``null_score_diff_threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import BertForgeError
from .preprocess import Feature, _ids, _types, max_context_owner, special_layout, token_windows

if TYPE_CHECKING:
    from ..tokenizer import BertTokenizer
    from .examples import QAExample


@dataclass
class Answer:
    """One answer candidate: text, character span [start, end) in the context, probability, raw score."""

    text: str
    start: int
    end: int
    score: float
    logit: float = 0.0


@dataclass
class QAPrediction:
    """The best answer for one question ("" when unanswerable), its n-best list and the null score gap."""

    answer: Answer
    n_best: list[Answer] = field(default_factory=list)
    null_score_diff: float | None = None


def encode_qa(
    questions: Sequence[str],
    contexts: Sequence[str],
    tokenizer: BertTokenizer,
    max_seq_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
    answers: Sequence[tuple[int, int] | None] | None = None,
) -> list[Feature]:
    """Window features for question/context pairs.

    ``answers`` (training only): per example the answer's character span [start, end) in its
    context, or None for an unanswerable question; windows get ``start_positions``/``end_positions``.
    Every feature carries ``example_index``, ``offsets`` (per token: (char_start, char_end) in the
    context, or None outside the context) and ``max_context`` (per token: is this its best window).
    """
    if len(questions) != len(contexts):
        raise BertForgeError(f"{len(questions)} questions but {len(contexts)} contexts")
    backend = tokenizer.backend_tokenizer
    question_encodings = backend.encode_batch(list(questions), add_special_tokens=False)
    context_encodings = backend.encode_batch(list(contexts), add_special_tokens=False)
    layout = special_layout(tokenizer)
    head, middle, tail = _ids(layout.pair_prefix), _ids(layout.pair_middle), _ids(layout.pair_suffix)
    head_types, middle_types = _types(layout.pair_prefix), _types(layout.pair_middle)
    tail_types = _types(layout.pair_suffix)
    features: list[Feature] = []
    for index, (q, c) in enumerate(zip(question_encodings, context_encodings, strict=True)):
        query = q.ids[:max_query_length]
        room = max_seq_length - len(query) - layout.pair_specials  # [CLS] q [SEP] ... [SEP]
        if room <= doc_stride:
            raise BertForgeError(
                f"max_seq_length {max_seq_length} leaves {room} context tokens per window after a "
                f"{len(query)}-token question, not more than doc_stride {doc_stride}; raise "
                "max_seq_length or lower doc_stride / max_query_length"
            )
        windows = token_windows(len(c.ids), room, doc_stride)
        owner = max_context_owner(windows, len(c.ids))
        token_span = None
        if answers is not None and answers[index] is not None:
            token_span = _answer_tokens(c.offsets, *answers[index])  # type: ignore[misc]
        prefix = len(head) + len(query) + len(middle)  # the context's first position in the window
        query_types = [*head_types, *[layout.type_a] * len(query), *middle_types]
        for window_index, (start, end) in enumerate(windows):
            length = end - start
            feature: Feature = {
                "input_ids": [*head, *query, *middle, *c.ids[start:end], *tail],
                "example_index": index,
                "offsets": [None] * prefix + list(c.offsets[start:end]) + [None] * len(tail),
                "max_context": [False] * prefix
                + [owner[p] == window_index for p in range(start, end)]
                + [False] * len(tail),
            }
            if layout.token_type_ids:
                feature["token_type_ids"] = [*query_types, *[layout.type_b] * length, *tail_types]
            if answers is not None:
                first, last = 0, 0  # [CLS]: no (whole) answer in this window
                if token_span is not None and start <= token_span[0] and token_span[1] < end:
                    first, last = token_span[0] - start + prefix, token_span[1] - start + prefix
                feature["start_positions"], feature["end_positions"] = first, last
            features.append(feature)
    return features


def _answer_tokens(
    offsets: Sequence[tuple[int, int]], char_start: int, char_end: int
) -> tuple[int, int] | None:
    """First and last context token overlapping characters [char_start, char_end), or None."""
    first = next((k for k, (s, e) in enumerate(offsets) if e > char_start and s < char_end), None)
    if first is None:
        return None
    last = first
    while last + 1 < len(offsets) and offsets[last + 1][0] < char_end:
        last += 1
    return first, last


def answer_char_spans(examples: Sequence[QAExample]) -> list[tuple[int, int] | None]:
    """Training targets: the first reference answer's [start, end) of each example, None if impossible."""
    spans: list[tuple[int, int] | None] = []
    for example in examples:
        if example.is_impossible or not example.answers:
            spans.append(None)
            continue
        answer = example.answers[0]
        start = int(answer["answer_start"])
        end = start + len(answer["text"])
        if start < 0 or example.context[start:end] != answer["text"]:
            raise BertForgeError(
                f"question {example.id}: answer {answer['text']!r} is not at character {start} of its "
                "context; fix answer_start"
            )
        spans.append((start, end))
    return spans


# ----------------------------------------------------------------------------------------- decoding
def decode_qa(
    features: Sequence[Feature],
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    contexts: Sequence[str],
    n_best: int = 20,
    max_answer_length: int = 30,
    version_2: bool = False,
    null_score_diff_threshold: float = 0.0,
) -> list[QAPrediction]:
    """Answer spans per example from per-window start/end logits (arrays of each window's length)."""
    candidates: list[list[tuple[float, int, int]]] = [[] for _ in contexts]
    null_scores = [math.inf] * len(contexts)
    for feature, starts, ends in zip(features, start_logits, end_logits, strict=True):
        index = feature["example_index"]
        offsets, best_window = feature["offsets"], feature["max_context"]
        null_scores[index] = min(null_scores[index], float(starts[0] + ends[0]))
        top_starts = np.argsort(starts)[::-1][:n_best]
        top_ends = np.argsort(ends)[::-1][:n_best]
        for s in top_starts:
            if offsets[s] is None or not best_window[s]:
                continue
            for e in top_ends:
                if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                candidates[index].append((float(starts[s] + ends[e]), offsets[s][0], offsets[e][1]))
    predictions = []
    for index, context in enumerate(contexts):
        ranked = sorted(set(candidates[index]), key=lambda c: (-c[0], c[1], c[2]))[:n_best]
        if not ranked:
            ranked = [(null_scores[index], 0, 0)]
        has_null = version_2 and math.isfinite(null_scores[index])
        # v2: the null answer takes part in the softmax, so span probabilities leave room for it.
        logits = np.array([c[0] for c in ranked] + ([null_scores[index]] if has_null else []))
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        n_best_answers = [
            Answer(context[s:e], s, e, float(p), float(logit))
            for (logit, s, e), p in zip(ranked, probs, strict=False)
        ]
        best = n_best_answers[0]
        diff = None
        if has_null:
            diff = null_scores[index] - best.logit
            if diff > null_score_diff_threshold:
                best = Answer("", 0, 0, float(probs[-1]), null_scores[index])
        predictions.append(QAPrediction(best, n_best_answers, diff))
    return predictions
