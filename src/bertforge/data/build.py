"""Build a tokenised pretraining dataset from raw text: read, split, tokenise in parallel, shard.

The pipeline streams, so memory is bounded by one shard, whatever the corpus size::

    Corpus (parent: read + decode + find paragraphs)          documents, in corpus order
      -> chunks of ~256k characters                            bounded number in flight
      -> worker processes: split sentences, tokenise           ids, whole-word flags,
         (BulkEncoder: each distinct word once), whole-word    sentence lengths
         flags (tokenizer; jieba's words for Chinese)
      -> parent, in chunk order: eval/train draw per document, shard writers flush every
         ``shard_tokens`` tokens; a copy of the tokenizer in ``tokenizer/``; manifest.json last.

Determinism: chunks are cut by the parent and results are consumed in submission order, so the
arrays are byte-identical for any ``workers``. The eval draw is a hash of (seed, document index).

Crash safety: everything is written into a hidden staging directory beside ``out``; only a complete
build (manifest included) is renamed to ``out``. An existing dataset at ``out`` is refused unless
``overwrite=True``, and even then it is only removed after the new one is in place.

Whole-word starts: the tokenizer says which tokens start a word (``tokenizer.word_starts``: not a
``##`` continuation for WordPiece, ``Ġ``/``▁``-marked for BPE/Unigram, first in its sentence); in a
sentence that contains Chinese characters it must also begin at the first character of a jieba word (mapped through
the tokenizer's character offsets), so "卡拉OK" is one word of three tokens and "模型" one of two. The words are
exactly ``jieba.cut``'s, found about 15 times faster by :class:`~bertforge.data.segment.JiebaSegmenter`.

(2025-06) Workers are forked where the OS allows it: a spawned worker would re-import bertforge and
with it torch (seconds and ~300 MB each). The tokenizer's own thread pool is switched off in workers
(TOKENIZERS_PARALLELISM=false), so ``workers`` processes use ``workers`` cores.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import re
import resource
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BertForgeError
from ..fileio import atomic_write_json
from ..tokenization.bulk import BulkEncoder
from .corpus import Corpus, RawDocument, to_sentences
from .dataset import FORMAT_NAME, FORMAT_VERSION, MANIFEST, ShardWriter, read_manifest
from .segment import JiebaSegmenter

logger = logging.getLogger(__name__)

DEFAULT_SHARD_TOKENS = 16_000_000
CHUNK_CHARS = 256_000
SPLITS = ("train", "eval")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_MASK64 = (1 << 64) - 1


# ------------------------------------------------------------------------------------ encoding


class _Encoder:
    """Per-process state: the tokenizer with its piece cache, and the jieba segmenter (lazily)."""

    def __init__(self, tokenizer: Any, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.tokenizer = tokenizer
        self.bulk = BulkEncoder(tokenizer)
        self._segmenter: JiebaSegmenter | None = None

    def encode(self, documents: list[RawDocument]) -> tuple[np.ndarray, ...]:
        """ids [T], word_starts [T], sentence lengths [S], sentences per document [D]; sentences
        that tokenise to nothing are dropped (a document can end up with 0 sentences)."""
        sentences: list[str] = []
        per_document = np.zeros(len(documents), dtype=np.int64)
        for d, document in enumerate(documents):
            split = to_sentences(document)
            sentences.extend(split)
            per_document[d] = len(split)
        han = np.array([_HAN.search(s) is not None for s in sentences], dtype=np.bool_)
        encoded = self.bulk.encode(sentences, char_starts=bool(han.any()))
        ids, lengths = encoded.ids, encoded.lengths
        # The tokenizer knows its family's word marks (## for WordPiece, Ġ for byte-level BPE, ▁ for
        # Unigram); for WordPiece this is exactly "not a ## continuation".
        starts = self.tokenizer.word_starts(ids, lengths)
        han &= lengths > 0
        if han.any():
            self._and_jieba_word_starts(sentences, han, lengths, encoded.char_starts, starts)
        keep = lengths > 0
        document_of = np.repeat(np.arange(len(documents)), per_document)
        counts = np.bincount(document_of[keep], minlength=len(documents)).astype(np.int64)
        return ids.astype(self.dtype), starts, lengths[keep], counts

    def _and_jieba_word_starts(
        self,
        sentences: list[str],
        han: np.ndarray,
        lengths: np.ndarray,
        char_starts: np.ndarray | None,
        starts: np.ndarray,
    ) -> None:
        """In a sentence with Chinese characters a token starts a word only if it also begins at
        the first character of a jieba word (its character offset is one of jieba's word starts)."""
        assert char_starts is not None
        if self._segmenter is None:
            self._segmenter = JiebaSegmenter()
        chosen = np.flatnonzero(han)
        chinese = [sentences[i] for i in chosen.tolist()]
        flags = self._segmenter.word_start_flags(chinese)
        sizes = np.fromiter(map(len, chinese), np.int64, len(chinese)) + 1
        flag_base = np.zeros(len(sentences), dtype=np.int64)
        flag_base[chosen] = np.cumsum(sizes) - sizes
        sentence_of = np.repeat(np.arange(len(sentences)), lengths)
        tokens = han[sentence_of]
        starts[tokens] &= flags[flag_base[sentence_of[tokens]] + char_starts[tokens]]


_WORKER: _Encoder | None = None


def _init_worker(tokenizer: Any, dtype: np.dtype) -> None:
    global _WORKER
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core per worker process
    _WORKER = _Encoder(tokenizer, dtype)


def _encode_in_worker(documents: list[RawDocument]) -> tuple[np.ndarray, ...]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.encode(documents)


def _chunks(documents: Iterable[RawDocument], chunk_chars: int) -> Iterator[list[RawDocument]]:
    chunk: list[RawDocument] = []
    size = 0
    for document in documents:
        chunk.append(document)
        size += sum(len(part) for part in document.parts)
        if size >= chunk_chars:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _encoded_chunks(
    documents: Iterable[RawDocument], tokenizer: Any, dtype: np.dtype, workers: int
) -> Iterator[tuple[np.ndarray, ...]]:
    """Encoded chunks in corpus order; ``workers`` > 1 encodes in that many processes, with at most
    2 * workers + 1 chunks in flight (Pool.imap would read the whole corpus ahead)."""
    chunks = _chunks(documents, CHUNK_CHARS)
    if workers == 1:
        encoder = _Encoder(tokenizer, dtype)
        for chunk in chunks:
            yield encoder.encode(chunk)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    # Set while forking: tells the tokenizers library the children are meant to run single-threaded
    # (otherwise each child warns that parallelism was used before the fork).
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        pool = context.Pool(workers, initializer=_init_worker, initargs=(tokenizer, dtype))
    finally:
        if saved is None:
            del os.environ["TOKENIZERS_PARALLELISM"]
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = saved
    try:
        pending: collections.deque[Any] = collections.deque()
        for chunk in chunks:
            pending.append(pool.apply_async(_encode_in_worker, (chunk,)))
            if len(pending) > 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        pool.close()
        pool.join()  # reaped children count in RUSAGE_CHILDREN
    finally:
        pool.terminate()


# ----------------------------------------------------------------------------------- splitting


def eval_draws(seed: int, indices: np.ndarray) -> np.ndarray:
    """float64 in [0, 1) per document index: splitmix64 of (seed, index), so whether a document is
    held out depends on nothing but the seed and its position in the corpus."""
    base = np.uint64((seed * 0x9E3779B97F4A7C15) & _MASK64)
    z = indices.astype(np.uint64) + base + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


# ---------------------------------------------------------------------------------------- build


@dataclass
class BuildSummary:
    """What a build produced and what it cost."""

    out: Path
    splits: dict[str, dict[str, Any]]
    files: list[tuple[str, str]]
    replaced_bytes: int
    decode_errors: list[tuple[str, int]]
    elapsed_s: float
    peak_rss_mb: float
    peak_rss_children_mb: float
    workers: int
    extra: dict[str, Any] = field(default_factory=dict)

    def _total(self, key: str) -> int:
        return sum(int(split[key]) for split in self.splits.values())

    documents = property(lambda self: self._total("documents"))
    sentences = property(lambda self: self._total("sentences"))
    tokens = property(lambda self: self._total("tokens"))
    shards = property(lambda self: sum(len(split["shards"]) for split in self.splits.values()))

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.elapsed_s, 1e-9)

    def lines(self) -> list[str]:
        """The summary as human-readable lines (the CLI prints them)."""
        out = [f"dataset         {self.out}"]
        formats = collections.Counter(fmt for _, fmt in self.files)
        out.append(f"files           {len(self.files)} ({', '.join(f'{n} {f}' for f, n in formats.items())})")
        for name, split in self.splits.items():
            out.append(
                f"{name:<15} {split['documents']:,} documents, {split['sentences']:,} sentences, "
                f"{split['tokens']:,} tokens, {len(split['shards'])} shards"
            )
        out.append(
            f"replaced bytes  {self.replaced_bytes:,}"
            + (" (undecodable UTF-8 -> U+FFFD)" if self.replaced_bytes else "")
        )
        for path, offset in self.decode_errors[:5]:
            out.append(f"  {path}: byte {offset}")
        out.append(
            f"elapsed         {self.elapsed_s:.1f}s, {self.tokens_per_s:,.0f} tokens/s with {self.workers} workers"
        )
        out.append(
            f"peak RSS        {self.peak_rss_mb:,.0f} MB (parent), {self.peak_rss_children_mb:,.0f} MB (largest worker)"
        )
        return out


