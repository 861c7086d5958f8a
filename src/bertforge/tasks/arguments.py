"""Who reads an error message: a Python caller or a command-line user.

A message that tells the user what to pass names the setting the way its reader sets it: a Python
caller reads ``pass on_error='skip'``, a command-line user ``pass --on-error skip``. Library code
writes :func:`argument` where it names a setting; the CLI runs its commands inside
:func:`cli_arguments` with the mapping of its flags (built from its argparse parser by
:func:`flags_of`), and every message raised inside names flags instead. A setting the command has no
flag for keeps its Python spelling unless the message gives a command-line alternative (``cli=``).

One mechanism for every error raised while a CLI command runs; it is a context variable, so it is
per thread and never leaks into a caller that did not ask for it.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_MISSING: Any = object()

# Python argument name -> (flag, takes a value); None outside the CLI.
_FLAGS: ContextVar[Mapping[str, tuple[str, bool]] | None] = ContextVar("bertforge_cli_flags", default=None)


def flags_of(parser: argparse.ArgumentParser) -> dict[str, tuple[str, bool]]:
    """Each option's destination -> (its longest flag, whether the flag takes a value)."""
    flags: dict[str, tuple[str, bool]] = {}
    for action in parser._actions:  # argparse has no public list of its actions
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs and action.dest not in ("help",):
            flags.setdefault(action.dest, (max(longs, key=len), action.nargs != 0))
    return flags


@contextmanager
def cli_arguments(flags: Mapping[str, tuple[str, bool]]) -> Iterator[None]:
    """Inside this block, :func:`argument` names command-line flags (``flags`` from :func:`flags_of`)."""
    token = _FLAGS.set(dict(flags))
    try:
        yield
    finally:
        _FLAGS.reset(token)


def for_cli() -> bool:
    """Whether messages raised now are read by a command-line user."""
    return _FLAGS.get() is not None


def argument(name: str, value: Any = _MISSING, *, cli: str | None = None) -> str:
    """How to tell the reader of a message to set ``name`` (to ``value``, when given).

    Python: ``on_error='skip'`` (``text_column=`` without a value). CLI: ``--on-error skip``
    (``--text-column``); a setting without a flag gives ``cli`` when the message offers one.
    """
    flags = _FLAGS.get()
    if flags is not None:
        if name in flags:
            flag, takes_value = flags[name]
            return flag if value is _MISSING or not takes_value else f"{flag} {value}"
        if cli is not None:
            return cli
    return f"{name}=" if value is _MISSING else f"{name}={value!r}"
