"""Transfer data for task distillation (``bertforge distill --transfer FILE``): more in-domain text,
without labels, that the teacher labels with its soft targets.

Distilling on the labelled set alone tells the student little it could not learn from the labels
themselves; what makes task distillation pay in practice (DistilBERT's and TinyBERT's task stages,
which TinyBERT feeds augmented text) is the teacher's outputs on more text of the task's kind.

A transfer file is read in one of two forms (``transfer_format``):

* ``"task"`` (default): the task's own format, read by its reader (a CoNLL file for NER, a table
  for classification, SQuAD JSON for QA ...). Labels, where the file has them, are dropped unread,
  so a labelled file can serve (the rest of a training set), and so can a file without labels;
* ``"lines"``: plain text, one example a line (blank lines skipped), for the tasks that have a
  one-line form (:attr:`~bertforge.tasks.registry.TaskDefinition.from_line`): a text for
  classification and regression, a sentence split at whitespace into words for NER.

The examples are encoded as the training file is (same windows and truncation), and their features
are appended after the labelled ones (:func:`with_transfer`): the teacher's outputs for them are
computed and cached with the rest, and their batches learn the soft targets alone
(:class:`~.distill_stages.PredictionLoss`). Everything is read and checked before the run writes
anything; a missing or empty file is an error naming ``transfer``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from ..errors import BertForgeError
from ..fileio import read_text_file
from ..pipelines.evaluation import read_examples
from ..tasks.arguments import argument
from ..tasks.examples import ChoiceExample, QAExample, TaggedExample, TextExample
from ..tasks.preprocess import Feature, label_maps
from ..tasks.registry import TaskDefinition
from .finetune import TaskData
from .finetune_config import FinetuneConfig

logger = logging.getLogger(__name__)

_LABEL_KEYS = ("labels", "start_positions", "end_positions")


def _unlabelled(example: Any) -> Any:
    """The example without its gold label (the teacher's outputs replace it)."""
    if isinstance(example, TextExample | ChoiceExample):
        return dataclasses.replace(example, label=None)
    if isinstance(example, TaggedExample):
        return dataclasses.replace(example, tags=None)
    if isinstance(example, QAExample):
        return dataclasses.replace(example, answers=[], is_impossible=False)
    return example  # a registered task's own kind: its labels are dropped from the features


def _read_lines(task: TaskDefinition, text: str) -> list[Any]:
    assert task.from_line is not None
    return [
        task.from_line(line.strip(), number)
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]


def read_transfer(
    task: TaskDefinition, paths: Sequence[str], transfer_format: str, reader_options: dict[str, Any]
) -> list[Any]:
    """The unlabelled examples of every transfer file, in order; a file that is missing, empty or
    unreadable is an error naming ``transfer``."""
    if transfer_format == "lines" and task.from_line is None:
        raise BertForgeError(
            f"{argument('transfer_format', 'lines')}: {task.name} has no one-example-a-line form; pass "
            f"the transfer data in the task's own format ({argument('transfer_format', 'task')})"
        )
    examples: list[Any] = []
    for path in paths:
        what = f"transfer file {argument('transfer', path)}"
        # read_text_file names the path itself: "transfer file X not found; <hint>"
        text = read_text_file(
            path,
            "transfer file",
            f"fix {argument('transfer', path)}: pass an existing file of unlabelled in-domain examples",
        )
        if not text.strip():
            raise BertForgeError(f"{what} is empty; pass a file of unlabelled in-domain examples")
        if transfer_format == "lines":
            found = _read_lines(task, text)
        else:
            try:
                found, skipped = read_examples(task.name, path, **reader_options)
            except BertForgeError as err:
                raise BertForgeError(f"cannot read the {what}: {err}") from None
            for message in skipped:
                logger.warning("skipped %s", message)
        examples += [_unlabelled(example) for example in found]
        logger.info("transfer data: %d examples from %s", len(found), path)
    return examples


def with_transfer(data: TaskData, config: FinetuneConfig, examples: Sequence[Any]) -> TaskData:
    """``data`` with the features of the transfer ``examples`` after the labelled ones (encoded as
    the training file was, labels stripped); ``unlabelled`` counts them."""
    label2id = label_maps(data.labels)[1] if data.labels is not None else None
    encoding = dataclasses.replace(config, max_seq_length=data.max_seq_length)
    features: list[Feature] = []
    offset = len(data.train)
    for feature in data.task.encode(examples, data.tokenizer, label2id, encoding):
        # example_index continues after the labelled examples' (it keys nothing in training)
        kept = {k: v for k, v in feature.items() if k not in _LABEL_KEYS}
        kept["example_index"] = offset + feature["example_index"]
        features.append(kept)
    if not features:
        raise BertForgeError(f"the transfer data ({argument('transfer')}) gave no features; check the files")
    return dataclasses.replace(data, features=[*data.features, *features], unlabelled=len(features))
