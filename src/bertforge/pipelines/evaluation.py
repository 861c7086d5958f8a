"""Task files -> predictions and metrics: what ``bertforge evaluate``, ``bertforge predict`` and the
per-epoch evaluation of ``bertforge finetune`` share, so all three judge a model the same way
(through the same windowed pipelines a user calls).

Metrics by task (the main one, which picks the best checkpoint, first): classification accuracy,
macro F1, MCC; regression Pearson, Spearman, MSE; NER entity F1, precision, recall (seqeval rules)
and per-type scores; QA F1 and exact match (SQuAD's official rules, or CMRC2018's character-level
rules when the contexts are mostly Chinese); multiple choice accuracy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BertForgeError
from ..tasks.examples import TaggedExample
from .classification import choice_scores, sequence_scores
from .common import InferenceSettings
from .qa import answer_questions
from .tagging import entities_from_tags, word_tags


def read_examples(
    task: str,
    path: str | os.PathLike[str],
    *,
    text_column: str | int | None = None,
    pair_column: str | int | None = None,
    label_column: str | int | None = None,
    on_error: str = "raise",
) -> tuple[list[Any], list[str]]:
    """(examples, skipped-row messages) of a task file, with the task's reader."""
    from ..tasks import readers

    path = Path(path)
    if not path.is_file():
        raise BertForgeError(f"{path} is not a file; pass the {task} data file")
    result: Any
    if task in ("classification", "regression"):
        result = readers.read_text_examples(
            path,
            text_column=text_column,
            pair_column=pair_column,
            label_column=label_column,
            on_error=on_error,
            regression=task == "regression",
        )
    elif task == "ner":
        result = readers.read_tagged_examples(path, on_error=on_error)
    elif task == "qa":
        result = readers.read_qa_examples(path, on_error=on_error)
    elif task == "multiple-choice":
        result = readers.read_choice_examples(path, on_error=on_error)
    else:
        raise BertForgeError(f"unknown task {task!r}")
    if not result.examples:
        raise BertForgeError(f"{path} has no examples; check the file and its format")
    return result.examples, result.skipped


def _mostly_chinese(texts: Sequence[str]) -> bool:
    sample = "".join(texts[:200])
    cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in sample)
    return cjk > 0.3 * max(1, len(sample))


def word_spans(example: TaggedExample) -> tuple[str, list[tuple[int, int]]]:
    """The example's text and each word's character span (words joined by spaces when no text)."""
    spans: list[tuple[int, int]] = []
    if example.text is not None:
        cursor = 0
        for word in example.words:
            start = example.text.find(word, cursor)
            if start < 0:
                break
            spans.append((start, start + len(word)))
            cursor = start + len(word)
        if len(spans) == len(example.words):
            return example.text, spans
    spans, cursor = [], 0
    for word in example.words:
        spans.append((cursor, cursor + len(word)))
        cursor += len(word) + 1
    return " ".join(example.words), spans


def predict_examples(
    task: str, model: Any, tokenizer: Any, examples: Sequence[Any], settings: InferenceSettings
) -> list[dict[str, Any]]:
    """One JSON-able prediction per example, in order."""
    if task in ("classification", "regression"):
        scores = sequence_scores(
            model, tokenizer, [e.text for e in examples], [e.text_pair for e in examples], settings
        )
        if task == "regression":
            return [
                {"line": e.line, "text": e.text, "value": float(v)}
                for e, v in zip(examples, scores, strict=True)
            ]
        id2label = model.config.id2label
        return [
            {
                "line": e.line,
                "text": e.text,
                **({"text_pair": e.text_pair} if e.text_pair else {}),
                "label": id2label[int(row.argmax())],
                "score": float(row.max()),
                "scores": {id2label[i]: float(p) for i, p in enumerate(row)},
            }
            for e, row in zip(examples, scores, strict=True)
        ]
    if task == "ner":
        tagged = word_tags(model, tokenizer, [e.words for e in examples], settings)
        out = []
        for example, (tags, probs) in zip(examples, tagged, strict=True):
            text, spans = word_spans(example)
            entities = entities_from_tags(tags, spans, text, probs)
            out.append(
                {
                    "line": example.line,
                    "words": example.words,
                    "tags": tags,
                    "entities": [asdict(x) for x in entities],
                }
            )
        return out
    if task == "qa":
        predictions = answer_questions(
            model, tokenizer, [e.question for e in examples], [e.context for e in examples], settings
        )
        return [
            {
                "id": e.id,
                "answer": p.answer.text,
                "start": p.answer.start,
                "end": p.answer.end,
                "score": p.answer.score,
                "null_score_diff": p.null_score_diff,
                "n_best": [asdict(a) for a in p.n_best[:5]],
            }
            for e, p in zip(examples, predictions, strict=True)
        ]
    if task == "multiple-choice":
        scores = choice_scores(model, tokenizer, examples, settings)
        return [
            {"line": e.line, "label": int(row.argmax()), "scores": [float(p) for p in row]}
            for e, row in zip(examples, scores, strict=True)
        ]
    raise BertForgeError(f"unknown task {task!r}")


