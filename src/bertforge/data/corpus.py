"""Stream documents out of raw text files: BERT's sentence-per-line format, books, JSONL, .gz.

A *document* is what next-sentence prediction draws consecutive sentences from; it comes out as a
list of sentence strings. Files are read in 1 MB binary chunks and decoded incrementally, so memory
holds one chunk and one document, never the corpus. Sources may be files, directories (all files
below, sorted, hidden ones skipped) or globs; ``.gz`` files are decompressed on the fly.

Formats (``format=``):

``sentences``   BERT's format: one sentence per line, a blank line between documents.
``documents``   one document per line, split into sentences.
``paragraphs``  blank-line-separated blocks, each one document; hard-wrapped lines are re-joined.
``book``        running prose (Gutenberg, novels): paragraphs are blank-line-separated blocks
                (hard-wrapped lines re-joined, without spaces between Chinese lines) or indented
                lines; all belong to one document, and a chapter heading ("CHAPTER IV",
                "Chapter 3", "第一回 ...", "楔子") starts a new one.
``jsonl``       one JSON object per line; its ``text`` field is one document (blank lines inside
                separate paragraphs).
``auto``        decided per file from its name and first 2,000 lines: ``.jsonl``/``.json``/
                ``.ndjson`` names or a first line that is a JSON object -> jsonl. Without blank
                lines: mostly indented lines -> book; lines holding several sentences ->
                documents; else sentences. With blank lines: blocks of about one line each
                (a paragraph per line, like the Chinese novels) -> book; multi-line blocks whose
                lines mostly read as one complete sentence each -> sentences; otherwise
                (hard-wrapped prose, like Gutenberg books) -> book. ``paragraphs`` is never guessed.

Text hygiene: a UTF-8 BOM is skipped, CRLF and CR become LF, control and format characters are
dropped and tabs become spaces. Bytes that are not UTF-8 are reported with file and byte offset
(of the decompressed stream for .gz; see textfile.py) and either replaced by U+FFFD and counted
(``errors="replace"``) or refused (``errors="strict"``); never dropped silently. A file with NUL
bytes or mostly undecodable bytes at its start is refused as binary. Documents longer than
``max_document_chars`` are cut at a paragraph/sentence boundary so one runaway file cannot hold
memory hostage.
"""

from __future__ import annotations

import glob
import itertools
import json
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from ..errors import BertForgeError
from .sentences import join_lines, looks_like_one_sentence, split_sentences, strip_control_chars
from .textfile import CorpusStats, iter_lines

logger = logging.getLogger(__name__)

FORMATS = ("auto", "sentences", "documents", "paragraphs", "book", "jsonl")
ERROR_MODES = ("replace", "strict")
SNIFF_LINES = 2000
_JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
_ORDINAL = r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|final)"
_NUMBER_WORD = (
    r"(?:(?-i:[IVXLCDM]+)|\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    rf"{_ORDINAL}|the\s+{_ORDINAL})"
)
# "CHAPTER IV", "Chapter 3.", "BOOK ONE: 1805", "Book the First", "第一回 ...", "楔子 ..."; a number is
# required so that "Part of it was lost." stays prose.
_HEADING = re.compile(
    rf"(?:(?:chapter|book|part|volume|stave|canto|act)\.?\s+{_NUMBER_WORD}\b|(?:prologue|epilogue)\b"
    r"|第[\d０-９一二三四五六七八九十百千零〇两]+[回章节卷集部篇折]|楔子|序章|序言|引子|尾声|后记)",
    re.IGNORECASE,
)


# The characters a heading can start with, as _HEADING (case-insensitively) sees them: a cheap test
# that turns away almost every line before the full pattern is tried.
_HEADING_START = re.compile("[cbpvsae第楔序引尾后]", re.IGNORECASE)


class RawDocument(NamedTuple):
    """A document before sentence splitting: ``parts`` are paragraphs to split when ``split`` is
    True, else already sentences. :func:`to_sentences` finishes it; the dataset builder does that in
    its worker processes, so splitting runs in parallel."""

    parts: list[str]
    split: bool


def to_sentences(document: RawDocument) -> list[str]:
    """The document's sentences."""
    if not document.split:
        return document.parts
    return [s for part in document.parts for s in split_sentences(part)]


