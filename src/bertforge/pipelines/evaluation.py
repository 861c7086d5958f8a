"""Task files -> predictions and metrics: what ``bertforge evaluate``, ``bertforge predict`` and the
per-epoch evaluation of ``bertforge finetune`` share, so all three judge a model the same way
(through the same windowed pipelines a user calls).

What a task reads, predicts and scores is its :class:`~bertforge.tasks.registry.TaskDefinition`;
this module only strings those steps together. Metrics come from
:func:`bertforge.tasks.metrics.task_metrics` (the main metric, which picks the best checkpoint,
first): classification accuracy, macro F1, MCC (and F1 of label 1 for 0/1 labels); regression
Pearson, Spearman, MSE; NER entity F1, precision, recall, per-type scores and token accuracy; QA F1
and exact match (SQuAD's official rules, or CMRC2018's character-level rules when the contexts are
mostly Chinese); multiple choice accuracy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import BertForgeError
from ..inference import convert_for_inference
from ..tasks.registry import get_task, read_task_file, word_spans
from .common import InferenceSettings

__all__ = [
    "check_known_labels",
    "check_labelled",
    "compute_metrics",
    "evaluate_examples",
    "predict_examples",
    "read_examples",
    "run_on_file",
    "word_spans",
]


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
    return read_task_file(
        task,
        path,
        text_column=text_column,
        pair_column=pair_column,
        label_column=label_column,
        on_error=on_error,
    )


def predict_examples(
    task: str, model: Any, tokenizer: Any, examples: Sequence[Any], settings: InferenceSettings
) -> list[dict[str, Any]]:
    """One JSON-able prediction per example, in order (the task definition's ``predict``)."""
    return get_task(task).predict(model, tokenizer, examples, settings)


def compute_metrics(
    task: str, examples: Sequence[Any], predictions: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The task's metrics for predictions from :func:`predict_examples`; the main metric first."""
    return get_task(task).metrics(examples, predictions)


def check_labelled(
    task: str,
    examples: Sequence[Any],
    path: str | os.PathLike[str],
    fix: str = "evaluate needs a labelled file",
) -> None:
    """Evaluation and training need gold labels: refuse a file without them, naming the first
    unlabelled row; ``fix`` says what the reader of the message should do."""
    definition = get_task(task)
    for example in examples:
        if not definition.is_labelled(example):
            where = getattr(example, "line", None) or getattr(example, "id", "?")
            raise BertForgeError(f"{path}:{where}: example has no gold label; {fix}")


def check_known_labels(
    task: str,
    examples: Sequence[Any],
    known: Iterable[str],
    path: str | os.PathLike[str],
    problem: str = "is not one of the model's labels",
    fix: str = "check the file or the checkpoint",
) -> None:
    """Refuse a gold label (the task definition's ``gold_labels``) outside ``known``, naming the row."""
    definition = get_task(task)
    known = set(known)
    for example in examples:
        for label in definition.gold_labels(example):
            if label not in known:
                where = getattr(example, "line", None) or getattr(example, "id", "?")
                raise BertForgeError(
                    f"{path}:{where}: label {label!r} {problem} ({', '.join(sorted(known)[:20])}); {fix}"
                )


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
    the checkpoint's ``finetune_config.json``. ``labelled=False`` only predicts. The model is the
    task's head of the checkpoint's family, the tokenizer the family's (:func:`.common.load_tokenizer`).
    """
    from .common import check_vocabulary, detect_task, load_task_model, load_tokenizer

    task = task or detect_task(checkpoint)
    examples, skipped = read_examples(task, path, **(reader_options or {}))
    examples = examples[:limit] if limit else examples
    if labelled:
        check_labelled(task, examples, path)
    model, task = load_task_model(checkpoint, task)
    if labelled:
        check_known_labels(task, examples, model.config.label2id, path)
    tokenizer = load_tokenizer(Path(tokenizer_path or checkpoint))
    check_vocabulary(tokenizer, model.config, tokenizer_path or checkpoint)
    inference = InferenceSettings.for_checkpoint(checkpoint, task, **settings)
    # Loaded only to run: convert its own weights (bf16) rather than keep a converted copy beside them.
    model = convert_for_inference(model, inference.dtype)
    predictions = predict_examples(task, model, tokenizer, examples, inference)
    metrics = compute_metrics(task, examples, predictions) if labelled else None
    return metrics, predictions, skipped
