"""The family-independent half of every bertforge tokenizer: :class:`FastTokenizer`.

A family (WordPiece for BERT/DistilBERT, byte-level BPE for RoBERTa, Unigram for ALBERT) only says
how its ``tokenizers.Tokenizer`` is built, which files hold its vocabulary and which tokens start a
word. Everything a caller sees (``__call__`` with transformers' padding/truncation semantics,
``BatchEncoding``, decoding, special-token ids, saving tokenizer_config.json/special_tokens_map.json/
tokenizer.json, the fingerprint) lives here once, so the families cannot drift apart.

Batches always go through ``Tokenizer.encode_batch``, which runs in parallel in Rust; Python only
touches whole sequences, never single tokens.

The names of the files beside the vocabulary and their readers live in :mod:`.config_files`, the
checks of a call's arguments (texts, pairs, words, padding and truncation) in
:mod:`.call_arguments`; this module re-exports their public names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tokenizers import AddedToken, Encoding, Tokenizer

from ..encoding import BatchEncoding, as_array
from ..errors import BertForgeError
from ..fileio import atomic_write_json, atomic_write_text
from .call_arguments import LARGE_INTEGER, resolve_padding_truncation, text_inputs, word_inputs
from .config_files import (
    ALL_SPECIAL_TOKEN_KEYS,
    SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
    added_tokens_decoder,
    read_json,
    read_settings,
)

# Re-exported: callers imported these from here before config_files.py and call_arguments.py held them.
__all__ = [
    "ALL_SPECIAL_TOKEN_KEYS",
    "LARGE_INTEGER",
    "SPECIAL_TOKENS_MAP_FILE",
    "TOKENIZER_CONFIG_FILE",
    "TOKENIZER_FILE",
    "FastTokenizer",
    "added_tokens_decoder",
    "read_json",
    "read_settings",
]

logger = logging.getLogger(__name__)


def _clean_up_tokenization(text: str) -> str:
    """transformers' clean_up_tokenization: re-attach punctuation and English contractions."""
    for dirty, clean in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't")):
        text = text.replace(dirty, clean)
    for suffix in ("m", "s", "ve", "re"):
        text = text.replace(f" '{suffix}", f"'{suffix}")
    return text


def _to_id_list(ids: Any) -> Any:
    ids = ids.tolist() if hasattr(ids, "tolist") else ids
    return [ids] if isinstance(ids, int) else ids


