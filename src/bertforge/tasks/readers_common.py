"""What every task reader shares: opening a file, naming its format, and reporting malformed rows.

A malformed row is reported as ``FILE:LINE: reason``. The user chooses what happens: ``on_error=
"raise"`` stops at the first one with a :class:`~bertforge.errors.BertForgeError`, ``"skip"`` drops
the row, keeps its message in :attr:`ReadResult.skipped` and logs a one-line count at the end. Files
that cannot be read at all (missing, empty, a wrong column) always raise: skipping every row would
hide the mistake.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import BertForgeError
from ..fileio import read_text_file
from .arguments import argument, for_cli

logger = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip")


class RowErrors:
    """Collects malformed rows of one file, or raises on the first, as ``on_error`` says."""

    def __init__(self, path: str | Path, on_error: str) -> None:
        if on_error not in ON_ERROR:
            raise BertForgeError(f"unknown on_error {on_error!r}; choose from raise, skip")
        self.path = str(path)
        self.on_error = on_error
        self.skipped: list[str] = []
        self.extra: list[int] = []  # lines of rows with extra trailing fields (read by their named columns)

    def where(self, line: int | str) -> str:
        return f"{self.path}:{line}"

    def bad(self, line: int | str, reason: str) -> None:
        """Report one malformed row; returns only when the row is to be skipped."""
        message = f"{self.where(line)}: {reason}"
        if self.on_error == "raise":
            raise BertForgeError(f"{message} (pass {argument('on_error', 'skip')} to skip malformed rows)")
        self.skipped.append(message)

    def extra_fields(self, line: int) -> None:
        """Count a row read by its named columns although it has more fields than the table."""
        self.extra.append(line)

    def finish(self, kept: int) -> None:
        if self.extra:
            logger.warning(
                "%s: %d row(s) have extra trailing fields beyond the named columns (first at line %d); "
                "read by their named columns, the extra fields ignored",
                self.path,
                len(self.extra),
                self.extra[0],
            )
        if self.skipped:
            logger.warning(
                "skipped %d malformed row(s) of %s, kept %d; first: %s",
                len(self.skipped),
                self.path,
                kept,
                self.skipped[0],
            )


def read_text(path: str | Path) -> str:
    """The whole file as text (UTF-8, a byte-order mark dropped); clear errors if missing or empty."""
    text = read_text_file(path, "task file")
    if not text.strip():
        raise BertForgeError(f"{path} is empty; expected task examples")
    return text


def file_format(path: str | Path, format: str | None, choices: dict[str, str], sniff: str) -> str:
    """The format named by ``format`` or the extension (``choices`` maps extensions and names to a
    format), else ``sniff`` (what the content looks like, or "" when it does not say)."""
    if format is not None:
        found = choices.get(format.lower().lstrip("."))
        if found is None:
            names = ", ".join(sorted(set(choices)))
            raise BertForgeError(f"unknown format {format!r}; choose from {names}")
        return found
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in choices:
        return choices[suffix]
    if sniff:
        return sniff
    names = ", ".join(sorted(set(choices)))
    fix = "give it a name ending in" if for_cli() else "pass format="
    raise BertForgeError(f"cannot tell the format of {path} from its name; {fix} one of {names}")
