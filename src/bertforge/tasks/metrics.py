"""Evaluation metrics for fine-tuned tasks, written with numpy to give the numbers the usual tools give.

Each metric follows a reference implementation, and the tests compare against it:

* accuracy, F1 (binary / macro / micro) and Matthews correlation: scikit-learn. Macro F1 averages
  over every label seen in the predictions or the references; an undefined precision counts as 0.
* Pearson and Spearman (ties get their average rank): scipy. Like scipy, a constant input gives
  ``nan``, because the correlation is undefined.
* entity precision / recall / F1: seqeval's default mode, entities from :func:`~.tags.get_entities`
  (an ``I-`` without ``B-`` starts an entity; IOB1, BIO and BIOES are all read correctly).
* SQuAD exact match and F1: the official v2.0 evaluation script (which scores v1.1 files like the
  v1.1 script): answers lowercased, punctuation and the articles a/an/the removed, whitespace
  collapsed; the best reference counts; an empty prediction means "no answer" and scores 1 on
  questions without answers. Percentages, as the script prints them.
* CMRC2018 exact match and F1: its official script: Chinese characters count one by one, runs of
  other characters are split into words; F1 comes from the longest common substring of those
  segments after removing its list of punctuation (full-width included).
"""

from __future__ import annotations

import logging
import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import BertForgeError
from .examples import QAExample
from .tags import get_entities, normalize_scheme

logger = logging.getLogger(__name__)

MAIN_METRIC = {
    "classification": "accuracy",
    "regression": "pearson",
    "ner": "f1",
    "qa": "f1",
    "multiple-choice": "accuracy",
}


def _pair(preds: Iterable[Any], labels: Iterable[Any]) -> tuple[list, list]:
    preds, labels = list(preds), list(labels)
    if len(preds) != len(labels):
        raise BertForgeError(f"{len(preds)} predictions for {len(labels)} references; pass one per example")
    if not preds:
        raise BertForgeError("no predictions to score")
    return preds, labels


# ----------------------------------------------------------------------------------- classification
def accuracy(preds: Iterable[Any], labels: Iterable[Any]) -> float:
    """Fraction of predictions equal to their label."""
    preds, labels = _pair(preds, labels)
    return float(sum(bool(p == t) for p, t in zip(preds, labels, strict=True))) / len(preds)