def _peak_rss_mb(who: int) -> float:
    kilobytes = resource.getrusage(who).ru_maxrss
    return kilobytes / (1 << 20) if sys.platform == "darwin" else kilobytes / 1024  # macOS says bytes


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise BertForgeError(f"--out {out} is a file; choose a directory path for the dataset")
    if (out / MANIFEST).is_file():
        if not overwrite:
            raise BertForgeError(
                f"{out} already holds a dataset; pass --overwrite (overwrite=True) to replace it (the old "
                "one stays until the new build is complete) or choose another --out"
            )
        read_manifest(out)  # only ever replace something that really is a dataset
    elif any(out.iterdir()):
        raise BertForgeError(
            f"{out} exists, is not empty and is not a bertforge dataset; choose a new or empty --out directory"
        )


def build_dataset(
    corpus: str | Path | Iterable[str | Path],
    tokenizer: Any,
    out: str | Path,
    *,
    workers: int = 1,
    seed: int = 0,
    eval_fraction: float = 0.01,
    format: str = "auto",
    errors: str = "replace",
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
    overwrite: bool = False,
    progress: bool | Callable[[int], None] = False,
) -> BuildSummary:
    """Tokenise ``corpus`` (files, directories, globs) with ``tokenizer`` into a dataset at ``out``.

    ``progress=True`` shows a tqdm bar on stderr; a callable receives the token count of each chunk.
    See the module docstring for the pipeline and its guarantees.
    """
    start = time.perf_counter()
    out = Path(out)
    if workers < 1:
        raise BertForgeError(f"workers must be at least 1, got {workers}")
    if not 0.0 <= eval_fraction < 1.0:
        raise BertForgeError(f"eval_fraction must be in [0, 1), got {eval_fraction}; 0.01 holds out 1%")
    if shard_tokens < 1:
        raise BertForgeError(f"shard_tokens must be positive, got {shard_tokens}")
    _check_out(out, overwrite)
    source = Corpus(corpus, format=format, errors=errors)
    vocab_size = int(tokenizer.vocab_size)
    dtype = np.dtype(np.uint32 if max(vocab_size, len(tokenizer)) > 65535 else np.uint16)

    staging = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        writers = {name: ShardWriter(staging, name, shard_tokens, dtype) for name in SPLITS}
        report = _Progress(progress)
        next_document = 0
        for ids, starts, lengths, counts in _encoded_chunks(
            source.raw_documents(), tokenizer, dtype, workers
        ):
            report(len(ids))
            present = counts > 0  # documents left with no tokens are dropped here
            counts = counts[present]
            held_out = eval_draws(seed, np.arange(next_document, next_document + counts.size)) < eval_fraction
            next_document += counts.size
            sentence_held = np.repeat(held_out, counts)
            token_held = np.repeat(sentence_held, lengths)
            for name, mask_doc, mask_sent, mask_tok in (
                ("train", ~held_out, ~sentence_held, ~token_held),
                ("eval", held_out, sentence_held, token_held),
            ):
                if mask_doc.any():
                    writers[name].add(ids[mask_tok], starts[mask_tok], lengths[mask_sent], counts[mask_doc])
        report.close()
        _hold_out_at_least_one(writers, next_document, eval_fraction)
        for writer in writers.values():
            writer.flush()
        if not writers["train"].shards:
            raise BertForgeError(
                f"all {next_document} documents went to the eval split; lower eval_fraction "
                f"(now {eval_fraction}) or add text"
            )
        splits = {name: writer.totals() for name, writer in writers.items()}
        summary = BuildSummary(
            out=out,
            splits=splits,
            files=source.stats.files,
            replaced_bytes=source.stats.replaced_bytes,
            decode_errors=source.stats.decode_errors,
            elapsed_s=time.perf_counter() - start,
            peak_rss_mb=_peak_rss_mb(resource.RUSAGE_SELF),
            peak_rss_children_mb=_peak_rss_mb(resource.RUSAGE_CHILDREN),
            workers=workers,
        )
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "tokenizer_fingerprint": tokenizer.fingerprint(),
            "vocab_size": vocab_size,
            "do_lower_case": bool(tokenizer.do_lower_case),
            "dtype": dtype.name,
            "seed": seed,
            "eval_fraction": eval_fraction,
            "splits": splits,
            "sources": [{"path": path, "format": fmt} for path, fmt in source.stats.files],
            "decode_errors": source.stats.replaced_bytes,
            "decode_error_offsets": [{"path": p, "byte": o} for p, o in source.stats.decode_errors],
            "special_token_ids": {
                "pad": tokenizer.pad_token_id,
                "unk": tokenizer.unk_token_id,
                "cls": tokenizer.cls_token_id,
                "sep": tokenizer.sep_token_id,
                "mask": tokenizer.mask_token_id,
            },
            "shard_tokens": shard_tokens,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "build": {"workers": workers, "elapsed_s": round(summary.elapsed_s, 3)},
        }
        # A copy of the vocabulary travels with the data, so training needs only the dataset path.
        tokenizer.save_pretrained(staging / "tokenizer")
        atomic_write_json(staging / MANIFEST, manifest)
        _swap_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary


def _hold_out_at_least_one(writers: dict[str, ShardWriter], documents: int, eval_fraction: float) -> None:
    """With eval_fraction > 0 and at least 2 documents, the eval split gets at least one: the last."""
    if eval_fraction > 0 and documents >= 2 and not writers["eval"].counts and not writers["eval"].shards:
        document = writers["train"].pop_last_document()
        assert document is not None, "the last train document is always still buffered"
        writers["eval"].add(*document)


def _swap_into_place(staging: Path, out: Path) -> None:
    if not out.exists():
        os.replace(staging, out)
        return
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


class _Progress:
    """Token counts of finished chunks to a tqdm bar on stderr, to a callable, or nowhere."""

    def __init__(self, progress: bool | Callable[[int], None]) -> None:
        self.callback = progress if callable(progress) else None
        self.bar: Any = None
        if progress is True:
            from tqdm.auto import tqdm  # type: ignore[import-untyped]

            self.bar = tqdm(unit="tok", unit_scale=True, file=sys.stderr, desc="tokenising", smoothing=0.1)

    def __call__(self, tokens: int) -> None:
        if self.callback is not None:
            self.callback(tokens)
        if self.bar is not None:
            self.bar.update(tokens)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
