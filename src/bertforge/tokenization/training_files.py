"""The text files a vocabulary is learned from, for every trainer (WordPiece, BPE, Unigram).

They are checked before training starts, then read line by line (UTF-8, line ends kept as the
trainers have always seen them, ``.gz`` decompressed). A file that is missing, a directory, not
UTF-8 or a broken ``.gz`` is an error naming that file: training reads many files, and a bare
``UnicodeDecodeError`` would not say which one to convert.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import BertForgeError


def training_files(files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """``files`` (one path or several) as paths, each checked to be an existing file."""
    paths = [Path(files)] if isinstance(files, (str, os.PathLike)) else [Path(f) for f in files]
    if not paths:
        raise BertForgeError("no training files given; pass a text file or a list of them")
    for path in paths:
        if path.is_dir():
            raise BertForgeError(
                f"training file {path} is a directory; pass the text files in it (e.g. {path}/*.txt)"
            )
        if not path.is_file():
            raise BertForgeError(f"training file {path} not found; pass existing UTF-8 text files")
    return paths


def training_lines(paths: Iterable[Path]) -> Iterator[str]:
    """The lines of ``paths`` in order, each with its line end; files holding only whitespace are
    an error naming them once the last line is read (the trainers would only say "no text")."""
    paths = list(paths)
    any_text = False
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8") as handle:
                for line in handle:
                    any_text = any_text or not line.isspace()
                    yield line
        except UnicodeDecodeError as err:
            raise BertForgeError(
                f"training file {path} is not UTF-8 text ({err.reason}); convert it to UTF-8 "
                "(e.g. iconv -f latin1 -t utf-8)"
            ) from None
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            raise BertForgeError(
                f"training file {path} is not a valid gzip file ({err}); re-compress it or drop the .gz"
            ) from None
    if not any_text:
        names = ", ".join(str(path) for path in paths)
        raise BertForgeError(f"the training files ({names}) hold no text; pass non-empty UTF-8 text files")