class FastTokenizer:
    """A ``tokenizers.Tokenizer`` with transformers' API (``__call__``, ``encode``, ``decode``, ...).

    Subclasses set ``self._vocab`` (token -> id, specials included) before calling
    :meth:`_setup`, and implement :meth:`_build_backend`, :meth:`_save_vocabulary`,
    :meth:`_family_config` and :meth:`_is_word_start_token`. Padding and truncation are applied per
    call and never persist.
    """

    #: transformers' class name, written to tokenizer_config.json so AutoTokenizer picks the same family.
    tokenizer_class: ClassVar[str] = "PreTrainedTokenizerFast"
    #: What ``__call__`` returns by default (transformers' ``model_input_names``).
    model_input_names: list[str] = ["input_ids", "token_type_ids", "attention_mask"]
    #: The special-token attributes this family has, in transformers' all_special_tokens order.
    special_token_keys: ClassVar[tuple[str, ...]] = (
        "unk_token",
        "sep_token",
        "pad_token",
        "cls_token",
        "mask_token",
    )
    #: tokenizer_config.json keys that from_pretrained passes on to the constructor.
    config_keys: ClassVar[tuple[str, ...]] = ()

    bos_token: str | None = None
    eos_token: str | None = None
    unk_token: str
    sep_token: str
    pad_token: str
    cls_token: str
    mask_token: str
    _vocab: dict[str, int]

    def _setup(
        self,
        special_tokens: dict[str, str],
        *,
        model_max_length: int,
        clean_up_tokenization_spaces: bool,
        model_input_names: Sequence[str] | None = None,
    ) -> None:
        """Check the special tokens against the vocabulary, then build the backend."""
        if not self._vocab:
            raise BertForgeError(
                "the vocabulary is empty; pass a vocabulary with at least the special tokens"
            )
        self.model_max_length = int(model_max_length)
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        if model_input_names is not None:
            self.model_input_names = list(model_input_names)
        for key in self.special_token_keys:
            token = special_tokens[key]
            if token not in self._vocab:
                raise BertForgeError(
                    f"special token {key}={token!r} is not in the vocabulary ({len(self._vocab)} entries); "
                    f"add it to the vocabulary or pass {key}=<a token that is in it>"
                )
            setattr(self, key, token)
        self._backend = self._build_backend()
        # As in transformers: specials typed literally in the text map to their ids, and
        # decode(skip_special_tokens=True) knows which ids to drop.
        self._backend.add_special_tokens([self._added_token(t) for t in self.all_special_tokens])
        # The backend is shared: a call sets its truncation/padding, encodes and resets it under this lock.
        self._lock = threading.Lock()
        self._warned_too_long = False

    # -------------------------------------------------------------------------- what a family supplies

    def _build_backend(self) -> Tokenizer:
        raise NotImplementedError

    def _added_token(self, token: str) -> AddedToken:
        """How a special token is matched in raw text (RoBERTa's <mask> also eats the space before it)."""
        return AddedToken(token, special=True, normalized=False)

    def _save_vocabulary(self, directory: Path) -> list[Path]:
        """Write the family's own vocabulary files (vocab.txt, vocab.json + merges.txt, spiece.model)."""
        raise NotImplementedError

    def _family_config(self) -> dict[str, Any]:
        """The family's tokenizer_config.json entries, between tokenizer_class and model_max_length."""
        return {}

    def _fingerprint_settings(self) -> dict[str, Any]:
        """Everything besides the vocabulary and special tokens that decides the ids."""
        return {}

    def _is_word_start_token(self, token: str) -> bool:
        """True when a token begins a new word wherever it occurs (WordPiece: no ``##``, ...)."""
        raise NotImplementedError

    def piece_pattern(self) -> re.Pattern[str] | None:
        """A regex whose matches cut any text into pieces that this tokenizer encodes independently
        (the ids of a text are those of its pieces, concatenated), or None when the family cannot
        promise that. :class:`~bertforge.tokenization.bulk.BulkEncoder` then encodes each distinct
        piece once. Runs of spaces must be pieces of their own, and text without characters from
        U+3000 up must be cut at its spaces only (BulkEncoder cuts such text with ``str.split``)."""
        return None

    @classmethod
    def _from_directory(cls, path: Path, settings: dict[str, Any]) -> FastTokenizer:
        raise NotImplementedError

    @classmethod
    def _from_file(cls, path: Path, overrides: dict[str, Any]) -> FastTokenizer:
        raise BertForgeError(
            f"{path} is a file; pass the directory holding it (a tokenizer directory written by "
            f"save_pretrained or a Hugging Face model directory)"
        )

    # ----------------------------------------------------------------------------------- pickling

    def __getstate__(self) -> dict[str, Any]:
        # Locks cannot be pickled; DataLoader workers need a picklable tokenizer.
        return {key: value for key, value in self.__dict__.items() if key != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------- loading, saving

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], **overrides: Any) -> Any:
        """Load from a directory (its vocabulary files or tokenizer.json, plus tokenizer_config.json).

        Keyword arguments override what the directory's config says, as in transformers.
        """
        path = Path(path)
        try:
            return cls._load(path, overrides)
        except BertForgeError as err:
            if str(path) in str(err):
                raise
            # A vocabulary that lacks a special token is reported by __init__, which has no path.
            raise BertForgeError(f"tokenizer {path}: {err}") from None

    @classmethod
    def _load(cls, path: Path, overrides: dict[str, Any]) -> Any:
        if path.is_file():
            return cls._from_file(path, overrides)
        if not path.is_dir():
            raise BertForgeError(
                f"tokenizer path {path} does not exist; pass a directory containing the tokenizer files "
                "(such as one written by save_pretrained)"
            )
        keys = (
            *cls.config_keys,
            *ALL_SPECIAL_TOKEN_KEYS,
            "model_max_length",
            "clean_up_tokenization_spaces",
            "model_input_names",
        )
        settings = read_settings(path, keys)
        settings = {k: v for k, v in settings.items() if k in cls._accepted_settings()}
        return cls._from_directory(path, {**settings, **overrides})

    @classmethod
    def _accepted_settings(cls) -> set[str]:
        return {
            *cls.config_keys,
            *cls.special_token_keys,
            "model_max_length",
            "clean_up_tokenization_spaces",
            "model_input_names",
        }

    def save_pretrained(self, save_directory: str | Path) -> list[Path]:
        """Write the vocabulary files, tokenizer_config.json, special_tokens_map.json and tokenizer.json.

        transformers' ``AutoTokenizer.from_pretrained`` loads the result with equal ids.
        """
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise BertForgeError(f"cannot save the tokenizer to {directory}: it is a file; pass a directory")
        directory.mkdir(parents=True, exist_ok=True)
        paths = self._save_vocabulary(directory)
        specials = {key: getattr(self, key) for key in self.special_token_keys}
        config: dict[str, Any] = {
            "tokenizer_class": self.tokenizer_class,
            **self._family_config(),
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            **specials,
        }
        if self.model_input_names != type(self).model_input_names:
            config["model_input_names"] = list(self.model_input_names)
        paths += [directory / TOKENIZER_CONFIG_FILE, directory / SPECIAL_TOKENS_MAP_FILE]
        atomic_write_json(paths[-2], config)
        atomic_write_json(paths[-1], specials)
        with self._lock:  # so that no call's truncation or padding gets serialised
            backend_json = self._backend.to_str()
        paths.append(directory / TOKENIZER_FILE)
        atomic_write_text(paths[-1], backend_json)
        logger.info("saved tokenizer (%d tokens) to %s", len(self._vocab), directory)
        return paths

    # ------------------------------------------------------------------------------------------ encoding

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        is_split_into_words: bool = False,
    ) -> BatchEncoding:
        """Tokenise one text (flat lists out) or a list of texts (lists of lists), optionally paired.

        With ``is_split_into_words=True`` a text is a list of words (a batch is a list of such lists),
        as in token tagging: each word is still split into sub-word tokens, and ``word_ids`` map every
        token back to its word.

        ``padding``/``truncation``/``max_length`` mean what they mean in transformers: ``max_length``
        alone turns on ``longest_first`` truncation, and truncation without ``max_length`` uses
        ``model_max_length``. ``return_tensors`` is None, ``"pt"`` or ``"np"``.
        ``return_token_type_ids``/``return_attention_mask`` default to :attr:`model_input_names`.
        """
        if is_split_into_words:
            batched = isinstance(text, (list, tuple)) and bool(text) and isinstance(text[0], (list, tuple))
            inputs = word_inputs(text, text_pair, batched)
        else:
            batched = isinstance(text, (list, tuple))
            inputs = text_inputs(text, text_pair, batched)
        if return_tensors not in (None, "pt", "np"):
            raise BertForgeError(
                f"return_tensors={return_tensors!r} is not supported; use None, 'pt' or 'np'"
            )
        pad, trunc, max_length = resolve_padding_truncation(
            padding, truncation, max_length, self.model_max_length
        )
        encodings = self._encode(
            inputs,
            add_special_tokens,
            pad,
            trunc,
            max_length,
            stride,
            pad_to_multiple_of,
            is_split_into_words,
        )
        if return_overflowing_tokens:
            sample_of = [i for i, e in enumerate(encodings) for _ in range(1 + len(e.overflowing))]
            encodings = [row for e in encodings for row in (e, *e.overflowing)]
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        fields = {
            "input_ids": True,
            "token_type_ids": return_token_type_ids,
            "attention_mask": return_attention_mask,
            "special_tokens_mask": return_special_tokens_mask,
            "offset_mapping": return_offsets_mapping,
        }
        attribute = {"input_ids": "ids", "token_type_ids": "type_ids", "offset_mapping": "offsets"}
        data: dict[str, Any] = {
            key: [getattr(e, attribute.get(key, key)) for e in encodings]
            for key, wanted in fields.items()
            if wanted
        }
        if return_length:
            data["length"] = [len(e.ids) for e in encodings]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample_of
        if trunc == "do_not_truncate":
            self._warn_if_too_long(data["input_ids"])
        if return_tensors is not None:
            data = {key: as_array(key, rows, return_tensors) for key, rows in data.items()}
        elif not batched and not return_overflowing_tokens:
            # transformers drops the batch dimension for a single text (but keeps scalars' list).
            data = {
                key: rows[0] if rows and isinstance(rows[0], list) else rows for key, rows in data.items()
            }
        return BatchEncoding(data, encodings)

    def _encode(
        self,
        inputs: list[Any],
        add_special_tokens: bool,
        pad: str = "do_not_pad",
        trunc: str = "do_not_truncate",
        max_length: int | None = None,
        stride: int = 0,
        pad_to_multiple_of: int | None = None,
        is_pretokenized: bool = False,
    ) -> list[Encoding]:
        """Run the Rust batch encoder with this call's truncation/padding, then reset the backend."""
        if trunc != "do_not_truncate" and stride and max_length is not None:
            pair = bool(inputs) and isinstance(inputs[0], tuple)
            room = max_length - self._backend.num_special_tokens_to_add(pair) * add_special_tokens
            if stride >= room:  # checked here because tokenizers panics (with a backtrace) on it
                raise BertForgeError(
                    f"stride={stride} must be smaller than max_length={max_length} minus the special "
                    f"tokens ({room} tokens left); pass a smaller stride or a larger max_length"
                )
        with self._lock:
            try:
                if trunc != "do_not_truncate" and max_length is not None:
                    self._backend.enable_truncation(
                        max_length, stride=stride, strategy=trunc, direction="right"
                    )
                if pad != "do_not_pad":
                    self._backend.enable_padding(
                        direction="right",
                        pad_id=self.pad_token_id,
                        pad_type_id=0,
                        pad_token=self.pad_token,
                        length=max_length if pad == "max_length" else None,
                        pad_to_multiple_of=pad_to_multiple_of,
                    )
                return self._backend.encode_batch(
                    inputs, is_pretokenized=is_pretokenized, add_special_tokens=add_special_tokens
                )
            except BaseException as exc:
                # tokenizers reports impossible truncations as bare Exceptions, and a too-large stride as
                # a Rust panic (a BaseException); both are user mistakes, so say which knob to turn.
                message = str(exc)
                if (
                    type(exc).__name__ != "PanicException"
                    and "truncat" not in message.lower()
                    and "stride" not in message
                ):
                    raise
                fix = "a smaller stride" if stride else "truncation='longest_first'"
                raise BertForgeError(
                    f"cannot truncate to max_length={max_length} with truncation={trunc!r}, stride={stride}: "
                    f"{message.splitlines()[0]}; use a larger max_length or {fix}"
                ) from exc
            finally:
                self._backend.no_truncation()
                self._backend.no_padding()

    def _warn_if_too_long(self, rows: list[list[int]]) -> None:
        if self._warned_too_long or self.model_max_length > LARGE_INTEGER:
            return
        longest = max((len(row) for row in rows), default=0)
        if longest > self.model_max_length:
            self._warned_too_long = True
            logger.warning(
                "a sequence of %d tokens is longer than model_max_length=%d; pass truncation=True "
                "or the model will fail on it",
                longest,
                self.model_max_length,
            )

    def tokenize(self, text: str) -> list[str]:
        """Sub-word tokens of ``text`` without the special tokens around it."""
        return self._encode([text_inputs(text, None, False)[0]], add_special_tokens=False)[0].tokens

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        return_tensors: str | None = None,
    ) -> Any:
        """The ``input_ids`` of one text (or pair), as a list (or a tensor with ``return_tensors``)."""
        return self(
            text,
            text_pair,
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            stride=stride,
            return_tensors=return_tensors,
        )["input_ids"]

    # ------------------------------------------------------------------------------------------ decoding

    def decode(
        self,
        token_ids: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> Any:
        """Turn ids (list, int, tensor or array) back into text; a batch of sequences gives a list of str."""
        ids = _to_id_list(token_ids)
        if ids and isinstance(ids[0], list):
            return self.batch_decode(ids, skip_special_tokens, clean_up_tokenization_spaces)
        return self._clean(
            self._backend.decode(ids, skip_special_tokens=skip_special_tokens), clean_up_tokenization_spaces
        )

    def batch_decode(
        self,
        sequences: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> list[str]:
        """Decode many sequences at once (in parallel in Rust)."""
        texts = self._backend.decode_batch(_to_id_list(sequences), skip_special_tokens=skip_special_tokens)
        return [self._clean(text, clean_up_tokenization_spaces) for text in texts]

    def _clean(self, text: str, clean_up: bool | None) -> str:
        clean_up = self.clean_up_tokenization_spaces if clean_up is None else clean_up
        return _clean_up_tokenization(text) if clean_up else text

    # ------------------------------------------------------------------------------------ vocabulary

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Id of each token; tokens outside the vocabulary map to the unknown token's id."""
        unk = self.unk_token_id
        if isinstance(tokens, str):
            return self._vocab.get(tokens, unk)
        return [self._vocab.get(token, unk) for token in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> Any:
        """Token of each id (None for an id with no token)."""
        ids = _to_id_list(ids) if not isinstance(ids, int) else ids
        if isinstance(ids, int):
            return self._backend.id_to_token(ids)
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._backend.id_to_token(int(i)) for i in ids if int(i) not in skip]

    def get_vocab(self) -> dict[str, int]:
        """A copy of the token -> id mapping."""
        return dict(self._vocab)

    @property
    def vocab(self) -> dict[str, int]:
        """The token -> id mapping (a copy)."""
        return dict(self._vocab)

    @property
    def ids_to_tokens(self) -> dict[int, str]:
        """The id -> token mapping."""
        return {index: token for token, index in self._vocab.items()}

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens in the vocabulary."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The underlying ``tokenizers.Tokenizer`` (without padding or truncation set)."""
        return self._backend

    @property
    def all_special_tokens(self) -> list[str]:
        """The special tokens in transformers' order (bos, eos, unk, sep, pad, cls, mask), without repeats."""
        return list(dict.fromkeys(getattr(self, key) for key in self.special_token_keys))

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of :attr:`all_special_tokens`, in the same order."""
        return [self._vocab[token] for token in self.all_special_tokens]

    def _token_id(self, key: str) -> int | None:
        token = getattr(self, key, None)
        return None if token is None else self._vocab[token]

    bos_token_id = property(lambda self: self._token_id("bos_token"), doc="Id of the begin token, if any.")
    eos_token_id = property(lambda self: self._token_id("eos_token"), doc="Id of the end token, if any.")
    unk_token_id = property(lambda self: self._vocab[self.unk_token], doc="Id of the unknown token.")
    sep_token_id = property(lambda self: self._vocab[self.sep_token], doc="Id of the separator token.")
    pad_token_id = property(lambda self: self._vocab[self.pad_token], doc="Id of the padding token.")
    cls_token_id = property(lambda self: self._vocab[self.cls_token], doc="Id of the classifier token.")
    mask_token_id = property(lambda self: self._vocab[self.mask_token], doc="Id of the mask token.")

    def fingerprint(self) -> str:
        """sha256 hex of everything that decides the ids: vocabulary, normalisation and special tokens."""
        payload = {
            "vocab": sorted(self._vocab.items(), key=lambda item: item[1]),
            **self._fingerprint_settings(),
            "special_tokens": {key: getattr(self, key) for key in self.special_token_keys},
        }
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    # ------------------------------------------------------------------------------------ word starts

    def word_start_table(self) -> np.ndarray:
        """A bool per id (added tokens included): True when that token begins a word wherever it occurs.

        Special tokens count as word starts. Where a token sits matters too; :meth:`word_starts`
        adds the positional rules (first token of a sequence, token after a special token).
        """
        vocab = self._backend.get_vocab(with_added_tokens=True)
        table = np.ones(max(vocab.values()) + 1, dtype=np.bool_)
        specials = set(self.all_special_tokens)
        for token, index in vocab.items():
            table[index] = token in specials or self._is_word_start_token(token)
        return table

    def word_starts(
        self, ids: Sequence[int] | np.ndarray, lengths: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """Whole-word start flags for ``ids`` (one sequence, or sequences concatenated with ``lengths``).

        A token starts a word when :meth:`word_start_table` says so, when it opens a sequence, or when
        it follows a special token (byte-level BPE has no ``Ġ`` at either place when no space precedes).
        """
        ids = np.asarray(ids, dtype=np.int64)
        table = getattr(self, "_word_start_cache", None)
        if table is None:
            table = self._word_start_cache = self.word_start_table()
        starts = table[ids]
        if ids.size:
            special = np.isin(ids, np.asarray(self.all_special_ids, dtype=np.int64))
            starts[1:] |= special[:-1]
            lengths = np.asarray([ids.size] if lengths is None else lengths, dtype=np.int64)
            firsts = (np.cumsum(lengths) - lengths)[lengths > 0]
            starts[firsts] = True
        return starts
