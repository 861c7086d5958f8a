"""Rows of CSV, TSV and JSON-lines files, with their line numbers and column names.

Shared by the text-classification and multiple-choice readers. Two choices matter:

* TSV is read with ``quoting=csv.QUOTE_NONE``, as the GLUE processors do: GLUE sentences contain
  unbalanced ``"`` that are text, not CSV quoting, and would otherwise swallow the following rows.
  CSV keeps standard quoting (a quoted field may span lines; its row is numbered by its first line).
* Whether the first row is a header is guessed when not given: it is one if it holds a name we know
  (``sentence``, ``label``, ``#1 String`` ...), or if some column is a number in the second row but
  not in the first. GLUE's CoLA (no header, a numeric label column) thus reads as data.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BertForgeError
from .readers_common import file_format

FORMATS = {"csv": "csv", "tsv": "tsv", "tab": "tsv", "jsonl": "jsonl", "json": "jsonl", "ndjson": "jsonl"}

csv.field_size_limit(1 << 28)  # long documents; the default 128 KiB limit is for spreadsheets


@dataclass
class Table:
    """A file's rows: lists of fields (CSV/TSV) or dicts (JSONL), each with its 1-based line."""

    path: str
    format: str  # "csv", "tsv" or "jsonl"
    header: list[str] | None  # column names; None for a headerless CSV/TSV; keys of the first JSON record
    rows: list[tuple[int, Any]]

    def describe_columns(self) -> str:
        if self.header is None:
            width = len(self.rows[0][1]) if self.rows else 0
            return f"no header; columns are indices 0..{width - 1}"
        return "columns: " + ", ".join(repr(name) for name in self.header)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _guess_header(first: list[str], second: list[str] | None, known: set[str]) -> bool:
    if any(cell.strip().lower() in known for cell in first):
        return True
    if second is None:
        return False
    return any(not _is_number(a) and _is_number(b) for a, b in zip(first, second, strict=False))


def _delimited_rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    source = io.StringIO(text, newline="")
    if delimiter == "\t":
        reader = csv.reader(source, delimiter=delimiter, quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(source, delimiter=delimiter)
    rows = []
    previous_end = 0
    for fields in reader:
        start, previous_end = previous_end + 1, reader.line_num
        if fields and any(field.strip() for field in fields):  # blank lines are not rows
            rows.append((start, fields))
    return rows


def _json_rows(path: str, text: str) -> list[tuple[int, Any]]:
    stripped = text.lstrip()
    if stripped.startswith("["):  # a JSON array of records: number them by position
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BertForgeError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        return list(enumerate(records, start=1))
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                rows.append((number, exc))  # the reader reports it as a malformed row
    return rows


def read_table(
    path: str | Path, text: str, format: str | None, has_header: bool | None, named: bool, known: set[str]
) -> Table:
    """Split ``text`` (the contents of ``path``) into rows. ``named`` says the caller addresses
    columns by name, which requires a header; ``known`` are the names that mark a header row."""
    first_line = text.lstrip().split("\n", 1)[0]
    sniff = "jsonl" if first_line.startswith(("{", "[")) else "tsv" if "\t" in first_line else ""
    fmt = file_format(path, format, FORMATS, sniff)
    if fmt == "jsonl":
        rows = _json_rows(str(path), text)
        first = next((r for _, r in rows if isinstance(r, dict)), None)
        return Table(str(path), fmt, list(first) if first else None, rows)

    rows = _delimited_rows(text, "\t" if fmt == "tsv" else ",")
    if not rows:
        raise BertForgeError(f"{path} has no rows")
    if has_header is None:
        second = rows[1][1] if len(rows) > 1 else None
        has_header = named or _guess_header(rows[0][1], second, known)
    if named and not has_header:
        raise BertForgeError(
            f"{path}: columns are given by name but the file has no header (has_header=False); "
            "pass them as 0-based indices"
        )
    if not has_header:
        return Table(str(path), fmt, None, rows)
    header = [name.strip() for name in rows[0][1]]
    if len(rows) == 1:
        raise BertForgeError(f"{path} has a header ({', '.join(header)}) but no rows")
    return Table(str(path), fmt, header, rows[1:])


def find_column(table: Table, column: str | int, role: str) -> str | int:
    """Resolve a user-given column (name or 0-based index) to a key of the rows, or raise."""
    if table.format == "jsonl":
        if isinstance(column, int):
            raise BertForgeError(
                f"{table.path}: JSON records have keys, not column numbers; pass {role}= a key"
            )
        return column
    if isinstance(column, int):
        width = len(table.header) if table.header is not None else len(table.rows[0][1])
        if not -width <= column < width:
            raise BertForgeError(
                f"{role} {column} is out of range for {table.path} ({width} columns; {table.describe_columns()})"
            )
        return column % width
    assert table.header is not None  # read_table requires a header for named columns
    lowered = [name.lower() for name in table.header]
    for wanted in (column, column.lower()):
        for names in (table.header, lowered):
            if wanted in names:
                return names.index(wanted)
    raise BertForgeError(f"{role} {column!r} is not in {table.path}; its {table.describe_columns()}")


def guess_column(table: Table, candidates: list[str]) -> str | int | None:
    """The first of ``candidates`` present in the table's header (case-insensitive), or None."""
    if table.header is None:
        return None
    lowered = [name.lower() for name in table.header]
    for name in candidates:
        if name in lowered:
            index = lowered.index(name)
            return table.header[index] if table.format == "jsonl" else index
    return None


def column_name(table: Table, key: str | int) -> str:
    if isinstance(key, int) and table.header is not None:
        return repr(table.header[key])
    return repr(key) if isinstance(key, str) else f"column {key}"


def cell(table: Table, row: Any, key: str | int) -> tuple[Any, str | None]:
    """(value, None), or (None, reason) when the row lacks the column."""
    if table.format == "jsonl":
        if not isinstance(row, dict):
            return None, "not a JSON object"
        if key not in row:
            return None, f"no key {key!r} (its keys: {', '.join(map(repr, row))})"
        return row[key], None
    assert isinstance(key, int)
    if key >= len(row):
        return None, f"{len(row)} fields, no {column_name(table, key)}"
    return row[key], None


def row_problem(table: Table, row: Any) -> str | None:
    """Why a row cannot be read at all (bad JSON, wrong number of fields), or None."""
    if isinstance(row, json.JSONDecodeError):
        return f"invalid JSON ({row.msg} at column {row.colno})"
    if table.format == "jsonl":
        return None if isinstance(row, dict) else f"a JSON {type(row).__name__}, expected an object"
    width = len(table.header) if table.header is not None else len(table.rows[0][1])
    if len(row) != width:
        hint = " (a tab inside a field?)" if table.format == "tsv" else ""
        return f"{len(row)} fields, expected {width}{hint}"
    return None
