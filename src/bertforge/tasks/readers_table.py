"""Rows of CSV, TSV and JSON-lines files, with their line numbers and column names.

Shared by the text-classification and multiple-choice readers. Four choices matter:

* The delimiter of a ``.csv``, ``.tsv`` or ``.txt`` table (or one without a known extension) comes
  from its content, never from its name alone: STS-benchmark's ``sts-train.csv`` is tab-separated,
  MRPC's ``msr_paraphrase_train.txt`` too. :func:`detect_delimiter` asks :class:`csv.Sniffer`
  (restricted to tab, comma, semicolon and pipe) and checks its answer against a deterministic
  count: each candidate splits the first 100 lines, and the one giving the same number (two or
  more) of fields on the most rows wins, ties going tab, comma, semicolon, pipe. Sniffer's answer
  stands when it is among the best. ``format="csv"``/``"tsv"`` forces comma / tab.
* When the columns are named (by a header row, or by indices the caller passes), a row with more
  fields than that is read by its named columns and counted (:attr:`ReadResult.extra_fields`)
  instead of failing: STS-benchmark's files carry two extra trailing fields on some rows. A row
  with fewer fields is still malformed. In a file without a header, the expected width is the most
  common one.
* TSV is read with ``quoting=csv.QUOTE_NONE``, as the GLUE processors do: GLUE sentences contain
  unbalanced ``"`` that are text, not CSV quoting, and would otherwise swallow the following rows.
  CSV keeps standard quoting (a quoted field may span lines; its row is numbered by its first line).
* Whether the first row is a header is guessed when not given: it is one if it holds a name we know
  (``sentence``, ``label``, ``#1 String`` ...), or if some column is a number in the second row but
  not in the first. GLUE's CoLA (no header, a numeric label column) thus reads as data.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BertForgeError
from .arguments import argument
from .readers_common import file_format

FORMATS = {
    "csv": "delimited",
    "tsv": "delimited",
    "txt": "delimited",
    "tab": "delimited",
    "jsonl": "jsonl",
    "json": "jsonl",
    "ndjson": "jsonl",
}
FORCED_DELIMITER = {"csv": ",", "tsv": "\t", "tab": "\t"}  # an explicit format= names the delimiter
DELIMITERS = ("\t", ",", ";", "|")  # detection candidates, in tie-break order
SNIFF_LINES = 100

csv.field_size_limit(1 << 28)  # long documents; the default 128 KiB limit is for spreadsheets


@dataclass
class Table:
    """A file's rows: lists of fields (CSV/TSV) or dicts (JSONL), each with its 1-based line."""

    path: str
    format: str  # "csv" (any delimiter but tab, standard quoting), "tsv" (tab, no quoting) or "jsonl"
    header: list[str] | None  # column names; None for a headerless CSV/TSV; keys of the first JSON record
    rows: list[tuple[int, Any]]
    delimiter: str = ""  # "" for JSON lines

    @functools.cached_property
    def width(self) -> int:
        """Fields a row should have: the header's, else the most common row width (smallest on ties)."""
        if self.header is not None:
            return len(self.header)
        counts: dict[int, int] = {}
        for _, row in self.rows:
            counts[len(row)] = counts.get(len(row), 0) + 1
        return min(counts, key=lambda n: (-counts[n], n)) if counts else 0

    def describe_columns(self) -> str:
        if self.header is None:
            return f"no header; columns are indices 0..{self.width - 1}"
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


def _reader(source: Any, delimiter: str) -> Any:
    if delimiter == "\t":
        return csv.reader(source, delimiter=delimiter, quoting=csv.QUOTE_NONE)
    return csv.reader(source, delimiter=delimiter)


def _consistency(sample: str, delimiter: str) -> float:
    """Fraction of the sample's rows with the most common field count, 0 when that count is 1."""
    counts: dict[int, int] = {}
    try:
        for fields in _reader(io.StringIO(sample, newline=""), delimiter):
            if fields and any(f.strip() for f in fields):
                counts[len(fields)] = counts.get(len(fields), 0) + 1
    except csv.Error:
        return 0.0
    if not counts:
        return 0.0
    mode = min(counts, key=lambda n: (-counts[n], n))
    return 0.0 if mode < 2 else counts[mode] / sum(counts.values())


