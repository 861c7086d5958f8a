"""Readers for token tagging (NER): CoNLL-style column files and span-JSON (CLUENER).

CoNLL files: one token per line, columns separated by spaces or tabs, the word first and the tag in
``column`` (the last by default, so ``word POS chunk tag`` and ``char tag`` both work); a blank line
ends a sentence and a ``-DOCSTART-`` line ends a document. Every token line must have as many
columns as the first, which catches a tag missing from one line. A file whose lines all have one
column is read as unlabelled words (``tags=None``).

Span-JSON, one object per line: ``{"text": ..., "label": {TYPE: {ENTITY: [[start, end_inclusive],
...]}}}`` as CLUENER ships it. Each character becomes a word (Chinese NER tags characters), spans
become tags; a span whose characters differ from its entity string is a malformed row. Nested
entities (one in CLUENER's train set) cannot be flat tags: the outer one is kept and the inner one
dropped with a warning. Without ``"label"`` the example is unlabelled.

Tags are converted to ``target_scheme`` (BIO by default) from ``scheme``, detected over the whole
file when not given (:func:`~.tags.detect_scheme`).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from ..errors import BertForgeError
from .examples import ReadResult, TaggedExample
from .readers_common import RowErrors, file_format, read_text
from .tags import check_tags, convert_tags, detect_scheme, entities_to_tags, normalize_scheme

logger = logging.getLogger(__name__)

FORMATS = {
    "conll": "conll",
    "txt": "conll",
    "bio": "conll",
    "json": "json",
    "jsonl": "json",
    "cluener": "json",
}
_COLUMNS = re.compile(r"[ \t]+")  # not str.split(): a full-width space U+3000 can be a token


def _conll_sentences(
    text: str, column: int, errors: RowErrors
) -> tuple[list[tuple[int, list[str], list[str] | None]], bool]:
    """(first line, words, tags) per sentence, and whether the file has a tag column."""
    sentences: list[tuple[int, list[str], list[str] | None]] = []
    width = None
    words: list[str] = []
    tags: list[str] = []
    start, broken = 0, False

    def flush() -> None:
        nonlocal words, tags, broken
        if words and not broken:
            sentences.append((start, words, tags if width and width > 1 else None))
        words, tags, broken = [], [], False

    for number, line in enumerate(text.splitlines(), start=1):
        fields = _COLUMNS.split(line.strip(" \t\r\n"))
        if not line.strip(" \t\r\n") or fields[0] == "-DOCSTART-":
            flush()
            continue
        if not words and not broken:
            start = number
        if width is None:
            width = len(fields)
            if width > 1 and not -width <= column < width:
                raise BertForgeError(
                    f"tag column {column} is out of range: line {number} has {width} columns"
                )
        if broken:
            continue  # the rest of a sentence already reported as malformed
        if len(fields) != width:
            errors.bad(number, f"{len(fields)} columns, the file's first token line has {width}")
            broken = True
            continue
        words.append(fields[0])
        if width > 1:
            tags.append(fields[column])
    flush()
    return sentences, bool(width and width > 1)


def _span_example(record: Any, line: int) -> tuple[TaggedExample | None, str | None]:
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return None, 'expected an object with a "text" string'
    text = record["text"]
    if "label" not in record or record["label"] is None:
        return TaggedExample(list(text), None, line, text), None
    labels = record["label"]
    if not isinstance(labels, dict):
        return None, '"label" must map entity types to {entity: [[start, end], ...]}'
    entities = []
    for type_, mentions in labels.items():
        if not isinstance(mentions, dict):
            return None, f"label {type_!r} must map entity strings to [[start, end], ...]"
        for entity, spans in mentions.items():
            for span in spans:
                if not (isinstance(span, list) and len(span) == 2 and all(isinstance(i, int) for i in span)):
                    return None, f"span {span!r} of {entity!r} is not [start, end_inclusive]"
                start, end = span
                if not 0 <= start <= end < len(text):
                    return None, (
                        f"{type_} span [{start}, {end}] of {entity!r} is outside the text's {len(text)} "
                        "characters (spans are [start, end_inclusive] character offsets)"
                    )
                if text[start : end + 1] != entity:
                    found = text[start : end + 1]
                    return None, f"{type_} span [{start}, {end}] is {found!r} in the text, not {entity!r}"
                entities.append((type_, start, end))
    # Flat tags cannot hold nested entities: keep the outermost (earliest, then longest) of each
    # overlapping group, as a flat NER model would be expected to find it, and log the rest.
    entities.sort(key=lambda e: (e[1], -e[2]))
    kept: list[tuple[str, int, int]] = []
    for entity in entities:
        if kept and entity[1] <= kept[-1][2]:
            logger.warning("line %d: dropped %s %d-%d, nested in %s %d-%d", line, *entity, *kept[-1])
            continue
        kept.append(entity)
    return TaggedExample(list(text), entities_to_tags(kept, len(text), "BIO"), line, text), None


def read_tagged_examples(
    path: str | Path,
    *,
    format: str | None = None,
    scheme: str | None = None,
    target_scheme: str = "BIO",
    column: int = -1,
    on_error: str = "raise",
) -> ReadResult[TaggedExample]:
    """Read a CoNLL column file or span-JSON (CLUENER) into words and tags in ``target_scheme``.

    ``format`` is "conll" or "json" (default: by extension, else by content); ``scheme`` is the
    file's tag scheme (IOB1, BIO, BIOES; detected when None); ``column`` the tag column of a CoNLL
    file. Span-JSON is written as BIO before conversion, so ``scheme`` does not apply to it.
    """
    target = normalize_scheme(target_scheme)
    source = normalize_scheme(scheme) if scheme is not None else None
    errors = RowErrors(path, on_error)
    text = read_text(path)
    fmt = file_format(path, format, FORMATS, "json" if text.lstrip().startswith("{") else "conll")

    examples: list[TaggedExample] = []
    if fmt == "json":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.bad(number, f"invalid JSON ({exc.msg} at column {exc.colno})")
                continue
            example, problem = _span_example(record, number)
            if problem is not None or example is None:
                errors.bad(number, problem or "unreadable")
                continue
            examples.append(example)
        source = "BIO"
    else:
        sentences, tagged = _conll_sentences(text, column, errors)
        if source is None and tagged:
            source = detect_scheme(tags for _, _, tags in sentences if tags)
        for start, words, tags in sentences:
            if tags is not None and source is not None and (bad := check_tags(tags, source)) is not None:
                errors.bad(start, f"tag {bad!r} is not a {source} tag (tags are O or PREFIX-TYPE)")
                continue
            examples.append(TaggedExample(words, tags, start))
    if not examples and not errors.skipped:
        raise BertForgeError(f"{path} holds no sentences")
    if source is not None and source != target:
        for example in examples:
            if example.tags is not None:
                example.tags = convert_tags(example.tags, source, target)
    errors.finish(len(examples))
    return ReadResult(examples, errors.skipped)