def compute_metrics(
    task: str, examples: Sequence[Any], predictions: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The task's metrics for predictions from :func:`predict_examples`; the main metric first."""
    from ..tasks import metrics

    if task == "classification":
        gold = [str(e.label) for e in examples]
        pred = [p["label"] for p in predictions]
        return {
            "accuracy": metrics.accuracy(pred, gold),
            "f1_macro": metrics.f1(pred, gold, average="macro"),
            "mcc": metrics.matthews_corrcoef(pred, gold),
        }
    if task == "regression":
        gold_values = [float(e.label) for e in examples]
        values = [p["value"] for p in predictions]
        return {
            "pearson": metrics.pearson(values, gold_values),
            "spearman": metrics.spearman(values, gold_values),
            "mse": float(np.mean((np.array(values) - np.array(gold_values)) ** 2)),
        }
    if task == "ner":
        scores = metrics.entity_scores([e.tags for e in examples], [p["tags"] for p in predictions])
        return {k: scores[k] for k in ("f1", "precision", "recall")} | {
            "per_type": scores.get("per_type", {})
        }
    if task == "qa":
        answers = {e.id: p["answer"] for e, p in zip(examples, predictions, strict=True)}
        if _mostly_chinese([e.context for e in examples]):
            scores = metrics.cmrc_scores(answers, examples)
        else:
            no_answer = {
                e.id: 1.0 if p["answer"] == "" else 0.0 for e, p in zip(examples, predictions, strict=True)
            }
            scores = metrics.squad_scores(answers, examples, no_answer_probs=no_answer)
        main = next(k for k in scores if k.lower() == "f1")
        return {"f1": scores[main], **{k: v for k, v in scores.items() if k != main}}
    if task == "multiple-choice":
        return {"accuracy": metrics.accuracy([p["label"] for p in predictions], [e.label for e in examples])}
    raise BertForgeError(f"unknown task {task!r}")


def check_labelled(task: str, examples: Sequence[Any], path: str | os.PathLike[str]) -> None:
    """Evaluation needs gold labels: refuse a file without them, naming the first unlabelled row."""
    for example in examples:
        missing = (
            example.tags is None
            if task == "ner"
            else (not example.answers and not example.is_impossible)
            if task == "qa"
            else example.label is None
        )
        if missing:
            where = getattr(example, "line", None) or getattr(example, "id", "?")
            raise BertForgeError(f"{path}:{where}: example has no gold label; evaluate needs a labelled file")


def evaluate_examples(
    task: str, model: Any, tokenizer: Any, examples: Sequence[Any], settings: InferenceSettings
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(metrics, predictions) of a model on labelled examples."""
    predictions = predict_examples(task, model, tokenizer, examples, settings)
    return compute_metrics(task, examples, predictions), predictions


def run_on_file(
    checkpoint: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    task: str | None = None,
    labelled: bool = True,
    tokenizer_path: str | os.PathLike[str] | None = None,
    reader_options: dict[str, Any] | None = None,
    limit: int | None = None,
    **settings: Any,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], list[str]]:
    """(metrics or None, predictions, skipped rows) of a fine-tuned checkpoint on a task file.

    ``task`` defaults to the checkpoint's (from config.json); ``settings`` override
    :class:`InferenceSettings` (max_length, stride, batch_size, dtype ...), which otherwise come from
    the checkpoint's ``finetune_config.json``. ``labelled=False`` only predicts.
    """
    from ..tokenizer import BertTokenizer
    from .common import detect_task, load_task_model

    task = task or detect_task(checkpoint)
    reader_task = task
    examples, skipped = read_examples(reader_task, path, **(reader_options or {}))
    examples = examples[:limit] if limit else examples
    if labelled:
        check_labelled(task, examples, path)
    model, task = load_task_model(checkpoint, task)
    if labelled and task in ("classification", "ner"):
        known = set(model.config.label2id)
        for example in examples:
            for label in example.tags if task == "ner" else [str(example.label)]:
                if label not in known:
                    raise BertForgeError(
                        f"{path}:{example.line}: label {label!r} is not one of the model's labels "
                        f"({', '.join(sorted(known)[:20])}); check the file or the checkpoint"
                    )
    tokenizer = BertTokenizer.from_pretrained(Path(tokenizer_path or checkpoint))
    inference = InferenceSettings.for_checkpoint(checkpoint, task, **settings)
    predictions = predict_examples(task, model, tokenizer, examples, inference)
    metrics = compute_metrics(task, examples, predictions) if labelled else None
    return metrics, predictions, skipped
