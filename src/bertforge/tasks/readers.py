"""Task readers: the files people already have -> lists of example dataclasses.

One entry point per task family; the formats live in their own modules:

* :func:`read_text_examples` (classification, pairs, regression: CSV / TSV / JSON lines) and
  :func:`read_choice_examples` (SWAG-style multiple choice) in :mod:`.readers_text`;
* :func:`read_tagged_examples` (CoNLL columns, CLUENER span-JSON) in :mod:`.readers_tagging`, with
  tag schemes in :mod:`.tags`;
* :func:`read_qa_examples` (SQuAD v1.1 / v2.0, CMRC2018) in :mod:`.readers_qa`.

Every reader returns a :class:`ReadResult`: the examples, and one ``FILE:LINE: reason`` per
malformed row skipped with ``on_error="skip"`` (the default, ``"raise"``, stops at the first).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import BertForgeError
from .examples import ChoiceExample, QAExample, ReadResult, TaggedExample, TextExample
from .readers_qa import read_qa_examples
from .readers_tagging import read_tagged_examples
from .readers_text import read_choice_examples, read_text_examples
from .tags import convert_tags, detect_scheme, get_entities, tag_sort_key

__all__ = [
    "ChoiceExample",
    "QAExample",
    "ReadResult",
    "TaggedExample",
    "TextExample",
    "convert_tags",
    "detect_scheme",
    "get_entities",
    "label_list",
    "read_choice_examples",
    "read_qa_examples",
    "read_tagged_examples",
    "read_text_examples",
]


def _label_key(label: str) -> tuple[int, float, str]:
    # Numbers in numeric order ("2" before "10"), then the other labels alphabetically.
    if re.fullmatch(r"-?\d+(\.\d+)?", label):
        return (0, float(label), label)
    return (1, 0.0, label)


def label_list(examples: Iterable[TextExample | TaggedExample | ChoiceExample] | ReadResult) -> list[str]:
    """The sorted label set of training examples: the class names of text examples (numbers in
    numeric order), or the tags of tagged examples (``O`` first, then by type, B- before I-).

    The fine-tuner stores it as ``id2label``, so the same training file always gives the same ids.
    """
    if isinstance(examples, ReadResult):
        examples = examples.examples
    labels: set[str] = set()
    tagged = False
    for example in examples:
        if isinstance(example, TaggedExample):
            tagged = True
            labels.update(example.tags or ())
        elif isinstance(example, TextExample | ChoiceExample):
            if isinstance(example.label, float):
                raise BertForgeError("regression examples have no label set; use num_labels=1")
            if example.label is not None:
                labels.add(str(example.label))
        else:
            raise BertForgeError(f"{type(example).__name__} has no labels to list")
    if not labels:
        raise BertForgeError("the examples carry no labels; a training file needs a label column or tags")
    return sorted(labels, key=tag_sort_key if tagged else _label_key)
