"""The lookup tables some masking strategies need: MacBERT's similar words, ERNIE's entity
lexicon, and the vocabulary's punctuation / CJK classes.

Built once per run from the tokenizer (and a checkpoint or files), then shared by every phase.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BertForgeError
from ..fileio import read_text_file

log = logging.getLogger(__name__)


@dataclass
class MaskingTables:
    """Vocabulary-dependent data some strategies need, built once per run (:func:`build_masking_tables`).

    ``similar``: word (tuple of token ids) -> int64 [k, n] similar words of the same token length n
    (``correction``). ``entities``: first token id -> the lexicon's entities (tuples of token ids)
    starting with it, longest first (``entity``). ``punctuation`` / ``cjk``: bool [V] per token id,
    (``phrase``: punctuation separates English chunks, a Chinese word is a phrase by itself).
    """

    similar: dict[tuple[int, ...], np.ndarray] | None = None
    entities: dict[int, list[tuple[int, ...]]] | None = None
    punctuation: np.ndarray | None = None
    cjk: np.ndarray | None = None


def _encode_words(tokenizer: Any, words: list[str]) -> list[tuple[int, ...]]:
    if not words:
        return []
    encoded = tokenizer(words, add_special_tokens=False)["input_ids"]
    return [tuple(int(i) for i in ids) for ids in encoded]


def load_similar_words(path: str | Path, tokenizer: Any) -> dict[tuple[int, ...], np.ndarray]:
    """MacBERT's similar-word table from a file: lines ``word<TAB>sim1 sim2 ...`` (the similar words
    separated by spaces or tabs) or a JSON object ``{word: [sim, ...]}``. Words are tokenised with
    ``tokenizer``; only similar words with as many tokens as the word are kept (a replacement must
    fill the same positions), so a word may end up with none."""
    hint = "pass --data.similar_words a word<TAB>similar words file, or drop it to use similar_from"
    text = read_text_file(path, "similar-word file", hint)
    pairs: list[tuple[str, list[str]]] = []
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise BertForgeError(f"similar-word file {path} is not valid JSON: {err}") from None
        for word, similar in data.items():
            if not isinstance(similar, list) or not all(isinstance(w, str) for w in similar):
                raise BertForgeError(f"{path}: the similar words of {word!r} must be a list of strings")
            pairs.append((word, similar))
    else:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            word, tab, rest = line.partition("\t")
            if not tab:
                raise BertForgeError(f"{path}:{number}: expected `word<TAB>similar words`, got {line!r}")
            pairs.append((word.strip(), rest.split()))
    words = _encode_words(tokenizer, [w for w, _ in pairs])
    similar_ids = _encode_words(tokenizer, [s for _, sims in pairs for s in sims])
    table: dict[tuple[int, ...], np.ndarray] = {}
    k = 0
    for word_ids, (_, sims) in zip(words, pairs, strict=True):
        options = [s for s in similar_ids[k : k + len(sims)] if len(s) == len(word_ids) and s != word_ids]
        k += len(sims)
        if word_ids and options:
            previous = table.get(word_ids)
            rows = np.array(options, dtype=np.int64)
            table[word_ids] = rows if previous is None else np.concatenate([previous, rows])
    return table


def similar_words_from_embeddings(
    embeddings: Any, words: Iterable[tuple[int, ...]], top_k: int = 10, chunk: int = 1024
) -> dict[tuple[int, ...], np.ndarray]:
    """Nearest neighbours by cosine similarity: a word's vector is the mean of its tokens' input
    embeddings (``embeddings`` [V, H]); each word gets the ``top_k`` most similar *other* words of
    the same token length among ``words``."""
    import torch

    matrix = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    by_length: dict[int, list[tuple[int, ...]]] = {}
    for word in dict.fromkeys(words):
        if word:
            by_length.setdefault(len(word), []).append(word)
    table: dict[tuple[int, ...], np.ndarray] = {}
    for group in by_length.values():
        if len(group) < 2:
            continue
        ids = torch.tensor(group, dtype=torch.long)  # [N, n]
        vectors = torch.nn.functional.normalize(matrix[ids].mean(1), dim=-1)  # [N, H]
        k = min(top_k, len(group) - 1)
        rows = np.asarray(group, dtype=np.int64)
        for lo in range(0, len(group), chunk):
            scores = vectors[lo : lo + chunk] @ vectors.T  # [c, N]
            scores[torch.arange(scores.shape[0]), torch.arange(lo, lo + scores.shape[0])] = -float("inf")
            best = scores.topk(k, dim=1).indices.numpy()
            for r, neighbours in enumerate(best):
                table[group[lo + r]] = rows[neighbours]
    return table


def dataset_words(
    dataset: Any, max_tokens: int = 2_000_000, max_words: int = 50_000
) -> list[tuple[int, ...]]:
    """The most frequent multi-token words (2-4 tokens) in the first ``max_tokens`` tokens of a
    dataset (its whole-word flags): the word inventory a checkpoint's embeddings cannot list."""
    import collections

    counts: collections.Counter[tuple[int, ...]] = collections.Counter()
    seen = 0
    for ids, starts in zip(dataset.shard_arrays("ids"), dataset.shard_arrays("word_starts"), strict=True):
        ids = np.asarray(ids[: max_tokens - seen], dtype=np.int64)
        starts = np.asarray(starts[: len(ids)], dtype=np.bool_)
        first = np.flatnonzero(starts)
        lengths = np.diff(np.append(first, len(ids)))
        values = ids.tolist()
        for a, n in zip(first.tolist(), lengths.tolist(), strict=True):
            if 2 <= n <= 4:
                counts[tuple(values[a : a + n])] += 1
        seen += len(ids)
        if seen >= max_tokens:
            break
    return [word for word, _ in counts.most_common(max_words)]


