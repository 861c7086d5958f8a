"""Reading a text file of any size as lines: plain or ``.gz``, in 1 MB chunks, decoded as UTF-8.

Undecodable bytes are replaced (U+FFFD, counted with file and byte offset in :class:`CorpusStats`)
or refused (``errors="strict"``), never dropped silently. A file that starts with NUL bytes,
mostly undecodable bytes or a UTF-16 byte-order mark is refused as binary, naming the file.
CRLF line endings and a UTF-8 BOM are removed here.
"""

from __future__ import annotations

import codecs
import gzip
import itertools
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..errors import BertForgeError
from ..tasks.arguments import argument
from .sentences import strip_control_chars

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
MAX_REPORTED_OFFSETS = 20


@dataclass
class CorpusStats:
    """What reading found, filled in while the corpus streams."""

    files: list[tuple[str, str]] = field(default_factory=list)  # (path, format) in reading order
    documents: int = 0
    replaced_bytes: int = 0
    decode_errors: list[tuple[str, int]] = field(default_factory=list)  # (path, byte offset), first 20


def _open_binary(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _read_chunks(path: Path) -> Iterator[bytes]:
    try:
        with _open_binary(path) as handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise BertForgeError(
            f"{path} is not a valid gzip file ({err}); re-compress it or drop the .gz"
        ) from None


class _Decoder:
    """Incremental UTF-8 decoding that knows the byte offset of every bad byte."""

    def __init__(self, path: Path, errors: str, stats: CorpusStats) -> None:
        self.path, self.errors, self.stats = path, errors, stats
        self.offset = 0  # file offset of the first byte not yet consumed
        self.replaced = 0
        self.first_bad: int | None = None

    def decode(self, data: bytes, final: bool) -> tuple[str, int]:
        """Decode ``data`` (starting at ``self.offset``); returns the text and bytes consumed (an
        incomplete trailing sequence is left for the next call unless ``final``)."""
        view = memoryview(data)
        parts: list[str] = []
        pos = 0
        while True:
            try:
                text, used = codecs.utf_8_decode(view[pos:], "strict", final)
            except UnicodeDecodeError as err:
                parts.append(str(view[pos : pos + err.start], "utf-8"))
                self._bad(self.offset + pos + err.start, err.end - err.start, err.reason)
                parts.append("\ufffd")
                pos += err.end
                continue
            parts.append(text)
            pos += used
            break
        self.offset += pos
        return "".join(parts), pos

    def _bad(self, offset: int, length: int, reason: str) -> None:
        where = f"{self.path} at byte {offset}" + (
            " of the decompressed data" if self.path.name.endswith(".gz") else ""
        )
        if self.errors == "strict":
            raise BertForgeError(
                f"{where}: not UTF-8 ({reason}); re-encode the file as UTF-8, or pass "
                f"{argument('errors', 'replace')} to substitute U+FFFD and count the bytes"
            )
        if self.first_bad is None:
            self.first_bad = offset
        self.replaced += length
        self.stats.replaced_bytes += length
        if len(self.stats.decode_errors) < MAX_REPORTED_OFFSETS:
            self.stats.decode_errors.append((str(self.path), offset))


def _check_not_binary(path: Path, head: bytes) -> None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise BertForgeError(f"{path} is UTF-16 text; convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)")
    nul = head.find(b"\x00", 0, 8192)
    if nul >= 0:
        raise BertForgeError(
            f"{path} looks like a binary file, not text (NUL byte at offset {nul}); remove it from the corpus"
        )


def iter_lines(path: Path, errors: str = "replace", stats: CorpusStats | None = None) -> Iterator[str]:
    """The cleaned lines of a text file (no line ends), streamed; see the module docstring."""
    stats = stats if stats is not None else CorpusStats()
    decoder = _Decoder(path, errors, stats)
    pending = b""  # an incomplete UTF-8 sequence at a chunk's end
    held_cr = ""  # a chunk ending in "\r" may be half of "\r\n"
    line: list[str] = []  # pieces of the current, still incomplete line
    chunks = _read_chunks(path)
    first = True
    for chunk in itertools.chain(chunks, [b""]):
        final = not chunk
        data = pending + chunk
        if first:
            first = False
            _check_not_binary(path, data)
            if data.startswith(codecs.BOM_UTF8):
                data = data[3:]
                decoder.offset = 3
        text, used = decoder.decode(data, final)
        pending = data[used:]
        if decoder.offset <= CHUNK_BYTES + 3 and decoder.replaced > max(16, decoder.offset // 10):
            raise BertForgeError(
                f"{path} looks like a binary file, not UTF-8 text ({decoder.replaced} undecodable bytes "
                f"in its first {decoder.offset}); remove it from the corpus or convert it to UTF-8"
            )
        # Cleaned a chunk at a time, line ends kept: the same as cleaning each line, in one pass.
        text = held_cr + strip_control_chars(text, keep_line_ends=True)
        held_cr = ""
        if text.endswith("\r") and not final:
            text, held_cr = text[:-1], "\r"
        pieces = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if len(pieces) == 1:
            line.append(pieces[0])
            continue
        line.append(pieces[0])
        yield "".join(line)
        yield from pieces[1:-1]
        line = [pieces[-1]]
    last = "".join(line)
    if last:
        yield last
    if decoder.replaced:
        logger.warning(
            "%s: replaced %d undecodable bytes with U+FFFD (first at byte %d); pass errors='strict' "
            "to refuse such files",
            path,
            decoder.replaced,
            decoder.first_bad,
        )
