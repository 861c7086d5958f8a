"""Learning a WordPiece vocabulary from raw text (English, Chinese, anything UTF-8).

The vocabulary is learned with the Rust ``tokenizers`` trainer, behind exactly the normaliser and
pre-tokeniser that :class:`~bertforge.tokenizer.BertTokenizer` applies at encoding time, so what
is learned is what gets used. CJK characters are split apart by the normaliser (as in Google's
BERT), so each becomes its own token. Special tokens get ids 0..4: ``[PAD] [UNK] [CLS] [SEP] [MASK]``.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import WordPiece

from .errors import BertForgeError
from .tokenizer import TRAIN_SPECIAL_TOKENS, BertTokenizer

logger = logging.getLogger(__name__)


def corpus_lines(paths: list[Path]) -> Iterator[str]:
    """Lines of UTF-8 text files, ``.gz`` read compressed."""
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            yield from handle


def train_wordpiece_from_files(
    files: str | Path | Iterable[str | Path],
    vocab_size: int = 30522,
    **options: object,
) -> BertTokenizer:
    """:func:`train_wordpiece` over the lines of ``files`` (checked to exist first)."""
    paths = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    if not paths:
        raise BertForgeError("no training files given; pass a text file or a list of them")
    for path in paths:
        if not path.is_file():
            raise BertForgeError(f"training file {path} not found; pass existing UTF-8 text files")
    return train_wordpiece(corpus_lines(paths), vocab_size, **options)  # type: ignore[arg-type]


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
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=show_progress,
        special_tokens=list(TRAIN_SPECIAL_TOKENS),
        limit_alphabet=limit_alphabet,
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
