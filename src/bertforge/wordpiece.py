"""Learning a WordPiece vocabulary from raw text (English, Chinese, anything UTF-8).

The vocabulary is learned with the Rust ``tokenizers`` trainer, behind exactly the normaliser and
pre-tokeniser that :class:`~bertforge.tokenizer.BertTokenizer` applies at encoding time, so what
is learned is what gets used. CJK characters are split apart by the normaliser (as in Google's
BERT), so each becomes its own token. Special tokens get ids 0..4: ``[PAD] [UNK] [CLS] [SEP] [MASK]``.

Determinism (2026-11, tokenizers 0.23): the upstream trainer numbers ``##x`` continuation pieces in
hash-map order and breaks ties in the alphabet cut by an unstable sort, so the same corpus gave a
different vocabulary on every run (huggingface/tokenizers#1794). A first pass here counts the
characters, picks the alphabet with a stable tie-break, and hands the trainer the alphabet and the
``##x`` pieces up front, in a fixed order; the same corpus and options now give the same vocab.txt.
"""

from __future__ import annotations

import logging
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import WordPiece

from .errors import BertForgeError
from .tokenization.training_files import training_files, training_lines
from .tokenization.wordpiece import TRAIN_SPECIAL_TOKENS, BertTokenizer

logger = logging.getLogger(__name__)


def _alphabet(texts: Iterable[str], normalizer: normalizers.Normalizer, limit: int) -> list[str]:
    """The ``limit`` most frequent non-space characters after normalisation; ties broken by code point."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(normalizer.normalize_str(text))
    ranked = sorted((c for c in counts if not c.isspace()), key=lambda c: (-counts[c], c))
    return sorted(ranked[:limit])


def _stands_alone(char: str, split_cjk: bool) -> bool:
    """True for characters BERT always makes a word of their own: punctuation, and CJK when split."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True  # BERT counts all non-alphanumeric ASCII as punctuation
    if unicodedata.category(char).startswith("P"):
        return True
    return split_cjk and _is_cjk(code)


def _is_cjk(code: int) -> bool:
    # The CJK Unified Ideograph blocks BERT's basic tokenizer splits (not Hangul or kana).
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


class _Reiterable:
    """The lines of some files, readable more than once without holding them in memory."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __iter__(self) -> Iterator[str]:
        return training_lines(self.paths)


def train_wordpiece_from_files(
    files: str | Path | Iterable[str | Path],
    vocab_size: int = 30522,
    **options: object,
) -> BertTokenizer:
    """:func:`train_wordpiece` over the lines of ``files`` (checked to exist first; read twice)."""
    return train_wordpiece(_Reiterable(training_files(files)), vocab_size, **options)  # type: ignore[arg-type]


def train_wordpiece(
    texts: Iterable[str],
    vocab_size: int = 30522,
    *,
    min_frequency: int = 2,
    lowercase: bool = True,
    strip_accents: bool | None = None,
    tokenize_chinese_chars: bool = True,
    limit_alphabet: int = 1000,
    show_progress: bool = False,
    save_to: str | Path | None = None,
) -> BertTokenizer:
    """Learn a vocabulary of at most ``vocab_size`` tokens from ``texts`` (lines or documents).

    ``min_frequency``: a merge must occur this often to enter the vocabulary. ``lowercase`` and
    ``strip_accents`` (None = follow lowercase) give an uncased or cased model.
    ``limit_alphabet`` caps the single characters kept (rare CJK characters beyond it map to [UNK]).
    ``save_to``: also write the tokenizer files (vocab.txt, tokenizer.json, ...) there.
    """
    if isinstance(texts, str):
        raise BertForgeError("texts must be an iterable of strings, not one str; wrap it in a list")
    if not isinstance(vocab_size, int) or vocab_size <= len(TRAIN_SPECIAL_TOKENS):
        raise BertForgeError(
            f"vocab_size={vocab_size!r} is too small: it must exceed the {len(TRAIN_SPECIAL_TOKENS)} "
            "special tokens (BERT uses 30522)"
        )
    backend = Tokenizer(WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=tokenize_chinese_chars,
        strip_accents=strip_accents,
        lowercase=lowercase,
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    if not isinstance(texts, (list, tuple, _Reiterable)):
        texts = list(texts)  # read twice: once to count characters, once to train
    alphabet = _alphabet(texts, backend.normalizer, limit_alphabet)
    continuations = [f"##{c}" for c in alphabet if not _stands_alone(c, tokenize_chinese_chars)]
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=show_progress,
        # The ## pieces ride along as "special" tokens only to fix their ids; the tokenizer built
        # below treats them as ordinary vocabulary.
        special_tokens=[*TRAIN_SPECIAL_TOKENS, *continuations],
        initial_alphabet=alphabet,
        limit_alphabet=len(alphabet),
        continuing_subword_prefix="##",
    )
    backend.train_from_iterator(texts, trainer=trainer)
    vocab = backend.get_vocab(with_added_tokens=True)
    if len(vocab) <= len(TRAIN_SPECIAL_TOKENS):
        raise BertForgeError(
            "the training corpus contains no text (or only whitespace), so no vocabulary was learned; "
            "pass non-empty UTF-8 text"
        )
    tokenizer = BertTokenizer(
        vocab,
        do_lower_case=lowercase,
        strip_accents=strip_accents,
        tokenize_chinese_chars=tokenize_chinese_chars,
    )
    logger.info("trained a WordPiece vocabulary of %d tokens", len(vocab))
    if save_to is not None:
        tokenizer.save_pretrained(save_to)
    return tokenizer