def expand_sources(sources: Iterable[str | Path]) -> list[Path]:
    """Files named by ``sources`` (files, directories, globs), in the given order, without repeats."""
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_file():
            found = [path]
        elif path.is_dir():
            found = sorted(
                f
                for f in path.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts)
            )
            if not found:
                raise BertForgeError(f"corpus directory {path} holds no files; add text files to it")
        elif any(ch in str(source) for ch in "*?["):
            found = sorted(Path(m) for m in glob.glob(str(source), recursive=True) if Path(m).is_file())
            if not found:
                raise BertForgeError(f"no files match the corpus pattern {source!r}; check the pattern")
        else:
            raise BertForgeError(f"corpus path {path} does not exist; pass text files, directories or globs")
        files.extend(found)
    if not files:
        raise BertForgeError("no corpus files given; pass one or more text files, directories or globs")
    seen: set[Path] = set()
    unique = []
    for file in files:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique


# ------------------------------------------------------------------------------------ formats


def _blocks(lines: Iterable[str], indent_starts_paragraph: bool = False) -> Iterator[list[str]]:
    """Groups of consecutive non-blank lines. A blank line ends one; with ``indent_starts_paragraph``,
    so does an indented line or a chapter heading (paragraph-per-line text without blank lines)."""
    block: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped:
            if block:
                yield block
                block = []
            continue
        if indent_starts_paragraph and block and (_is_indented(line) or is_heading(stripped)):
            yield block
            block = []
        block.append(line)
    if block:
        yield block


def _is_indented(line: str) -> bool:
    return line[:1].isspace() or line.startswith("\u3000")


