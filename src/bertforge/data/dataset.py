"""The on-disk pretraining dataset: read it memory-mapped (:class:`TokenDataset`), write shards of it
(:class:`ShardWriter`, driven by :mod:`bertforge.data.build`).

A dataset directory holds ``manifest.json`` and, per split and shard, four 1-D numpy arrays::

    train-00000.ids.npy          uint16/uint32 [T]   token ids of all sentences, concatenated
    train-00000.word_starts.npy  bool [T]            True where a token begins a whole word
    train-00000.sentences.npy    int64 [S + 1]       sentence s = ids[o[s]:o[s + 1]]
    train-00000.documents.npy    int64 [D + 1]       document d = sentences d[d]..d[d + 1] - 1

Every array is opened with ``np.load(mmap_mode="r")``, so opening a 10 GB dataset reads only the
manifest and the array headers; pages come from disk as instances touch them. Documents are numbered
globally across a split's shards (``0 .. num_documents - 1``).
"""

from __future__ import annotations

import bisect
import json
import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BertForgeError
from ..fileio import atomic_path

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_NAME = "bertforge-pretraining-data"
FORMAT_VERSION = 1
ARRAYS = ("ids", "word_starts", "sentences", "documents")


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of dataset directory ``path``; BertForgeError if it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise BertForgeError(
            f"dataset directory {path} does not exist; build one with "
            "`bertforge data build --corpus FILES --tokenizer DIR --out DIR`"
        )
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BertForgeError(
            f"{path} is not a bertforge dataset (no {MANIFEST}; an interrupted build never writes one); "
            "build it with `bertforge data build --corpus FILES --tokenizer DIR --out DIR`"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BertForgeError(f"{manifest_path} is not valid JSON ({err}); rebuild the dataset") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise BertForgeError(
            f"{manifest_path} does not describe a {FORMAT_NAME} dataset; "
            "point to a directory written by `bertforge data build`"
        )
    if manifest.get("version") != FORMAT_VERSION:
        raise BertForgeError(
            f"{path} has dataset format version {manifest.get('version')}, this bertforge reads "
            f"version {FORMAT_VERSION}; rebuild it with this version's `bertforge data build`"
        )
    return manifest


class TokenDataset:
    """One split ("train" or "eval") of a tokenised dataset, memory-mapped.

    ``document(i)`` gives document ``i``'s sentences as int64 id arrays and ``document_word_starts(i)``
    the aligned whole-word start flags. Nothing is read into RAM until asked for.
    """

    def __init__(self, path: Path, split: str, manifest: dict[str, Any]) -> None:
        self.path = path
        self.split = split
        self.manifest = manifest
        self.vocab_size: int = int(manifest["vocab_size"])
        self.tokenizer_fingerprint: str = str(manifest["tokenizer_fingerprint"])
        info = manifest["splits"][split]
        self.num_documents: int = int(info["documents"])
        self.num_sentences: int = int(info["sentences"])
        self.num_tokens: int = int(info["tokens"])
        self.shard_names: list[str] = [shard["name"] for shard in info["shards"]]
        self._shards = [self._open_shard(name) for name in self.shard_names]
        # _doc_starts[k] = global index of shard k's first document; a small list, one entry per shard.
        self._doc_starts: list[int] = []
        total = 0
        for shard in self._shards:
            self._doc_starts.append(total)
            total += len(shard["documents"]) - 1
        if total != self.num_documents:
            raise BertForgeError(
                f"dataset {path} is inconsistent: the manifest says {self.num_documents} {split} documents, "
                f"the shards hold {total}; rebuild it with `bertforge data build`"
            )

    @classmethod
    def open(cls, path: str | Path, split: str = "train") -> TokenDataset:
        """Open ``split`` of the dataset directory ``path`` (memory-mapped; instant whatever the size)."""
        path = Path(path)
        manifest = read_manifest(path)
        splits = manifest.get("splits", {})
        if split not in splits:
            raise BertForgeError(
                f"dataset {path} has no split {split!r}; choose from {', '.join(sorted(splits)) or 'none'}"
            )
        return cls(path, split, manifest)

    def _open_shard(self, name: str) -> dict[str, np.ndarray]:
        arrays = {}
        for kind in ARRAYS:
            file = self.path / f"{name}.{kind}.npy"
            if not file.is_file():
                raise BertForgeError(
                    f"dataset {self.path} is missing {file.name}; the directory was changed after the "
                    "build: rebuild it with `bertforge data build`"
                )
            arrays[kind] = np.load(file, mmap_mode="r")
        return arrays

    def shard_arrays(self, kind: str) -> list[np.ndarray]:
        """One memory-mapped array per shard, in order: ``kind`` is "ids", "word_starts",
        "sentences" or "documents" (the on-disk layout in the module docstring)."""
        if kind not in ARRAYS:
            raise BertForgeError(f"unknown shard array {kind!r}; choose from {', '.join(ARRAYS)}")
        return [shard[kind] for shard in self._shards]

    def __len__(self) -> int:
        return self.num_documents

    def __repr__(self) -> str:
        return (
            f"TokenDataset({str(self.path)!r}, split={self.split!r}, documents={self.num_documents}, "
            f"sentences={self.num_sentences}, tokens={self.num_tokens}, shards={len(self._shards)})"
        )

    # ------------------------------------------------------------------------------------- documents

    def _locate(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The shard holding document ``index`` and that document's sentence offsets into its ids."""
        if not -self.num_documents <= index < self.num_documents:
            raise IndexError(f"document {index} out of range for {self.num_documents} documents")
        index %= self.num_documents
        k = bisect.bisect_right(self._doc_starts, index) - 1
        shard = self._shards[k]
        local = index - self._doc_starts[k]
        first, last = int(shard["documents"][local]), int(shard["documents"][local + 1])
        return shard, np.asarray(shard["sentences"][first : last + 1], dtype=np.int64)

    def document(self, index: int) -> list[np.ndarray]:
        """Document ``index``'s sentences, each an int64 1-D array of token ids (no [CLS]/[SEP])."""
        shard, offsets = self._locate(index)
        ids = np.asarray(shard["ids"][offsets[0] : offsets[-1]], dtype=np.int64)
        base = offsets[0]
        return [ids[a - base : b - base] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]

    def document_word_starts(self, index: int) -> list[np.ndarray]:
        """Whole-word start flags (bool 1-D), aligned with :meth:`document`."""
        shard, offsets = self._locate(index)
        flags = np.asarray(shard["word_starts"][offsets[0] : offsets[-1]], dtype=np.bool_)
        base = offsets[0]
        return [flags[a - base : b - base] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]

    def sentence_lengths(self, index: int) -> np.ndarray:
        """int64 [n_sentences]: the token count of each sentence of document ``index``."""
        return np.diff(self._locate(index)[1])

    # ------------------------------------------------------------------ whole-split views (optional)

    @cached_property
    def document_offsets(self) -> np.ndarray:
        """int64 [num_documents + 1]: document d = global sentences ``o[d] .. o[d + 1] - 1``.

        Reads every shard's documents array once (8 bytes per document), so it is lazy.
        """
        parts, base = [np.zeros(1, dtype=np.int64)], 0
        for shard in self._shards:
            docs = np.asarray(shard["documents"], dtype=np.int64)
            parts.append(docs[1:] + base)
            base += int(docs[-1])
        return np.concatenate(parts)

    @cached_property
    def all_sentence_lengths(self) -> np.ndarray:
        """int64 [num_sentences]: token count of every sentence of the split, in document order.

        Lets an instance planner size every document with one array instead of a call per document.
        """
        parts = [np.diff(np.asarray(shard["sentences"], dtype=np.int64)) for shard in self._shards]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------------------------------- tokenizer

    def check_tokenizer(self, tokenizer: Any) -> None:
        """Raise BertForgeError unless ``tokenizer`` has the vocabulary this dataset was built with."""
        theirs = tokenizer.fingerprint()
        if theirs != self.tokenizer_fingerprint:
            raise BertForgeError(
                f"dataset {self.path} was built with a different vocabulary (fingerprint "
                f"{self.tokenizer_fingerprint[:12]}… ≠ {theirs[:12]}…); rebuild it with "
                "`bertforge data build --tokenizer THIS_TOKENIZER` or train with the tokenizer it was "
                "built with"
            )


# ------------------------------------------------------------------------------------------ writer


class ShardWriter:
    """Buffers one split's documents and writes a shard once it holds ``shard_tokens`` tokens.

    A full shard is written when the *next* document arrives, so the last document added is always
    still in memory (the builder may move it to the eval split at the end)."""

    def __init__(self, directory: Path, split: str, shard_tokens: int, dtype: np.dtype) -> None:
        self.directory, self.split, self.shard_tokens, self.dtype = directory, split, shard_tokens, dtype
        self.shards: list[dict[str, Any]] = []
        self._reset()

    def _reset(self) -> None:
        self.ids: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []
        self.lengths: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.tokens = 0

    def add(self, ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray, counts: np.ndarray) -> None:
        """Append whole documents (counts = sentences per document, all > 0)."""
        while counts.size:
            if self.tokens >= self.shard_tokens:
                self.flush()
            # Tokens per document, then how many documents fit before the shard is full.
            doc_tokens = np.add.reduceat(lengths, np.concatenate([[0], np.cumsum(counts)[:-1]]))
            room = self.shard_tokens - self.tokens
            take = min(int(np.searchsorted(np.cumsum(doc_tokens), room)) + 1, counts.size)
            n_sentences = int(counts[:take].sum())
            n_tokens = int(lengths[:n_sentences].sum())
            self.ids.append(ids[:n_tokens])
            self.starts.append(starts[:n_tokens])
            self.lengths.append(lengths[:n_sentences])
            self.counts.append(counts[:take])
            self.tokens += n_tokens
            ids, starts = ids[n_tokens:], starts[n_tokens:]
            lengths, counts = lengths[n_sentences:], counts[take:]

    def pop_last_document(self) -> tuple[np.ndarray, ...] | None:
        """Remove and return the most recently added document, if it is not written yet."""
        if not self.counts:
            return None
        counts, lengths = self.counts[-1], self.lengths[-1]
        n_sentences = int(counts[-1])
        n_tokens = int(lengths[-n_sentences:].sum())
        document = (
            self.ids[-1][-n_tokens:] if n_tokens else self.ids[-1][:0],
            self.starts[-1][-n_tokens:] if n_tokens else self.starts[-1][:0],
            lengths[-n_sentences:],
            counts[-1:],
        )
        self.ids[-1] = self.ids[-1][: len(self.ids[-1]) - n_tokens]
        self.starts[-1] = self.starts[-1][: len(self.starts[-1]) - n_tokens]
        self.lengths[-1], self.counts[-1] = lengths[:-n_sentences], counts[:-1]
        self.tokens -= n_tokens
        return document

    def flush(self) -> None:
        counts = np.concatenate(self.counts) if self.counts else np.zeros(0, dtype=np.int64)
        if not counts.size:
            return
        lengths = np.concatenate(self.lengths)
        name = f"{self.split}-{len(self.shards):05d}"
        self._write(f"{name}.ids.npy", self.ids, self.dtype)
        self._write(f"{name}.word_starts.npy", self.starts, np.dtype(np.bool_))
        self._write(f"{name}.sentences.npy", [np.zeros(1, np.int64), np.cumsum(lengths)], np.dtype(np.int64))
        self._write(f"{name}.documents.npy", [np.zeros(1, np.int64), np.cumsum(counts)], np.dtype(np.int64))
        self.shards.append(
            {
                "name": name,
                "documents": int(counts.size),
                "sentences": int(lengths.size),
                "tokens": self.tokens,
            }
        )
        logger.info("wrote shard %s (%d tokens)", name, self.tokens)
        self._reset()

    def _write(self, filename: str, pieces: list[np.ndarray], dtype: np.dtype) -> None:
        # Filled piece by piece through a memmap: no concatenated copy of the shard in RAM.
        total = sum(len(p) for p in pieces)
        with atomic_path(self.directory / filename) as tmp:
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(total,))
            position = 0
            for piece in pieces:
                array[position : position + len(piece)] = piece
                position += len(piece)
            array.flush()
            del array

    def totals(self) -> dict[str, Any]:
        return {
            "documents": sum(s["documents"] for s in self.shards),
            "sentences": sum(s["sentences"] for s in self.shards),
            "tokens": sum(s["tokens"] for s in self.shards),
            "shards": self.shards,
        }


def describe_dataset(path: str | Path) -> list[str]:
    """Human-readable lines summarising a dataset's manifest (``bertforge data info``)."""
    manifest = read_manifest(path)
    lines = [
        f"dataset         {path}",
        f"tokenizer       {manifest['vocab_size']} tokens, fingerprint {manifest['tokenizer_fingerprint'][:12]}…, "
        f"{'uncased' if manifest.get('do_lower_case') else 'cased'}, ids stored as {manifest['dtype']}",
    ]
    for name, split in manifest["splits"].items():
        lines.append(
            f"{name:<15} {split['documents']:,} documents, {split['sentences']:,} sentences, "
            f"{split['tokens']:,} tokens, {len(split['shards'])} shards"
        )
    sources = manifest.get("sources", [])
    lines.append(
        f"sources         {len(sources)} files" + (f", e.g. {sources[0]['path']}" if sources else "")
    )
    lines.append(f"eval split      fraction {manifest.get('eval_fraction')}, seed {manifest.get('seed')}")
    lines.append(f"replaced bytes  {manifest.get('decode_errors', 0):,}")
    lines.append(f"created         {manifest.get('created', 'unknown')}")
    return lines
