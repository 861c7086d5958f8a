"""What every ``bertforge`` subcommand shares: the one-line usage error and argument types."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) with a pointer to --help."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def output_file(text: str) -> str:
    """A file to write (``--output``), refused at once when it is a directory: the command would
    otherwise do all its work before finding out that it cannot save it."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; pass a file path")
    return text


def seed_list(text: str) -> list[int]:
    """``--seeds 0,1,2`` (or a range, ``0-4``): distinct integers."""
    from ..errors import BertForgeError
    from ..train.seeds import parse_seeds

    try:
        return parse_seeds(text)
    except BertForgeError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def int_list(text: str) -> list[int]:
    """``--student-layers 0,2,4``: comma-separated non-negative integers."""
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 0,2,4, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers like 0,2,4, got {text!r}")
    return values