def _counts(preds: list, labels: list, label: Any) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one label."""
    tp = sum(bool(p == label and t == label) for p, t in zip(preds, labels, strict=True))
    return tp, sum(bool(p == label) for p in preds) - tp, sum(bool(t == label) for t in labels) - tp


def _f1_of(tp: int, fp: int, fn: int) -> float:
    # 2PR/(P+R) written so that an undefined precision or recall counts as 0, as sklearn does.
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def f1(preds: Iterable[Any], labels: Iterable[Any], average: str = "binary", pos_label: Any = 1) -> float:
    """F1 of ``pos_label`` ("binary"), the mean of per-label F1 ("macro"), or F1 of the pooled
    counts ("micro", which equals accuracy for single-label classification)."""
    preds, labels = _pair(preds, labels)
    if average == "binary":
        return _f1_of(*_counts(preds, labels, pos_label))
    present = sorted(set(preds) | set(labels), key=str)
    counts = [_counts(preds, labels, label) for label in present]
    if average == "macro":
        return float(np.mean([_f1_of(*c) for c in counts]))
    if average == "micro":
        tp, fp, fn = (sum(column) for column in zip(*counts, strict=True))
        return _f1_of(tp, fp, fn)
    raise BertForgeError(f"unknown F1 average {average!r}; choose from binary, macro, micro")


def matthews_corrcoef(preds: Iterable[Any], labels: Iterable[Any]) -> float:
    """Matthews correlation (multi-class form of Gorodkin 2004, as sklearn); 0 when undefined."""
    preds, labels = _pair(preds, labels)
    classes = {label: i for i, label in enumerate(sorted(set(preds) | set(labels), key=str))}
    confusion = np.zeros((len(classes), len(classes)), dtype=np.float64)  # (true, predicted)
    np.add.at(confusion, ([classes[t] for t in labels], [classes[p] for p in preds]), 1)
    true_sum, pred_sum = confusion.sum(axis=1), confusion.sum(axis=0)
    correct, samples = np.trace(confusion), confusion.sum()
    cov_true_pred = correct * samples - true_sum @ pred_sum
    cov_pred = samples**2 - pred_sum @ pred_sum
    cov_true = samples**2 - true_sum @ true_sum
    if cov_pred * cov_true == 0:
        return 0.0
    return float(cov_true_pred / math.sqrt(cov_true * cov_pred))


# --------------------------------------------------------------------------------------- regression
def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson correlation; nan when either input is constant."""
    a, b = (np.asarray(v, dtype=np.float64) for v in _pair(x, y))
    a, b = a - a.mean(), b - b.mean()
    norm = math.sqrt(float(a @ a) * float(b @ b))
    if norm == 0:
        return float("nan")
    return max(-1.0, min(1.0, float(a @ b) / norm))


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (scipy.stats.rankdata's "average")."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # Start of each run of equal values, and the average rank of the run.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    average = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (Pearson of average ranks); nan when either input is constant."""
    a, b = (np.asarray(v, dtype=np.float64) for v in _pair(x, y))
    return pearson(_ranks(a), _ranks(b))


# ---------------------------------------------------------------------------------------------- NER
def _prf(tp: int, pred: int, true: int) -> dict[str, float]:
    precision = tp / pred if pred else 0.0
    recall = tp / true if true else 0.0
    score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": score}


def entity_scores(
    true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]], scheme: str = "BIO"
) -> dict[str, Any]:
    """Entity-level micro precision / recall / F1 and the same per type, as seqeval's default mode.

    An entity counts when type, first and last token all match. ``scheme`` (IOB1, BIO, BIOES) is
    checked but does not change the reading: seqeval's rules read all three correctly. Returns
    ``{"precision", "recall", "f1", "per_type": {TYPE: {"precision", "recall", "f1", "support"}}}``
    where support is the number of true entities of that type.
    """
    normalize_scheme(scheme)
    true_tags, pred_tags = _pair(true_tags, pred_tags)
    true_set: set[tuple[str, int, int, int]] = set()  # (type, sentence, start, end)
    pred_set: set[tuple[str, int, int, int]] = set()
    for n, (true, pred) in enumerate(zip(true_tags, pred_tags, strict=True)):
        if len(true) != len(pred):
            raise BertForgeError(f"sentence {n} has {len(true)} true tags but {len(pred)} predicted tags")
        true_set.update((t, n, s, e) for t, s, e in get_entities(list(true)))
        pred_set.update((t, n, s, e) for t, s, e in get_entities(list(pred)))
    per_type = {}
    for type_ in sorted({e[0] for e in true_set | pred_set}):
        true_of = {e for e in true_set if e[0] == type_}
        pred_of = {e for e in pred_set if e[0] == type_}
        per_type[type_] = {
            **_prf(len(true_of & pred_of), len(pred_of), len(true_of)),
            "support": len(true_of),
        }
    return {**_prf(len(true_set & pred_set), len(pred_set), len(true_set)), "per_type": per_type}


