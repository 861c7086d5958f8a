"""One definition per fine-tuning task: everything ``finetune``, ``evaluate`` and ``predict`` need
to know about a task, in one place.

A :class:`TaskDefinition` holds the task's

* reader (file -> examples) and its gold-label checks,
* label set (from the training data) and the config fields it sets on the model,
* encoding of examples into training features,
* head kind (:data:`bertforge.auto.HEAD_KINDS`): the class comes from the checkpoint's family,
* prediction: model outputs -> one JSON-able prediction per example (the ``predict`` output),
* metrics (:func:`bertforge.tasks.metrics.task_metrics`, the main metric first),
* window defaults for inference.

:data:`TASKS` is the task list; :func:`register_task` adds one (a test registers a fake task and runs
it through ``finetune``), :func:`get_task` looks one up, :func:`task_for_head` maps a checkpoint's
head kind (from ``architectures``) back to its task. Model running lives in
:mod:`bertforge.pipelines` and is imported on first use, so this module stays light.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BertForgeError
from .examples import ReadResult, TaggedExample, TextExample
from .metrics import MAIN_METRIC, task_metrics

if TYPE_CHECKING:
    from ..pipelines.common import InferenceSettings
    from ..train.finetune_config import FinetuneConfig
    from .preprocess import Feature

# The options a reader may take; each task's reader uses the ones it understands.
READER_OPTIONS = ("text_column", "pair_column", "label_column", "on_error")


def _no_labels(train: Sequence[Any]) -> None:
    return None


def _no_overrides(labels: list[str] | None) -> dict[str, Any]:
    return {}


def _no_extra(train: Sequence[Any], config: FinetuneConfig) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class TaskDefinition:
    """A fine-tuning task. The callables:

    * ``read(path, options) -> ReadResult``: ``options`` holds :data:`READER_OPTIONS`;
    * ``is_labelled(example) -> bool``: does the example carry a gold label;
    * ``gold_labels(example) -> iterable of str``: labels that must be in the model's label set
      (empty for tasks without a label set);
    * ``label_set(train) -> list[str] | None``: the model's labels from the training examples;
    * ``config_overrides(labels) -> dict``: model config fields (id2label, problem_type ...);
    * ``config_extra(train, finetune_config) -> dict``: entries for the model config's ``extra``
      (QA: ``version_2_with_negative``);
    * ``encode(examples, tokenizer, label2id, finetune_config) -> features`` (training);
    * ``predict(model, tokenizer, examples, settings) -> [prediction dict]``, one per example;
    * ``metrics(examples, predictions) -> dict``, the main metric first;
    * ``detect(config) -> bool``: when several tasks share ``head``, whether a checkpoint with this
      config is this task (None: the fallback for its head);
    * ``from_line(text, line) -> example``: an unlabelled example from one line of plain text (a
      distillation's transfer data, ``transfer_format="lines"``); None when the task has no
      one-line form (QA, multiple choice).
    """

    name: str
    head: str
    main_metric: str
    read: Callable[[Path, dict[str, Any]], ReadResult[Any]]
    encode: Callable[[Sequence[Any], Any, dict[str, int] | None, FinetuneConfig], list[Feature]]
    predict: Callable[[Any, Any, Sequence[Any], InferenceSettings], list[dict[str, Any]]]
    metrics: Callable[[Sequence[Any], Sequence[dict[str, Any]]], dict[str, Any]]
    is_labelled: Callable[[Any], bool]
    gold_labels: Callable[[Any], Iterable[str]] = lambda example: ()
    label_set: Callable[[Sequence[Any]], list[str] | None] = _no_labels
    config_overrides: Callable[[list[str] | None], dict[str, Any]] = _no_overrides
    config_extra: Callable[[Sequence[Any], FinetuneConfig], dict[str, Any]] = _no_extra
    detect: Callable[[Any], bool] | None = None
    from_line: Callable[[str, int], Any] | None = None
    max_length: int = 128  # default window when neither the run nor the checkpoint says
    stride: int = 32  # default tokens shared by windows
    stride_setting: str = "window_stride"  # the FinetuneConfig field that sets the stride
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # free room for a task's own constants


TASKS: dict[str, TaskDefinition] = {}


def register_task(definition: TaskDefinition, replace: bool = False) -> TaskDefinition:
    """Add a task (``replace=True`` to redefine one); returns it."""
    if definition.name in TASKS and not replace:
        raise BertForgeError(f"task {definition.name!r} is already registered")
    from ..auto import HEAD_KINDS

    if definition.head not in HEAD_KINDS:
        raise BertForgeError(f"task {definition.name!r}: unknown head kind {definition.head!r}")
    TASKS[definition.name] = definition
    return definition


def unregister_task(name: str) -> None:
    TASKS.pop(name, None)


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


def get_task(name: str | TaskDefinition) -> TaskDefinition:
    """The definition of task ``name``, or an error naming the known tasks."""
    if isinstance(name, TaskDefinition):
        return name
    found = TASKS.get(name)
    if found is None:
        raise BertForgeError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return found


def task_for_head(kind: str, config: Any) -> str | None:
    """The task of a checkpoint saved with head ``kind``; ``config`` decides between tasks sharing a
    head (classification and regression), through their ``detect``."""
    candidates = [t for t in TASKS.values() if t.head == kind]
    for task in candidates:
        if task.detect is not None and task.detect(config):
            return task.name
    fallback = [t for t in candidates if t.detect is None]
    return fallback[0].name if fallback else (candidates[0].name if candidates else None)


def read_task_file(
    task: str | TaskDefinition, path: str | os.PathLike[str], **options: Any
) -> tuple[list[Any], list[str]]:
    """(examples, skipped-row messages) of a task file, with the task's reader."""
    definition = get_task(task)
    path = Path(path)
    if not path.is_file():
        raise BertForgeError(f"{path} is not a file; pass the {definition.name} data file")
    result = definition.read(path, {k: options.get(k) for k in READER_OPTIONS})
    if not result.examples:
        raise BertForgeError(f"{path} has no examples; check the file and its format")
    return result.examples, result.skipped


def _main_first(main: str, scores: dict[str, Any]) -> dict[str, Any]:
    return {main: scores[main], **{k: v for k, v in scores.items() if k != main}}


def _on_error(options: dict[str, Any]) -> str:
    return options.get("on_error") or "raise"


def _label_maps(labels: list[str] | None) -> dict[str, Any]:
    from .preprocess import label_maps

    if labels is None:
        return {}
    id2label, label2id = label_maps(labels)
    return {"id2label": id2label, "label2id": label2id}


# ------------------------------------------------------------------- classification and regression
def _read_texts(regression: bool) -> Callable[[Path, dict[str, Any]], ReadResult[Any]]:
    def read(path: Path, options: dict[str, Any]) -> ReadResult[Any]:
        from .readers import read_text_examples

        return read_text_examples(
            path,
            text_column=options.get("text_column"),
            pair_column=options.get("pair_column"),
            label_column=options.get("label_column"),
            on_error=_on_error(options),
            regression=regression,
        )

    return read


def _encode_texts(regression: bool) -> Callable[..., list[Feature]]:
    def encode(
        examples: Sequence[Any], tokenizer: Any, label2id: dict[str, int] | None, config: FinetuneConfig
    ) -> list[Feature]:
        from .preprocess import encode_texts

        assert config.max_seq_length is not None
        return encode_texts(examples, tokenizer, config.max_seq_length, label2id, regression, config.train)

    return encode


def _predict_classes(
    model: Any, tokenizer: Any, examples: Sequence[Any], settings: InferenceSettings
) -> list[dict[str, Any]]:
    from ..pipelines.classification import sequence_scores

    scores = sequence_scores(
        model, tokenizer, [e.text for e in examples], [e.text_pair for e in examples], settings
    )
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


def _predict_values(
    model: Any, tokenizer: Any, examples: Sequence[Any], settings: InferenceSettings
) -> list[dict[str, Any]]:
    from ..pipelines.classification import sequence_scores

    scores = sequence_scores(
        model, tokenizer, [e.text for e in examples], [e.text_pair for e in examples], settings
    )
    return [
        {"line": e.line, "text": e.text, "value": float(v)} for e, v in zip(examples, scores, strict=True)
    ]


def _classification_labels(train: Sequence[Any]) -> list[str]:
    from .readers import label_list

    return label_list(train)


def _is_regression(config: Any) -> bool:
    return bool(getattr(config, "problem_type", None) == "regression" or config.num_labels == 1)


CLASSIFICATION = TaskDefinition(
    name="classification",
    head="sequence-classification",
    main_metric=MAIN_METRIC["classification"],
    description="single texts or pairs into classes (CSV/TSV/JSONL)",
    read=_read_texts(regression=False),
    encode=_encode_texts(regression=False),
    predict=_predict_classes,
    metrics=lambda examples, predictions: task_metrics(
        "classification",
        [p["label"] for p in predictions],
        [str(e.label) for e in examples],
        # the model's labels in id order: the positive class of a binary task is id 1
        labels=list(predictions[0]["scores"]) if predictions and "scores" in predictions[0] else None,
    ),
    is_labelled=lambda e: e.label is not None,
    gold_labels=lambda e: [str(e.label)],
    label_set=_classification_labels,
    config_overrides=lambda labels: {**_label_maps(labels), "problem_type": "single_label_classification"},
    detect=None,
    from_line=lambda text, line: TextExample(text, None, None, line),
)

REGRESSION = TaskDefinition(
    name="regression",
    head="sequence-classification",
    main_metric=MAIN_METRIC["regression"],
    description="single texts or pairs to a score (CSV/TSV/JSONL)",
    read=_read_texts(regression=True),
    encode=_encode_texts(regression=True),
    predict=_predict_values,
    metrics=lambda examples, predictions: task_metrics(
        "regression", [p["value"] for p in predictions], [float(e.label) for e in examples]
    ),
    is_labelled=lambda e: e.label is not None,
    config_overrides=lambda labels: {
        "id2label": {0: "LABEL_0"},
        "label2id": {"LABEL_0": 0},
        "problem_type": "regression",
    },
    detect=_is_regression,
    from_line=lambda text, line: TextExample(text, None, None, line),
)


# ---------------------------------------------------------------------------------------------- NER
def _read_tagged(path: Path, options: dict[str, Any]) -> ReadResult[Any]:
    from .readers import read_tagged_examples

    return read_tagged_examples(path, on_error=_on_error(options))


def _encode_tagged(
    examples: Sequence[Any], tokenizer: Any, label2id: dict[str, int] | None, config: FinetuneConfig
) -> list[Feature]:
    from .preprocess import encode_tagged

    assert label2id is not None and config.max_seq_length is not None
    return encode_tagged(
        examples,
        tokenizer,
        label2id,
        config.max_seq_length,
        config.window_stride,
        config.label_all_subwords,
        config.train,
    )


def word_spans(example: Any) -> tuple[str, list[tuple[int, int]]]:
    """A tagged example's text and each word's character span (words joined by spaces when no text)."""
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


def _predict_tags(
    model: Any, tokenizer: Any, examples: Sequence[Any], settings: InferenceSettings
) -> list[dict[str, Any]]:
    from ..pipelines.tagging import entities_from_tags, word_tags

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


def _ner_labels(train: Sequence[Any]) -> list[str]:
    from .preprocess import tag_list

    return tag_list(train)


NER = TaskDefinition(
    name="ner",
    head="token-classification",
    main_metric=MAIN_METRIC["ner"],
    description="tag every word (CoNLL columns, CLUENER span-JSON); entity F1",
    read=_read_tagged,
    encode=_encode_tagged,
    predict=_predict_tags,
    metrics=lambda examples, predictions: _main_first(
        MAIN_METRIC["ner"], task_metrics("ner", [p["tags"] for p in predictions], [e.tags for e in examples])
    ),
    is_labelled=lambda e: e.tags is not None,
    gold_labels=lambda e: list(e.tags or ()),
    label_set=_ner_labels,
    config_overrides=_label_maps,
    # one sentence a line, its words split at whitespace (CoNLL's words are whitespace-free tokens)
    from_line=lambda text, line: TaggedExample(text.split(), None, line),
)


# ----------------------------------------------------------------------------------------------- QA
def _read_qa(path: Path, options: dict[str, Any]) -> ReadResult[Any]:
    from .readers import read_qa_examples

    return read_qa_examples(path, on_error=_on_error(options))


def _encode_qa(
    examples: Sequence[Any], tokenizer: Any, label2id: dict[str, int] | None, config: FinetuneConfig
) -> list[Feature]:
    from .preprocess_qa import answer_char_spans, encode_qa

    assert config.max_seq_length is not None
    return encode_qa(
        [e.question for e in examples],
        [e.context for e in examples],
        tokenizer,
        config.max_seq_length,
        config.doc_stride,
        config.max_query_length,
        answers=answer_char_spans(examples),
    )


def _predict_answers(
    model: Any, tokenizer: Any, examples: Sequence[Any], settings: InferenceSettings
) -> list[dict[str, Any]]:
    from ..pipelines.qa import answer_questions

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


def _qa_metrics(examples: Sequence[Any], predictions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    answers = {e.id: p["answer"] for e, p in zip(examples, predictions, strict=True)}
    # An empty answer is the model's "no answer": probability 1, so SQuAD also reports best_* scores.
    no_answer = {e.id: 1.0 if p["answer"] == "" else 0.0 for e, p in zip(examples, predictions, strict=True)}
    return _main_first(
        MAIN_METRIC["qa"], task_metrics("qa", answers, list(examples), no_answer_probs=no_answer)
    )


def _qa_extra(train: Sequence[Any], config: FinetuneConfig) -> dict[str, Any]:
    version_2 = config.version_2 if config.version_2 is not None else any(e.is_impossible for e in train)
    return {"version_2_with_negative": bool(version_2)}


QA = TaskDefinition(
    name="qa",
    head="question-answering",
    main_metric=MAIN_METRIC["qa"],
    description="extractive question answering (SQuAD v1.1/v2.0, CMRC2018 JSON)",
    read=_read_qa,
    encode=_encode_qa,
    predict=_predict_answers,
    metrics=_qa_metrics,
    is_labelled=lambda e: bool(e.answers) or e.is_impossible,
    config_overrides=lambda labels: {
        "id2label": {0: "LABEL_0", 1: "LABEL_1"},
        "label2id": {"LABEL_0": 0, "LABEL_1": 1},
    },
    config_extra=_qa_extra,
    max_length=384,
    stride=128,
    stride_setting="doc_stride",
)


# ---------------------------------------------------------------------------------- multiple choice
def _read_choices(path: Path, options: dict[str, Any]) -> ReadResult[Any]:
    from .readers import read_choice_examples

    return read_choice_examples(path, on_error=_on_error(options))


def _encode_choices(
    examples: Sequence[Any], tokenizer: Any, label2id: dict[str, int] | None, config: FinetuneConfig
) -> list[Feature]:
    from .preprocess import encode_choices

    assert config.max_seq_length is not None
    return encode_choices(examples, tokenizer, config.max_seq_length)


def _predict_choices(
    model: Any, tokenizer: Any, examples: Sequence[Any], settings: InferenceSettings
) -> list[dict[str, Any]]:
    from ..pipelines.classification import choice_scores

    scores = choice_scores(model, tokenizer, examples, settings)
    return [
        {"line": e.line, "label": int(row.argmax()), "scores": [float(p) for p in row]}
        for e, row in zip(examples, scores, strict=True)
    ]


MULTIPLE_CHOICE = TaskDefinition(
    name="multiple-choice",
    head="multiple-choice",
    main_metric=MAIN_METRIC["multiple-choice"],
    description="pick the right ending (SWAG-style CSV/JSONL)",
    read=_read_choices,
    encode=_encode_choices,
    predict=_predict_choices,
    metrics=lambda examples, predictions: task_metrics(
        "multiple-choice", [p["label"] for p in predictions], [e.label for e in examples]
    ),
    is_labelled=lambda e: e.label is not None,
)

for _definition in (CLASSIFICATION, REGRESSION, NER, QA, MULTIPLE_CHOICE):
    register_task(_definition)
