"""Atomic file writes: a crash or a full disk never leaves a half-written file under the real name.

Every file bertforge writes (weights, config.json, vocab.txt, embeddings) goes through these
helpers: the bytes land in a temporary file in the same directory, are flushed to disk, and only
then renamed over the target, which POSIX guarantees to be atomic. A whole output directory (a
checkpoint, a pruned or quantised model) is written the same way by :func:`atomic_directory`.

Files a user names for bertforge to read (a recipe, a list of texts) go through
:func:`read_text_file`, so a missing file, a directory or a file that is not UTF-8 is an error
naming that file, not a bare ``UnicodeDecodeError`` that says nothing of which file it was.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import BertForgeError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling path for a writer that wants a file name (safetensors, numpy);
    rename it over ``path`` if the block succeeds, delete it if not."""
    path = Path(path)
    if path.is_dir():  # else the rename fails naming the temporary file, not the user's path
        raise BertForgeError(f"{path} is a directory; pass a file path to write to")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    # os.open with 0o666 lets the umask decide the final permissions, as for any new file
    # (tempfile.mkstemp would leave every checkpoint readable by its owner only).
    os.close(os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp_name
        with open(tmp_name, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it to ``path`` if the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
        yield handle


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def read_text_file(path: str | os.PathLike[str], what: str = "file", hint: str = "check the path") -> str:
    """The text of a UTF-8 file a user named (a byte-order mark dropped). A missing file, a
    directory or bytes that are not UTF-8 raise a :class:`BertForgeError` naming the file as
    ``what`` (``"recipe"``, ``"input file"``); ``hint`` is the fix offered when it is missing."""
    path = Path(path)
    if path.is_dir():
        raise BertForgeError(f"{what} {path} is a directory; pass a file")
    if not path.is_file():
        raise BertForgeError(f"{what} {path} not found; {hint}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        with open(path, "rb") as handle:  # the decoder counts from after a byte-order mark
            offset = err.start + (3 if handle.read(3) == codecs.BOM_UTF8 else 0)
        raise BertForgeError(
            f"{what} {path} is not UTF-8 text ({err.reason} at byte {offset}); convert it to UTF-8"
        ) from None


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file or a directory (its entries: a rename in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def temporary_directory(final: str | os.PathLike[str]) -> Path:
    """Where :func:`atomic_directory` builds ``final`` before renaming it: ``.NAME.tmp`` beside it."""
    final = Path(final)
    return final.parent / f".{final.name}.tmp"


def start_temporary_directory(final: str | os.PathLike[str]) -> Path:
    """An empty :func:`temporary_directory` for ``final`` (a stale one from a killed write removed)."""
    tmp = temporary_directory(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def atomic_directory(
    final: str | os.PathLike[str], write: Callable[[Path], None], *, started: bool = False
) -> Path:
    """Run ``write(tmp_dir)`` in the temporary sibling ``.NAME.tmp`` and rename it to ``final``,
    replacing an older ``final``; on any failure the temporary directory is removed and ``final``
    is left as it was, so a reader sees the old directory or the new one, never a part of either.
    ``started``: the temporary directory already holds files other processes wrote into it (after
    :func:`start_temporary_directory`, e.g. a sharded checkpoint's shards); keep them."""
    final = Path(final)
    tmp = temporary_directory(final)
    old = final.parent / f".{final.name}.old"
    try:
        if not started:
            start_temporary_directory(final)
        write(tmp)
        if final.exists():
            # Two renames, so `final` is missing only between them and never half-written.
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    fsync_path(final.parent)  # the rename itself survives a power cut
    return final
