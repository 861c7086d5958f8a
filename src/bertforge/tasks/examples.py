"""The example records that task readers produce and fine-tuning consumes.

They are plain dataclasses of Python values (no tensors, no tokenizer state) so readers, the
preprocessing in :mod:`.preprocess` and the metrics in :mod:`.metrics` stay independent: a reader
can be tested without a model and a metric without a reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar


@dataclass
class TextExample:
    """One row for classification, pair classification or regression."""

    text: str
    text_pair: str | None
    label: str | float | None  # str for classes, float for regression, None for unlabelled test rows
    line: int  # 1-based source line, for error messages


@dataclass
class TaggedExample:
    """One sentence for token tagging (NER)."""

    words: list[str]
    tags: list[str] | None  # one tag per word, in the reader's target scheme; None when unlabelled
    line: int  # 1-based line of the sentence's first token (CoNLL) or of the JSON record
    text: str | None = None  # the original text when read from span-JSON (there chars == words)


@dataclass
class QAExample:
    """One question for extractive QA (SQuAD v1.1 / v2.0, CMRC2018)."""

    id: str
    question: str
    context: str
    answers: list[dict]  # [{"text": str, "answer_start": int}]; empty when impossible (v2.0)
    is_impossible: bool


@dataclass
class ChoiceExample:
    """One SWAG-style multiple-choice question: a context and N candidate endings."""

    context: str
    endings: list[str]
    label: int | None  # index of the right ending; None when unlabelled
    line: int
    question: str = ""  # SWAG's sent2: the start of the ending, shared by all candidates


T = TypeVar("T")


@dataclass
class ReadResult(Generic[T]):
    """What every reader returns: the examples and one "FILE:LINE: reason" per skipped row."""

    examples: list[T]
    skipped: list[str] = field(default_factory=list)
    # rows read by their named columns despite extra trailing fields (STS-benchmark has some)
    extra_fields: int = 0

    def __len__(self) -> int:
        return len(self.examples)
