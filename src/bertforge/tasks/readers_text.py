"""Readers for classification / pair classification / regression, and SWAG-style multiple choice.

Files are read as they come (GLUE TSVs, ChnSentiCorp, CSVs, JSON lines). When the columns are not
given they are guessed from the names such files use, pairs first (``sentence1``/``sentence2``,
``question``/``sentence`` for QNLI, ``#1 String``/``#2 String`` for MRPC ...), and the guess is
logged; a headerless file is guessed only in the unambiguous layouts (CoLA's four columns, a
label and a text). Anything else raises with the list of columns that exist.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

from ..errors import BertForgeError
from .arguments import argument
from .examples import ChoiceExample, ReadResult, TextExample
from .readers_common import RowErrors, read_text
from .readers_table import (
    Table,
    cell,
    column_name,
    extra_fields,
    find_column,
    guess_column,
    read_table,
    row_problem,
)

logger = logging.getLogger(__name__)

# (text, pair) names, tried in order; a pair counts only when both are present.
PAIR_COLUMNS = [
    ("sentence1", "sentence2"),
    ("question1", "question2"),
    ("#1 string", "#2 string"),
    ("text_a", "text_b"),
    ("question", "sentence"),
    ("premise", "hypothesis"),
    ("sentence_a", "sentence_b"),
    ("text", "text_pair"),
    ("text1", "text2"),
]
TEXT_COLUMNS = [
    "sentence",
    "text",
    "text_a",
    "sentence1",
    "question",
    "review",
    "content",
    "comment",
    "document",
]
LABEL_COLUMNS = [
    "label",
    "gold_label",
    "score",
    "quality",
    "is_duplicate",
    "labels",
    "class",
    "target",
    "sentiment",
]
KNOWN_COLUMNS = (
    {name for pair in PAIR_COLUMNS for name in pair}
    | set(TEXT_COLUMNS)
    | set(LABEL_COLUMNS)
    | {"index", "id", "idx", "sent1", "sent2", "startphrase", "ending0"}
)


def _headerless_layout(table: Table) -> tuple[int, int | None]:
    """(text, label) columns of a headerless file, for the layouts that leave no doubt."""
    rows = [fields for _, fields in table.rows[:50]]
    width = len(rows[0])

    def labels_at(index: int) -> bool:
        return all(len(r) > index and re.fullmatch(r"-?\d+(\.\d+)?", r[index].strip()) for r in rows)

    if width == 1:
        return 0, None
    if width == 4 and labels_at(1):  # GLUE CoLA: source, label, original mark, sentence
        return 3, 1
    if width == 2 and labels_at(0) != labels_at(1):
        return (1, 0) if labels_at(0) else (0, 1)
    raise BertForgeError(
        f"{table.path} has no header row, so its columns cannot be guessed; pass {argument('text_column')} "
        f"(and {argument('pair_column')}, {argument('label_column')}) as 0-based indices; its first row "
        f"has {width} fields: " + " | ".join(field[:30] for field in rows[0])
    )


def _choose_columns(
    table: Table, text: str | int | None, pair: str | int | None, label: str | int | None
) -> tuple[str | int, str | int | None, str | int | None]:
    text_key: str | int
    pair_key: str | int | None
    label_key: str | int | None
    if text is not None:
        text_key = find_column(table, text, "text_column")
        pair_key = find_column(table, pair, "pair_column") if pair is not None else None
    elif table.header is None:
        text_key, label_key = _headerless_layout(table)
        pair_key = find_column(table, pair, "pair_column") if pair is not None else None
        if label is None:
            logger.info(
                "%s: no header; reading text from column %s, label from %s", table.path, text_key, label_key
            )
            return text_key, pair_key, label_key
    else:
        found: tuple[str | int, str | int | None] | None = None
        for first, second in PAIR_COLUMNS:
            a, b = guess_column(table, [first]), guess_column(table, [second])
            if a is not None and b is not None:
                found = (a, b)
                break
        if found is None:
            single = guess_column(table, TEXT_COLUMNS)
            if single is None:
                raise BertForgeError(
                    f"cannot tell which column of {table.path} holds the text; pass "
                    f"{argument('text_column')} (and {argument('pair_column')} for pairs); its "
                    f"{table.describe_columns()}"
                )
            found = (single, None)
        text_key = found[0]
        pair_key = find_column(table, pair, "pair_column") if pair is not None else found[1]
    if label is not None:
        label_key = find_column(table, label, "label_column")
    else:
        label_key = guess_column(table, LABEL_COLUMNS)
    logger.info(
        "%s: text from %s, pair from %s, label from %s",
        table.path,
        column_name(table, text_key),
        "-" if pair_key is None else column_name(table, pair_key),
        "- (unlabelled)" if label_key is None else column_name(table, label_key),
    )
    return text_key, pair_key, label_key


def read_text_examples(
    path: str | Path,
    *,
    text_column: str | int | None = None,
    pair_column: str | int | None = None,
    label_column: str | int | None = None,
    format: str | None = None,
    has_header: bool | None = None,
    on_error: str = "raise",
    regression: bool = False,
) -> ReadResult[TextExample]:
    """Read a CSV, TSV or JSON-lines file of texts (or text pairs) and labels.

    Columns are names or 0-based indices; when not given they are guessed (see the module
    docstring). A file without a label column gives ``label=None`` (a test split). Labels are
    strings, or floats with ``regression=True``. ``format`` ("csv", "tsv", "jsonl") overrides the
    extension; ``has_header`` overrides the header guess.
    """
    errors = RowErrors(path, on_error)
    named = any(isinstance(c, str) for c in (text_column, pair_column, label_column))
    table = read_table(path, read_text(path), format, has_header, named, KNOWN_COLUMNS)
    if not table.rows:
        raise BertForgeError(f"{path} has no rows")
    text_key, pair_key, label_key = _choose_columns(table, text_column, pair_column, label_column)

    # Named columns (a header, or indices the caller gave): extra trailing fields are read past.
    extra_ok = table.header is not None or any(
        c is not None for c in (text_column, pair_column, label_column)
    )
    examples = []
    for line, row in table.rows:
        problem = row_problem(table, row, extra_ok)
        if problem is not None:
            errors.bad(line, problem)
            continue
        values: dict[str, Any] = {}
        for role, key in (("text", text_key), ("pair", pair_key), ("label", label_key)):
            if key is None:
                values[role] = None
                continue
            value, problem = cell(table, row, key)
            if problem is None and (value is None or (isinstance(value, str) and not value.strip())):
                problem = f"empty {role} in {column_name(table, key)}"
            if problem is not None:
                break
            values[role] = value if role == "label" else str(value)
        if problem is not None:
            errors.bad(line, problem)
            continue
        label = values["label"]
        if label is not None:
            if regression:
                try:
                    label = float(label)
                except (TypeError, ValueError):
                    errors.bad(line, f"regression label {label!r} is not a number")
                    continue
                if not math.isfinite(label):  # one nan or inf makes every loss after it nan
                    errors.bad(line, f"regression label {values['label']!r} is not a finite number")
                    continue
            else:
                label = str(label).strip()
        if extra_fields(table, row):
            errors.extra_fields(line)
        examples.append(TextExample(values["text"], values["pair"], label, line))
    errors.finish(len(examples))
    return ReadResult(examples, errors.skipped, len(errors.extra))


# ------------------------------------------------------------------------------ multiple choice
CONTEXT_KEYS = ["sent1", "context", "startphrase", "ctx", "article"]
QUESTION_KEYS = ["sent2", "question"]
ENDINGS_KEYS = ["endings", "options", "choices"]


def _ending_keys(names: list[str]) -> list[str]:
    numbered = [
        (int(m.group(1)), name) for name in names if (m := re.fullmatch(r"ending[_ ]?(\d+)", name.lower()))
    ]
    return [name for _, name in sorted(numbered)]


def _choice_label(value: Any, count: int) -> int:
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z]", value.strip()):  # RACE-style "A".."D"
        index = ord(value.strip().upper()) - ord("A")
    else:
        index = int(float(value))
        if index != float(value):
            raise ValueError
    if not 0 <= index < count:
        raise ValueError
    return index


def read_choice_examples(path: str | Path, *, on_error: str = "raise") -> ReadResult[ChoiceExample]:
    """Read SWAG-style multiple choice: CSV (``sent1, sent2, ending0..N, label``) or JSON lines
    (``{"context" | "startphrase" | "sent1" | "ctx", "question"?, "endings": [...], "label"}``).

    The context is segment A; ``question`` (SWAG's ``sent2``) starts every ending. Every row must
    have as many endings as the first; ``label`` (an index, or a letter A..) is None when absent.
    """
    errors = RowErrors(path, on_error)
    table = read_table(path, read_text(path), None, None, True, KNOWN_COLUMNS)
    header = table.header or []
    lowered = [name.lower() for name in header]

    def key(candidates: list[str]) -> str | None:
        for name in candidates:
            if name in lowered:
                return header[lowered.index(name)]
        return None

    context_key, question_key, label_key = key(CONTEXT_KEYS), key(QUESTION_KEYS), key(["label", "answer"])
    if context_key is not None and context_key.lower() == "startphrase":
        question_key = None  # SWAG's startphrase already ends with sent2
    endings_key, ending_keys = key(ENDINGS_KEYS), _ending_keys(header)
    if context_key is None or (endings_key is None and not ending_keys):
        raise BertForgeError(
            f"{path} is not SWAG-style multiple choice: it needs a context ({', '.join(CONTEXT_KEYS)}) and "
            f"endings (ending0, ending1, ... or an 'endings' list); its {table.describe_columns()}"
        )
    columns = (
        {name: i for i, name in enumerate(header)} if table.format != "jsonl" else {n: n for n in header}
    )

    examples: list[ChoiceExample] = []
    count = None
    for line, row in table.rows:
        problem = row_problem(table, row, extra_ok=True)  # the header names the columns
        if problem is None:
            context, problem = cell(table, row, columns[context_key])
        if problem is None and question_key is not None:
            question, problem = cell(table, row, columns[question_key])
        else:
            question = ""
        if problem is None:
            if endings_key is not None:
                endings, problem = cell(table, row, columns[endings_key])
                if problem is None and not isinstance(endings, list):
                    problem = f"{endings_key!r} is not a list"
            else:
                endings = [row[columns[name]] for name in ending_keys]
        if problem is None:
            count = count or len(endings)
            if len(endings) != count:
                problem = f"{len(endings)} endings, the first row has {count}"
        label = None
        if problem is None and label_key is not None:
            raw, problem = cell(table, row, columns[label_key])
            if problem is None and raw not in (None, ""):
                try:
                    label = _choice_label(raw, len(endings))
                except (TypeError, ValueError):
                    problem = f"label {raw!r} is not an ending index 0..{len(endings) - 1}"
        if problem is not None:
            errors.bad(line, problem)
            continue
        if extra_fields(table, row):
            errors.extra_fields(line)
        examples.append(
            ChoiceExample(str(context), [str(e) for e in endings], label, line, str(question or ""))
        )
    errors.finish(len(examples))
    return ReadResult(examples, errors.skipped, len(errors.extra))