def load_entity_lexicon(path: str | Path, tokenizer: Any) -> dict[int, list[tuple[int, ...]]]:
    """ERNIE's entity lexicon: one entity per line (blank lines and ``#`` comments skipped),
    tokenised with ``tokenizer``; indexed by first token id, longest entity first."""
    text = read_text_file(path, "entity lexicon", "pass --data.entity_lexicon a file of one entity per line")
    lines = text.splitlines()
    names = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    index: dict[int, list[tuple[int, ...]]] = {}
    for entity in dict.fromkeys(_encode_words(tokenizer, names)):
        if entity:
            index.setdefault(entity[0], []).append(entity)
    for options in index.values():
        options.sort(key=len, reverse=True)
    return index


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")


def vocabulary_classes(tokenizer: Any) -> tuple[np.ndarray, np.ndarray]:
    """(punctuation, cjk) bool [V]: tokens made of punctuation only, and tokens holding a Han character."""
    vocab = tokenizer.get_vocab()
    size = max(len(tokenizer), max(vocab.values()) + 1)
    punctuation = np.zeros(size, dtype=np.bool_)
    cjk = np.zeros(size, dtype=np.bool_)
    for token, i in vocab.items():
        text = token
        for prefix in ("##", "\u0120", "\u2581"):  # WordPiece continuation, byte-level BPE and Unigram spaces
            if token.startswith(prefix) and len(token) > len(prefix):
                text = token[len(prefix) :]
        if text and all(
            unicodedata.category(c).startswith("P") or (c.isascii() and not c.isalnum()) for c in text
        ):
            punctuation[i] = True
        if _HAN.search(text):
            cjk[i] = True
    return punctuation, cjk


_TABLES: dict[tuple[Any, ...], MaskingTables] = {}


def build_masking_tables(
    tokenizer: Any,
    *,
    strategies: Iterable[str] = (),
    correction: bool = False,
    similar_words: str | Path | None = None,
    similar_from: str | Path | None = None,
    similar_top_k: int = 10,
    entity_lexicon: str | Path | None = None,
    dataset: Any = None,
) -> MaskingTables | None:
    """The tables the given strategies need (None when none do), computed once per process and
    arguments: the similar-word table for ``correction`` (from ``similar_words``, else nearest
    neighbours in ``similar_from``'s input embeddings over the vocabulary's whole-word tokens and
    the frequent multi-token words of ``dataset``), the entity lexicon, the punctuation/CJK classes."""
    strategies = tuple(sorted(set(strategies)))
    key = (
        getattr(tokenizer, "fingerprint", lambda: id(tokenizer))(),
        strategies, correction, str(similar_words), str(similar_from), similar_top_k, str(entity_lexicon),
        str(getattr(dataset, "path", id(dataset))),
    )  # fmt: skip
    if key in _TABLES:
        return _TABLES[key]
    tables = MaskingTables()
    needed = False
    if correction:
        needed = True
        if similar_words is not None:
            tables.similar = load_similar_words(similar_words, tokenizer)
            source = f"file {similar_words}"
        elif similar_from is not None:
            tables.similar = _similar_from_checkpoint(tokenizer, similar_from, similar_top_k, dataset)
            source = f"the input embeddings of {similar_from}"
        else:
            raise BertForgeError(
                "correction (MacBERT) needs similar words: set data.similar_words FILE or "
                "data.similar_from CHECKPOINT"
            )
        log.info("MacBERT similar words for %d words, from %s", len(tables.similar), source)
    if "entity" in strategies:
        needed = True
        if entity_lexicon is None:
            raise BertForgeError(
                "entity masking needs a lexicon: set data.entity_lexicon FILE (one entity a line)"
            )
        tables.entities = load_entity_lexicon(entity_lexicon, tokenizer)
        log.info("entity lexicon %s: %d entities", entity_lexicon, sum(map(len, tables.entities.values())))
    if "phrase" in strategies:
        needed = True
        tables.punctuation, tables.cjk = vocabulary_classes(tokenizer)
    result = tables if needed else None
    _TABLES[key] = result  # type: ignore[assignment]
    return result


def _similar_from_checkpoint(
    tokenizer: Any, checkpoint: str | Path, top_k: int, dataset: Any
) -> dict[tuple[int, ...], np.ndarray]:
    from ..auto import AutoModel

    model = AutoModel.from_pretrained(checkpoint)
    weight = model.get_submodule("embeddings.word_embeddings").weight.detach().float().numpy()
    if weight.shape[0] != len(tokenizer):
        raise BertForgeError(
            f"data.similar_from {checkpoint} has {weight.shape[0]} word embeddings, the tokenizer "
            f"{len(tokenizer)} tokens; use a checkpoint with this vocabulary"
        )
    special = set(tokenizer.all_special_ids)
    words: list[tuple[int, ...]]
    if hasattr(tokenizer, "word_start_table"):  # which tokens begin a word (no ##, or a Ġ/▁ one)
        starts = tokenizer.word_start_table()
        words = [(i,) for i in np.flatnonzero(starts).tolist() if i not in special]
    else:
        words = [
            (i,) for t, i in tokenizer.get_vocab().items() if i not in special and not t.startswith("##")
        ]
    if dataset is not None:
        words += dataset_words(dataset)
    return similar_words_from_embeddings(weight, words, top_k)
