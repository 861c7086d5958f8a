"""BERT's WordPiece tokenizer on the Rust ``tokenizers`` library, with transformers' API.

:class:`BertTokenizer` builds exactly the pipeline Google's BERT uses (BertNormalizer, BertPreTokenizer,
WordPiece with ``##`` continuations, ``[CLS] A [SEP] B [SEP]``) and mirrors the method names and
padding/truncation semantics of ``transformers.BertTokenizer``, so code written for transformers runs
unchanged and yields identical ids. Batches always go through ``Tokenizer.encode_batch``, which runs
in parallel in Rust; Python only touches whole sequences, never single tokens.

Vocabularies trained here (:meth:`BertTokenizer.train`) put the special tokens first, at ids 0..4, in
the order ``[PAD] [UNK] [CLS] [SEP] [MASK]``. Google's released vocabularies instead start with
``[PAD]`` and ``[unused*]`` slots (``[UNK]`` is 100 there); both layouts load and save unchanged.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from ..errors import BertForgeError
from ..fileio import atomic_write_text
from .base import FastTokenizer
from .config_files import TOKENIZER_FILE, read_json

logger = logging.getLogger(__name__)

VOCAB_FILE = "vocab.txt"
# Same order as transformers' all_special_tokens, so all_special_ids lines up with theirs.
SPECIAL_TOKEN_KEYS = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# BERT's conventional order; train() assigns these ids 0..4.
TRAIN_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# The characters BertNormalizer(handle_chinese_chars=True) pads with spaces, exactly: BERT's CJK
# ranges as the tokenizers library has them (its fourth extension range starts at 0x2B920, not 0x2B820).
_PADDED_CJK = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002b81f"
    "\U0002b920-\U0002ceaf\U0002f800-\U0002fa1f"
)
# Punctuation that BertPreTokenizer always splits off and the normaliser leaves as it is: ASCII's,
# curly quotes and the em dash (the common ones in books).
_CUT_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u2018\u2019\u201c\u201d\u2014"
_CONFIG_KEYS = (
    "do_lower_case",
    "strip_accents",
    "tokenize_chinese_chars",
)


def load_vocab(path: str | Path) -> dict[str, int]:
    """Read a vocab.txt exactly like transformers: id = line number, a repeated token keeps its last id."""
    path = Path(path)
    if not path.is_file():
        raise BertForgeError(
            f"vocabulary file {path} not found; pass a directory containing vocab.txt or tokenizer.json"
        )
    # readlines() (not splitlines()) so that \x0b, \x1c, U+2028 ... inside tokens stay tokens, as in HF.
    try:
        with open(path, encoding="utf-8") as handle:
            vocab = {line.rstrip("\n"): index for index, line in enumerate(handle.readlines())}
    except UnicodeDecodeError as err:
        raise BertForgeError(
            f"vocabulary file {path} is not UTF-8 text ({err.reason}); pass the vocab.txt saved with "
            "the model (UTF-8, one token per line)"
        ) from None
    if not vocab:
        raise BertForgeError(f"vocabulary file {path} is empty; pass a vocab.txt with one token per line")
    return vocab


def _read_tokenizer_json(path: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """The WordPiece vocabulary and normaliser flags stored in a tokenizers ``tokenizer.json``."""
    data = read_json(path)
    model = data.get("model") or {}
    if model.get("type", "WordPiece") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise BertForgeError(
            f"{path} holds a {model.get('type', 'unknown')} model, not a WordPiece vocabulary; "
            "bertforge only loads BERT WordPiece tokenizers (pass a directory with vocab.txt instead)"
        )
    settings: dict[str, Any] = {"unk_token": model.get("unk_token", "[UNK]")}
    norm = data.get("normalizer") or {}
    for item in norm.get("normalizers", [norm]) if norm.get("type") == "Sequence" else [norm]:
        if item.get("type") == "BertNormalizer":
            settings["do_lower_case"] = item.get("lowercase", True)
            settings["strip_accents"] = item.get("strip_accents")
            settings["tokenize_chinese_chars"] = item.get("handle_chinese_chars", True)
    return model["vocab"], settings


class BertTokenizer(FastTokenizer):
    """BERT WordPiece tokenizer with transformers' API (``__call__``, ``encode``, ``decode``, ...).

    ``vocab`` is a token -> id dict or a path to vocab.txt. ``strip_accents=None`` follows
    ``do_lower_case``, as in BERT. Padding and truncation are applied per call and never persist.
    """

    tokenizer_class: ClassVar[str] = "BertTokenizer"
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    special_token_keys: ClassVar[tuple[str, ...]] = SPECIAL_TOKEN_KEYS
    config_keys: ClassVar[tuple[str, ...]] = _CONFIG_KEYS

    def __init__(
        self,
        vocab: dict[str, int] | str | Path,
        *,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = True,
        model_input_names: list[str] | None = None,
    ) -> None:
        self._vocab = dict(vocab) if isinstance(vocab, dict) else load_vocab(vocab)
        if not self._vocab:
            raise BertForgeError("the vocabulary is empty; pass a vocab.txt with one token per line")
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        specials = {
            "unk_token": unk_token,
            "sep_token": sep_token,
            "pad_token": pad_token,
            "cls_token": cls_token,
            "mask_token": mask_token,
        }
        self._setup(
            specials,
            model_max_length=model_max_length,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            model_input_names=model_input_names,
        )

    def _build_backend(self) -> Tokenizer:
        backend = Tokenizer(WordPiece(self._vocab, unk_token=self.unk_token, max_input_chars_per_word=100))
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=self.tokenize_chinese_chars,
            strip_accents=self.strip_accents,
            lowercase=self.do_lower_case,
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece(prefix="##")
        cls, sep = self.cls_token, self.sep_token
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0",
            pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, self._vocab[cls]), (sep, self._vocab[sep])],
        )
        return backend

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
            f"strip_accents={self.strip_accents}, tokenize_chinese_chars={self.tokenize_chinese_chars}, "
            f"model_max_length={self.model_max_length})"
        )

    def _is_word_start_token(self, token: str) -> bool:
        return not token.startswith("##")

    def piece_pattern(self) -> re.Pattern[str]:
        # BertNormalizer turns spaces into word breaks and pads every CJK character with spaces, and
        # BertPreTokenizer isolates every punctuation character; the rest of the pipeline (NFD,
        # lowercasing, cleaning, WordPiece) works within a word. So runs of spaces, single CJK
        # characters, single punctuation marks and runs of anything else are encoded independently.
        # Punctuation that occurs in a special token ("[", "]") is not cut: "[MASK]" stays whole.
        special = set("".join(self.all_special_tokens))
        punctuation = re.escape("".join(c for c in _CUT_PUNCTUATION if c not in special))
        if self.tokenize_chinese_chars:
            return re.compile(f"[{_PADDED_CJK}]| +|[{punctuation}]|[^ {punctuation}{_PADDED_CJK}]+")
        return re.compile(f" +|[{punctuation}]|[^ {punctuation}]+")

    # ----------------------------------------------------------------------------------- loading, saving

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], **overrides: Any) -> Any:
        """Load from a directory (vocab.txt or tokenizer.json, plus tokenizer_config.json) or a vocab.txt.

        Keyword arguments override what the directory's config says, as in transformers.
        """
        return super().from_pretrained(path, **overrides)

    @classmethod
    def _from_file(cls, path: Path, overrides: dict[str, Any]) -> BertTokenizer:
        if path.suffix == ".json":
            vocab, settings = _read_tokenizer_json(path)
            return cls(vocab, **{**settings, **overrides})
        return cls(path, **overrides)

    @classmethod
    def _from_directory(cls, path: Path, settings: dict[str, Any]) -> BertTokenizer:
        if (path / VOCAB_FILE).is_file():
            return cls(path / VOCAB_FILE, **settings)
        if (path / TOKENIZER_FILE).is_file():
            vocab, from_json = _read_tokenizer_json(path / TOKENIZER_FILE)
            return cls(vocab, **{**from_json, **settings})
        found = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "nothing"
        raise BertForgeError(
            f"no {VOCAB_FILE} or {TOKENIZER_FILE} in {path} (found: {found}); pass a directory written "
            "by save_pretrained or a Hugging Face BERT model directory"
        )

    def save_pretrained(self, save_directory: str | Path) -> list[Path]:
        """Write vocab.txt, tokenizer_config.json, special_tokens_map.json and tokenizer.json.

        transformers' ``BertTokenizer``/``AutoTokenizer.from_pretrained`` load the result with equal ids.
        """
        return super().save_pretrained(save_directory)

    def _save_vocabulary(self, directory: Path) -> list[Path]:
        # Duplicate lines in a loaded vocab.txt leave ids without a token; writing the highest-id token
        # there keeps every id, because a repeated token ends up with its last (highest) line number.
        by_id = {index: token for token, index in self._vocab.items()}
        top = by_id[max(by_id)]
        lines = [by_id.get(index, top) for index in range(max(by_id) + 1)]
        atomic_write_text(directory / VOCAB_FILE, "".join(f"{line}\n" for line in lines))
        return [directory / VOCAB_FILE]

    def _family_config(self) -> dict[str, Any]:
        return {
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "do_basic_tokenize": True,
            "never_split": None,
        }

    def _fingerprint_settings(self) -> dict[str, Any]:
        return {
            "do_lower_case": self.do_lower_case,
            # None means "follow lowercase"; hash the effective value so equivalent configs agree.
            "strip_accents": self.do_lower_case if self.strip_accents is None else self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
        }

    # ------------------------------------------------------------------------------------------ training

    @classmethod
    def train(
        cls,
        files: str | Path | Iterable[str | Path],
        vocab_size: int = 30522,
        **options: Any,
    ) -> BertTokenizer:
        """Learn a WordPiece vocabulary from UTF-8 text files; see :func:`bertforge.wordpiece.train_wordpiece`
        for the options (min_frequency, lowercase, strip_accents, tokenize_chinese_chars,
        limit_alphabet, show_progress, save_to)."""
        from ..wordpiece import train_wordpiece_from_files

        return train_wordpiece_from_files(files, vocab_size, **options)

    @classmethod
    def train_from_iterator(
        cls, texts: Iterable[str], vocab_size: int = 30522, **options: Any
    ) -> BertTokenizer:
        """Like :meth:`train`, from an iterable of strings (lines or documents) instead of files."""
        from ..wordpiece import train_wordpiece

        return train_wordpiece(texts, vocab_size, **options)


class DistilBertTokenizer(BertTokenizer):
    """DistilBERT's tokenizer: BERT's WordPiece, but DistilBERT has no segment embeddings, so
    ``__call__`` leaves out ``token_type_ids`` unless asked (transformers' DistilBertTokenizer)."""

    tokenizer_class: ClassVar[str] = "DistilBertTokenizer"
    model_input_names = ["input_ids", "attention_mask"]