def detect_delimiter(text: str) -> str:
    """The delimiter of a table, from its content (see the module docstring)."""
    lines = [line for line in text.splitlines() if line.strip()][:SNIFF_LINES]
    sample = "\n".join(lines) + "\n"
    scores = {d: _consistency(sample, d) for d in DELIMITERS}
    best = max(scores.values())
    if best == 0:  # one column: nothing splits it; tab keeps any quotes as text
        return "\t"
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    if sniffed in scores and scores[sniffed] == best:
        return sniffed
    return next(d for d in DELIMITERS if scores[d] == best)


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
    sniff = "jsonl" if first_line.startswith(("{", "[")) else "delimited"
    fmt = file_format(path, format, FORMATS, sniff)
    if fmt == "jsonl":
        rows = _json_rows(str(path), text)
        first = next((r for _, r in rows if isinstance(r, dict)), None)
        return Table(str(path), fmt, list(first) if first else None, rows)

    forced = FORCED_DELIMITER.get((format or "").lower().lstrip("."))
    delimiter = forced or detect_delimiter(text)
    fmt = "tsv" if delimiter == "\t" else "csv"
    rows = _delimited_rows(text, delimiter)
    if not rows:
        raise BertForgeError(f"{path} has no rows")
    if has_header is None:
        second = rows[1][1] if len(rows) > 1 else None
        has_header = named or _guess_header(rows[0][1], second, known)
    if named and not has_header:
        raise BertForgeError(
            f"{path}: columns are given by name but the file has no header; pass them as 0-based "
            f"indices ({argument('text_column', 0)} ...)"
        )
    if not has_header:
        return Table(str(path), fmt, None, rows, delimiter)
    header = [name.strip() for name in rows[0][1]]
    if len(rows) == 1:
        raise BertForgeError(f"{path} has a header ({', '.join(header)}) but no rows")
    return Table(str(path), fmt, header, rows[1:], delimiter)


def find_column(table: Table, column: str | int, role: str) -> str | int:
    """Resolve a user-given column (name or 0-based index) to a key of the rows, or raise."""
    if table.format == "jsonl":
        if isinstance(column, int):
            raise BertForgeError(
                f"{table.path}: JSON records have keys, not column numbers; pass {argument(role)} a key"
            )
        return column
    if isinstance(column, int):
        width = table.width
        if table.header is None:  # no header: any column some row has may be asked for
            width = max(len(row) for _, row in table.rows)
        if not -width <= column < width:
            raise BertForgeError(
                f"{argument(role)} {column} is out of range for {table.path} ({width} columns; "
                f"{table.describe_columns()})"
            )
        return column % width
    assert table.header is not None  # read_table requires a header for named columns
    lowered = [name.lower() for name in table.header]
    for wanted in (column, column.lower()):
        for names in (table.header, lowered):
            if wanted in names:
                return names.index(wanted)
    raise BertForgeError(
        f"{argument(role)} {column!r} is not in {table.path}; its {table.describe_columns()}"
    )


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


def row_problem(table: Table, row: Any, extra_ok: bool = False) -> str | None:
    """Why a row cannot be read at all (bad JSON, wrong number of fields), or None. With
    ``extra_ok`` (the columns are named), more fields than the table's width are not a problem."""
    if isinstance(row, json.JSONDecodeError):
        return f"invalid JSON ({row.msg} at column {row.colno})"
    if table.format == "jsonl":
        return None if isinstance(row, dict) else f"a JSON {type(row).__name__}, expected an object"
    width = table.width
    if len(row) != width and not (extra_ok and len(row) > width):
        hint = " (a tab inside a field?)" if table.format == "tsv" and len(row) > width else ""
        return f"{len(row)} fields, expected {width}{hint}"
    return None


def extra_fields(table: Table, row: Any) -> int:
    """How many trailing fields a CSV/TSV row has beyond the table's width (0 for JSON)."""
    if table.format == "jsonl" or not isinstance(row, list):
        return 0
    return max(0, len(row) - table.width)
