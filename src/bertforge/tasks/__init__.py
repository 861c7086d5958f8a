"""Fine-tuning tasks: readers for the usual file formats (:mod:`.readers`), tag schemes
(:mod:`.tags`), preprocessing into model features (:mod:`.preprocess`) and metrics (:mod:`.metrics`).

Only the light parts are imported here; :mod:`.preprocess_batches` (torch) loads on first use.
"""

from .examples import ChoiceExample, QAExample, ReadResult, TaggedExample, TextExample
from .metrics import MAIN_METRIC, task_metrics
from .readers import (
    label_list,
    read_choice_examples,
    read_qa_examples,
    read_tagged_examples,
    read_text_examples,
)
from .tags import convert_tags

__all__ = [
    "MAIN_METRIC",
    "ChoiceExample",
    "QAExample",
    "ReadResult",
    "TaggedExample",
    "TextExample",
    "convert_tags",
    "label_list",
    "read_choice_examples",
    "read_qa_examples",
    "read_tagged_examples",
    "read_text_examples",
    "task_metrics",
]