# ----------------------------------------------------------------------------------------- SQuAD QA
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official SQuAD normalisation: lowercase, drop punctuation and articles, fix whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _squad_f1(gold: str, pred: str) -> float:
    gold_tokens, pred_tokens = normalize_answer(gold).split(), normalize_answer(pred).split()
    if not gold_tokens or not pred_tokens:  # a no-answer scores 1 only against a no-answer
        return float(gold_tokens == pred_tokens)
    same = sum((Counter(gold_tokens) & Counter(pred_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _best_threshold(
    predictions: Mapping[str, str],
    scores: dict[str, float],
    probs: Mapping[str, float],
    has_answer: dict[str, bool],
) -> tuple[float, float]:
    # The official find_best_thresh: sweep questions by rising no-answer probability, switching
    # each from "no answer" to its prediction, and keep the best running total.
    current: float = sum(not has for has in has_answer.values())
    best = current
    threshold = 0.0
    for qid in sorted(probs, key=lambda k: probs[k]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        else:
            current -= 1 if predictions.get(qid) else 0
        if current > best:
            best, threshold = current, probs[qid]
    return 100.0 * best / len(scores), threshold


def squad_scores(
    predictions: Mapping[str, str],
    examples: Sequence[QAExample],
    no_answer_probs: Mapping[str, float] | None = None,
    no_answer_threshold: float = 1.0,
) -> dict[str, Any]:
    """SQuAD v1.1 / v2.0 exact match and F1 in percent, as the official v2.0 script reports them.

    ``predictions`` maps question id to answer text ("" = no answer). With ``no_answer_probs``, a
    question whose probability exceeds ``no_answer_threshold`` counts as answered "no answer", and
    ``best_exact``/``best_f1`` with their thresholds are added. Keys: ``exact``, ``f1``, ``total``,
    ``HasAns_*`` / ``NoAns_*`` (questions with / without answers, where there are any) and
    ``missing`` (questions without a prediction, scored 0 like the v1.1 script).
    """
    if not examples:
        raise BertForgeError("no QA examples to score")
    exact: dict[str, float] = {}
    f1_scores: dict[str, float] = {}
    has_answer: dict[str, bool] = {}
    missing = 0
    for example in examples:
        golds = [a["text"] for a in example.answers if normalize_answer(a["text"])] or [""]
        has_answer[example.id] = bool(example.answers)
        if example.id not in predictions:
            missing += 1
            exact[example.id] = f1_scores[example.id] = 0.0
            continue
        pred = predictions[example.id]
        exact[example.id] = max(float(normalize_answer(g) == normalize_answer(pred)) for g in golds)
        f1_scores[example.id] = max(_squad_f1(g, pred) for g in golds)
    if missing:
        logger.warning("%d of %d questions have no prediction; they score 0", missing, len(examples))

    def thresholded(scores: dict[str, float]) -> dict[str, float]:
        if no_answer_probs is None:
            return scores
        return {
            qid: float(not has_answer[qid]) if no_answer_probs.get(qid, 0.0) > no_answer_threshold else s
            for qid, s in scores.items()
        }

    final_exact, final_f1 = thresholded(exact), thresholded(f1_scores)
    result: dict[str, Any] = {}

    def add(prefix: str, ids: list[str]) -> None:
        result[f"{prefix}exact"] = 100.0 * sum(final_exact[q] for q in ids) / len(ids)
        result[f"{prefix}f1"] = 100.0 * sum(final_f1[q] for q in ids) / len(ids)
        result[f"{prefix}total"] = len(ids)

    add("", list(exact))
    has_ids = [q for q, has in has_answer.items() if has]
    no_ids = [q for q, has in has_answer.items() if not has]
    if has_ids:
        add("HasAns_", has_ids)
    if no_ids:
        add("NoAns_", no_ids)
    result["missing"] = missing
    if no_answer_probs is not None:
        result["best_exact"], result["best_exact_thresh"] = _best_threshold(
            predictions, exact, no_answer_probs, has_answer
        )
        result["best_f1"], result["best_f1_thresh"] = _best_threshold(
            predictions, f1_scores, no_answer_probs, has_answer
        )
    return result


# -------------------------------------------------------------------------------------- CMRC2018 QA
# The official script's punctuation list, kept as is ("……" is two characters and so never matches
# one; keeping it documents that the scores follow the script, quirks included).
_CMRC_PUNCTUATION = {"-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=", "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "……", "·", "、", "「", "」", "（", "）", "－", "～", "『", "』"}  # fmt: skip
_CJK = re.compile(r"[\u4e00-\u9fa5]")
# Stands in for nltk.word_tokenize on the non-Chinese runs: words (with inner . , ' kept, as in
# 3.14 or 1,000), and every other symbol on its own.
_WORDS = re.compile(r"\w+(?:[.,']\w+)*|[^\w\s]")


def _cmrc_segments(text: str, drop_punctuation: bool) -> list[str]:
    segments: list[str] = []
    run = ""
    for char in str(text).lower().strip():
        if drop_punctuation and char in _CMRC_PUNCTUATION:
            continue
        if _CJK.match(char) or char in _CMRC_PUNCTUATION:
            segments.extend(_WORDS.findall(run))
            run = ""
            segments.append(char)
        else:
            run += char
    segments.extend(_WORDS.findall(run))
    return segments


def _longest_common_run(a: list[str], b: list[str]) -> int:
    """Length of the longest common contiguous run (the script's ``find_lcs``)."""
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                current[j + 1] = previous[j] + 1
                best = max(best, current[j + 1])
        previous = current
    return best


def _cmrc_f1(gold: str, pred: str) -> float:
    gold_segments, pred_segments = _cmrc_segments(gold, True), _cmrc_segments(pred, True)
    common = _longest_common_run(gold_segments, pred_segments)
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_segments), common / len(gold_segments)
    return 2 * precision * recall / (precision + recall)


def _cmrc_strip(text: str) -> str:
    return "".join(ch for ch in str(text).lower().strip() if ch not in _CMRC_PUNCTUATION)


def cmrc_scores(predictions: Mapping[str, str], examples: Sequence[QAExample]) -> dict[str, Any]:
    """CMRC2018 exact match and F1 in percent, as its official evaluation script computes them
    (max over reference answers; a missing prediction scores 0 and is counted in ``missing``).

    Keys: ``exact``, ``f1``, ``average`` (their mean, the leaderboard's figure), ``total``, ``missing``.
    """
    if not examples:
        raise BertForgeError("no QA examples to score")
    exact = f1_total = 0.0
    missing = 0
    for example in examples:
        if example.id not in predictions:
            missing += 1
            continue
        pred = str(predictions[example.id])
        golds = [a["text"] for a in example.answers] or [""]
        f1_total += max(_cmrc_f1(g, pred) for g in golds)
        exact += float(any(_cmrc_strip(g) == _cmrc_strip(pred) for g in golds))
    if missing:
        logger.warning("%d of %d questions have no prediction; they score 0", missing, len(examples))
    total = len(examples)
    result = {"exact": 100.0 * exact / total, "f1": 100.0 * f1_total / total}
    return {**result, "average": (result["exact"] + result["f1"]) / 2, "total": total, "missing": missing}


# -------------------------------------------------------------------------------------- per task
def _label_order(label: Any) -> tuple[int, float, str]:
    # bertforge's label order (tasks.readers.label_list): numbers numerically, then the rest by name.
    text = str(label)
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return (0, float(text), text)
    return (1, 0.0, text)


def positive_label(labels: Sequence[Any] | None, seen: Iterable[Any] = ()) -> Any | None:
    """The positive class of a binary task, or None when the task is not binary.

    As GLUE (and transformers' ``run_glue``, which scores label id 1) does: the positive class is
    the model's label with id 1. ``labels`` is the model's label set in id order; bertforge sorts
    labels when it fine-tunes (numbers numerically, then names alphabetically), so that is ``1`` for
    0/1 labels, ``positive`` for negative/positive, ``yes`` for no/yes, ``true`` for false/true.
    Without ``labels``, the labels ``seen`` in predictions and references are sorted that way (binary
    only when there are exactly two, or just the label ``1``).
    """
    if labels is not None:
        labels = list(labels)
        return labels[1] if len(labels) == 2 else None
    present: dict[str, Any] = {}
    for value in seen:
        present.setdefault(str(value), value)
    ordered = sorted(present, key=_label_order)
    if len(ordered) == 2:
        return present[ordered[1]]
    if ordered == ["1"]:
        return present["1"]
    return None


def _is_chinese(examples: Sequence[QAExample]) -> bool:
    sample = "".join(e.context[:200] for e in examples[:50])
    return len(_CJK.findall(sample)) > 0.3 * max(len(sample), 1)


def task_metrics(task: str, predictions: Any, references: Any, **options: Any) -> dict[str, Any]:
    """All the usual metrics of a task; ``MAIN_METRIC[task]`` names the one to select models by.

    * classification: predictions and labels -> accuracy, macro_f1, mcc, and for a binary task f1,
      the F1 of the positive class (:func:`positive_label`; ``labels=`` gives the model's label set
      in id order, otherwise the two labels seen decide);
    * regression: predicted and gold scores -> pearson, spearman, mse;
    * ner: predicted and gold tag sequences (``references`` first in seqeval, here second) ->
      :func:`entity_scores` plus token accuracy; ``scheme=`` passes through;
    * qa: ``{id: answer}`` and the QAExamples -> :func:`squad_scores`, or :func:`cmrc_scores` for
      Chinese contexts (``qa_metric="squad"|"cmrc"`` forces one); ``no_answer_probs=`` and
      ``no_answer_threshold=`` pass through to SQuAD;
    * multiple-choice: predicted and gold ending indices -> accuracy.
    """
    if task == "classification":
        result = {
            "accuracy": accuracy(predictions, references),
            "macro_f1": f1(predictions, references, average="macro"),
            "mcc": matthews_corrcoef(predictions, references),
        }
        positive = positive_label(options.get("labels"), [*references, *predictions])
        if positive is not None:
            result["f1"] = f1(predictions, references, pos_label=positive)
        return result
    if task == "regression":
        x, y = (np.asarray(v, dtype=np.float64) for v in _pair(predictions, references))
        return {"pearson": pearson(x, y), "spearman": spearman(x, y), "mse": float(np.mean((x - y) ** 2))}
    if task == "ner":
        scores = entity_scores(references, predictions, scheme=options.get("scheme", "BIO"))
        pairs = [
            (p, t)
            for ps, ts in zip(predictions, references, strict=True)
            for p, t in zip(ps, ts, strict=True)
        ]
        scores["accuracy"] = sum(p == t for p, t in pairs) / max(len(pairs), 1)
        return scores
    if task == "qa":
        kind = options.get("qa_metric") or ("cmrc" if _is_chinese(references) else "squad")
        if kind == "cmrc":
            return cmrc_scores(predictions, references)
        if kind != "squad":
            raise BertForgeError(f"unknown qa_metric {kind!r}; choose from squad, cmrc")
        return squad_scores(
            predictions,
            references,
            no_answer_probs=options.get("no_answer_probs"),
            no_answer_threshold=options.get("no_answer_threshold", 1.0),
        )
    if task == "multiple-choice":
        return {"accuracy": accuracy(predictions, references)}
    raise BertForgeError(f"unknown task {task!r}; choose from {', '.join(MAIN_METRIC)}")