def detect_format(path: Path, sample: list[str]) -> str:
    """Guess a file's format from its name and first lines (rules in the module docstring)."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(_JSON_SUFFIXES):
        return "jsonl"
    nonblank = [line for line in sample if line.strip()]
    if not nonblank:
        return "documents"
    if nonblank[0].lstrip().startswith("{"):
        try:
            if isinstance(json.loads(nonblank[0]), dict):
                return "jsonl"
        except json.JSONDecodeError:
            pass
    blocks = list(_blocks(sample))
    if len(blocks) <= 1:
        if sum(map(_is_indented, nonblank)) >= 0.5 * len(nonblank):
            return "book"
        several = sum(len(split_sentences(line)) > 1 for line in nonblank)
        return "documents" if several >= 0.3 * len(nonblank) else "sentences"
    if len(nonblank) < 1.5 * len(blocks):
        return "book"
    wrapped = [line for block in blocks if len(block) > 1 for line in block]
    single = sum(map(looks_like_one_sentence, wrapped))
    return "sentences" if single >= 0.6 * len(wrapped) else "book"


def is_heading(paragraph: str) -> bool:
    """Whether a paragraph is a chapter heading (starts a new document in ``book`` format)."""
    return (
        len(paragraph) <= 80
        and _HEADING_START.match(paragraph) is not None
        and _HEADING.match(paragraph) is not None
    )


class _Documents:
    """Collects parts into documents, cutting one that grows past ``max_chars``."""

    def __init__(self, split: bool, max_chars: int) -> None:
        self.split, self.max_chars = split, max_chars
        self.parts: list[str] = []
        self.chars = 0

    def add(self, part: str) -> RawDocument | None:
        self.parts.append(part)
        self.chars += len(part)
        return self.finish() if self.chars >= self.max_chars else None

    def finish(self) -> RawDocument | None:
        parts, self.parts, self.chars = self.parts, [], 0
        return RawDocument(parts, self.split) if parts else None


def _sentences_format(lines: Iterable[str], max_chars: int) -> Iterator[RawDocument]:
    docs = _Documents(split=False, max_chars=max_chars)
    for line in lines:
        sentence = " ".join(line.split())
        done = docs.add(sentence) if sentence else docs.finish()
        if done:
            yield done
    if done := docs.finish():
        yield done


def _documents_format(lines: Iterable[str], max_chars: int) -> Iterator[RawDocument]:
    for line in lines:
        if line.strip():
            yield RawDocument([line.strip()], True)


def _paragraphs_format(lines: Iterable[str], max_chars: int) -> Iterator[RawDocument]:
    for block in _blocks(lines):
        yield RawDocument([join_lines(block)], True)


def _book_format(lines: Iterable[str], max_chars: int) -> Iterator[RawDocument]:
    docs = _Documents(split=True, max_chars=max_chars)
    has_body = False  # a heading after headings only ("BOOK ONE" / "CHAPTER I") joins them
    for block in _blocks(lines, indent_starts_paragraph=True):
        paragraph = join_lines(block)
        heading = is_heading(paragraph)
        if heading and has_body and (done := docs.finish()):
            yield done
            has_body = False
        has_body = has_body or not heading
        if done := docs.add(paragraph):
            yield done
            has_body = False
    if done := docs.finish():
        yield done


def _jsonl_format(lines: Iterable[str], path: Path, text_field: str, max_chars: int) -> Iterator[RawDocument]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise BertForgeError(
                f"{path}:{number}: not valid JSON ({err.msg}); fix the line or remove it"
            ) from None
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            raise BertForgeError(
                f"{path}:{number}: expected a JSON object with a string {text_field!r} field; "
                f"fix the line, or name the field that holds the text"
            )
        docs = _Documents(split=True, max_chars=max_chars)
        text = record[text_field].replace("\r\n", "\n").replace("\r", "\n")
        for block in _blocks(strip_control_chars(line) for line in text.split("\n")):
            if done := docs.add(join_lines(block)):
                yield done
        if done := docs.finish():
            yield done


# -------------------------------------------------------------------------------------- corpus


class Corpus:
    """A re-iterable stream of documents from text files; iterate for lists of sentences.

    ``raw_documents()`` yields them before sentence splitting (for parallel builders); ``stats``
    fills in as the stream is consumed. An exhausted stream that produced no document raises
    BertForgeError.
    """

    def __init__(
        self,
        sources: str | Path | Iterable[str | Path],
        *,
        format: str = "auto",
        errors: str = "replace",
        text_field: str = "text",
        max_document_chars: int = 1_000_000,
    ) -> None:
        if format not in FORMATS:
            raise BertForgeError(f"unknown corpus format {format!r}; choose from {', '.join(FORMATS)}")
        if errors not in ERROR_MODES:
            raise BertForgeError(f"unknown errors mode {errors!r}; choose from {', '.join(ERROR_MODES)}")
        if max_document_chars < 1:
            raise BertForgeError(f"max_document_chars must be positive, got {max_document_chars}")
        if isinstance(sources, (str, Path)):
            sources = [sources]
        self.files = expand_sources(sources)
        self.format, self.errors, self.text_field = format, errors, text_field
        self.max_document_chars = max_document_chars
        self.stats = CorpusStats()

    def raw_documents(self) -> Iterator[RawDocument]:
        self.stats = stats = CorpusStats()
        empty: list[Path] = []  # reported at the end: a corpus with no text at all is one error
        for path in self.files:
            lines = iter_lines(path, self.errors, stats)
            fmt = self.format
            if fmt == "auto":
                sample = list(itertools.islice(lines, SNIFF_LINES))
                fmt = detect_format(path, sample)
                lines = itertools.chain(sample, lines)
            stats.files.append((str(path), fmt))
            logger.info("reading %s as %s", path, fmt)
            before = stats.documents
            for document in self._parse(fmt, lines, path):
                stats.documents += 1
                yield document
            if stats.documents == before:
                empty.append(path)
        if stats.documents == 0:
            names = ", ".join(str(p) for p in self.files[:3]) + (", ..." if len(self.files) > 3 else "")
            raise BertForgeError(f"the corpus ({names}) holds no text; pass files with some text in them")
        for path in empty:
            logger.warning("%s holds no text; skipped", path)

    def _parse(self, fmt: str, lines: Iterable[str], path: Path) -> Iterator[RawDocument]:
        if fmt == "jsonl":
            return _jsonl_format(lines, path, self.text_field, self.max_document_chars)
        parser = {
            "sentences": _sentences_format,
            "documents": _documents_format,
            "paragraphs": _paragraphs_format,
            "book": _book_format,
        }[fmt]
        return parser(lines, self.max_document_chars)

    def __iter__(self) -> Iterator[list[str]]:
        for document in self.raw_documents():
            sentences = to_sentences(document)
            if sentences:
                yield sentences


def read_corpus(
    sources: str | Path | Iterable[str | Path], *, format: str = "auto", errors: str = "replace"
) -> Iterator[list[str]]:
    """Stream the documents (lists of sentences) of text files, directories or globs."""
    return iter(Corpus(sources, format=format, errors=errors))
