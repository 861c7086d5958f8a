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

import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Encoding, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from ..encoding import BatchEncoding, as_array
from ..errors import BertForgeError
from ..fileio import atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)

VOCAB_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
TOKENIZER_FILE = "tokenizer.json"
# transformers treats a model_max_length above this as "no limit" (it stores 1e30 when none is known).
LARGE_INTEGER = int(1e20)
# Same order as transformers' all_special_tokens, so all_special_ids lines up with theirs.
SPECIAL_TOKEN_KEYS = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# BERT's conventional order; train() assigns these ids 0..4.
TRAIN_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_CONFIG_KEYS = (
    "do_lower_case",
    "strip_accents",
    "tokenize_chinese_chars",
    "model_max_length",
    "clean_up_tokenization_spaces",
    *SPECIAL_TOKEN_KEYS,
)
_PADDING = ("longest", "max_length", "do_not_pad")
_TRUNCATION = ("longest_first", "only_first", "only_second", "do_not_truncate")


def load_vocab(path: str | Path) -> dict[str, int]:
    """Read a vocab.txt exactly like transformers: id = line number, a repeated token keeps its last id."""
    path = Path(path)
    if not path.is_file():
        raise BertForgeError(
            f"vocabulary file {path} not found; pass a directory containing vocab.txt or tokenizer.json"
        )
    # readlines() (not splitlines()) so that \x0b, \x1c, U+2028 ... inside tokens stay tokens, as in HF.
    with open(path, encoding="utf-8") as handle:
        return {line.rstrip("\n"): index for index, line in enumerate(handle.readlines())}


def _strategy(value: Any) -> Any:
    # transformers' PaddingStrategy/TruncationStrategy are str enums hashed by name, so compare by value.
    return getattr(value, "value", value)


def _is_pair(item: Any) -> bool:
    return isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, str) for x in item)


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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BertForgeError(f"cannot read {path}: {exc}; fix or delete the file") from exc
    if not isinstance(data, dict):
        raise BertForgeError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def _read_tokenizer_json(path: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """The WordPiece vocabulary and normaliser flags stored in a tokenizers ``tokenizer.json``."""
    data = _read_json(path)
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


class BertTokenizer:
    """BERT WordPiece tokenizer with transformers' API (``__call__``, ``encode``, ``decode``, ...).

    ``vocab`` is a token -> id dict or a path to vocab.txt. ``strip_accents=None`` follows
    ``do_lower_case``, as in BERT. Padding and truncation are applied per call and never persist.
    """

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
    ) -> None:
        self._vocab = dict(vocab) if isinstance(vocab, dict) else load_vocab(vocab)
        if not self._vocab:
            raise BertForgeError("the vocabulary is empty; pass a vocab.txt with one token per line")
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.model_max_length = int(model_max_length)
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        for key in SPECIAL_TOKEN_KEYS:
            token = getattr(self, key)
            if token not in self._vocab:
                raise BertForgeError(
                    f"special token {key}={token!r} is not in the vocabulary ({len(self._vocab)} entries); "
                    f"add it to vocab.txt or pass {key}=<a token that is in it>"
                )
        self._backend = self._build_backend()
        # The backend is shared: a call sets its truncation/padding, encodes and resets it under this lock.
        self._lock = threading.Lock()
        self._warned_too_long = False

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
        # As in transformers: specials typed literally in the text ("[MASK]") map to their ids, and
        # decode(skip_special_tokens=True) knows which ids to drop.
        backend.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in self.all_special_tokens]
        )
        return backend

    def __getstate__(self) -> dict[str, Any]:
        # Locks cannot be pickled; DataLoader workers need a picklable tokenizer.
        return {key: value for key, value in self.__dict__.items() if key != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"BertTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
            f"strip_accents={self.strip_accents}, tokenize_chinese_chars={self.tokenize_chinese_chars}, "
            f"model_max_length={self.model_max_length})"
        )

    # ----------------------------------------------------------------------------------- loading, saving

    @classmethod
    def from_pretrained(cls, path: str | Path, **overrides: Any) -> BertTokenizer:
        """Load from a directory (vocab.txt or tokenizer.json, plus tokenizer_config.json) or a vocab.txt.

        Keyword arguments override what the directory's config says, as in transformers.
        """
        path = Path(path)
        if path.is_file():
            if path.suffix == ".json":
                vocab, settings = _read_tokenizer_json(path)
                return cls(vocab, **{**settings, **overrides})
            return cls(path, **overrides)
        if not path.is_dir():
            raise BertForgeError(
                f"tokenizer path {path} does not exist; pass a directory containing vocab.txt or "
                "tokenizer.json (such as one written by save_pretrained), or a vocab.txt file"
            )
        config: dict[str, Any] = {}
        for name in (SPECIAL_TOKENS_MAP_FILE, TOKENIZER_CONFIG_FILE):  # the later file wins
            if (path / name).is_file():
                config.update(_read_json(path / name))
        settings = {key: config[key] for key in _CONFIG_KEYS if key in config}
        for key in SPECIAL_TOKEN_KEYS:  # saved AddedTokens look like {"content": "[UNK]", ...}
            if isinstance(settings.get(key), dict):
                settings[key] = settings[key].get("content")
        if (path / VOCAB_FILE).is_file():
            return cls(path / VOCAB_FILE, **{**settings, **overrides})
        if (path / TOKENIZER_FILE).is_file():
            vocab, from_json = _read_tokenizer_json(path / TOKENIZER_FILE)
            return cls(vocab, **{**from_json, **settings, **overrides})
        found = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "nothing"
        raise BertForgeError(
            f"no {VOCAB_FILE} or {TOKENIZER_FILE} in {path} (found: {found}); pass a directory written "
            "by save_pretrained or a Hugging Face BERT model directory"
        )

    def save_pretrained(self, save_directory: str | Path) -> list[Path]:
        """Write vocab.txt, tokenizer_config.json, special_tokens_map.json and tokenizer.json.

        transformers' ``BertTokenizer``/``AutoTokenizer.from_pretrained`` load the result with equal ids.
        """
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise BertForgeError(f"cannot save the tokenizer to {directory}: it is a file; pass a directory")
        directory.mkdir(parents=True, exist_ok=True)
        # Duplicate lines in a loaded vocab.txt leave ids without a token; writing the highest-id token
        # there keeps every id, because a repeated token ends up with its last (highest) line number.
        by_id = {index: token for token, index in self._vocab.items()}
        top = by_id[max(by_id)]
        lines = [by_id.get(index, top) for index in range(max(by_id) + 1)]
        specials = {key: getattr(self, key) for key in SPECIAL_TOKEN_KEYS}
        config = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "do_basic_tokenize": True,
            "never_split": None,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            **specials,
        }
        paths = [directory / name for name in (VOCAB_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE)]
        atomic_write_text(paths[0], "".join(f"{line}\n" for line in lines))
        atomic_write_json(paths[1], config)
        atomic_write_json(paths[2], specials)
        with self._lock:  # so that no call's truncation or padding gets serialised
            backend_json = self._backend.to_str()
        paths.append(directory / TOKENIZER_FILE)
        atomic_write_text(paths[3], backend_json)
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
        return_token_type_ids: bool | None = True,
        return_attention_mask: bool | None = True,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        is_split_into_words: bool = False,
    ) -> BatchEncoding:
        """Tokenise one text (flat lists out) or a list of texts (lists of lists), optionally paired.

        With ``is_split_into_words=True`` a text is a list of words (a batch is a list of such lists),
        as in token tagging: each word is still split into WordPiece tokens, and ``word_ids`` map every
        token back to its word.

        ``padding``/``truncation``/``max_length`` mean what they mean in transformers: ``max_length``
        alone turns on ``longest_first`` truncation, and truncation without ``max_length`` uses
        ``model_max_length``. ``return_tensors`` is None, ``"pt"`` or ``"np"``.
        """
        if is_split_into_words:
            batched = isinstance(text, (list, tuple)) and bool(text) and isinstance(text[0], (list, tuple))
            inputs = self._word_inputs(text, text_pair, batched)
        else:
            batched = isinstance(text, (list, tuple))
            inputs = self._inputs(text, text_pair, batched)
        if return_tensors not in (None, "pt", "np"):
            raise BertForgeError(
                f"return_tensors={return_tensors!r} is not supported; use None, 'pt' or 'np'"
            )
        pad, trunc, max_length = self._strategies(padding, truncation, max_length)
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
        fields = {
            "input_ids": True,
            "token_type_ids": return_token_type_ids is not False,
            "attention_mask": return_attention_mask is not False,
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

    def _inputs(self, text: Any, text_pair: Any, batched: bool) -> list[Any]:
        if not batched:
            if not isinstance(text, str):
                raise BertForgeError(f"text must be a str or a list of str, not {type(text).__name__}")
            if text_pair is not None and not isinstance(text_pair, str):
                raise BertForgeError(
                    f"text_pair for a single text must be a str, not {type(text_pair).__name__}"
                )
            # transformers treats an empty text_pair as no pair at all; so do we, for equal ids.
            return [(text, text_pair)] if text_pair else [text]
        if text_pair is None and text and all(_is_pair(t) for t in text):
            # A batch of (text, text_pair) tuples, as transformers accepts it.
            text, text_pair = [t[0] for t in text], [t[1] for t in text]
        bad = next((i for i, t in enumerate(text) if not isinstance(t, str)), None)
        if bad is not None:
            raise BertForgeError(
                f"text[{bad}] is a {type(text[bad]).__name__}; every text must be a str "
                "(or every item a (text, text_pair) tuple)"
            )
        if text_pair is None:
            return list(text)
        if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text):
            got = (
                f"{len(text_pair)} items"
                if isinstance(text_pair, (list, tuple))
                else type(text_pair).__name__
            )
            raise BertForgeError(
                f"text has {len(text)} items but text_pair has {got}; pass one pair text per text, "
                "as a list of the same length"
            )
        bad = next((i for i, t in enumerate(text_pair) if not isinstance(t, str)), None)
        if bad is not None:
            raise BertForgeError(f"text_pair[{bad}] is a {type(text_pair[bad]).__name__}; pairs must be str")
        return list(zip(text, text_pair, strict=True))

    def _word_inputs(self, text: Any, text_pair: Any, batched: bool) -> list[Any]:
        """Pre-split input: a list of words per text (and per pair text)."""
        texts = list(text) if batched else [text]
        pairs = None if text_pair is None else (list(text_pair) if batched else [text_pair])
        for name, rows in (("text", texts), ("text_pair", pairs or [])):
            for i, words in enumerate(rows):
                if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
                    raise BertForgeError(
                        f"with is_split_into_words=True, {name}[{i}] must be a list of str words "
                        f"(got {type(words).__name__}); pass e.g. ['John', 'lives', 'in', 'Paris']"
                    )
        if pairs is None:
            return [list(words) for words in texts]
        if len(pairs) != len(texts):
            raise BertForgeError(
                f"text has {len(texts)} items but text_pair has {len(pairs)}; pass one per text"
            )
        return [(list(a), list(b)) for a, b in zip(texts, pairs, strict=True)]

    def _strategies(
        self, padding: Any, truncation: Any, max_length: int | None
    ) -> tuple[str, str, int | None]:
        """Resolve padding/truncation arguments the way transformers' _get_padding_truncation_strategies does."""
        padding, truncation = _strategy(padding), _strategy(truncation)
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"  # transformers' backward-compatible default
        pad = "longest" if padding is True else "do_not_pad" if padding in (False, None) else padding
        trunc = (
            "longest_first"
            if truncation is True
            else "do_not_truncate"
            if truncation in (False, None)
            else truncation
        )
        if pad not in _PADDING:
            raise BertForgeError(
                f"padding={padding!r} is not one of True, False, {', '.join(map(repr, _PADDING))}"
            )
        if trunc not in _TRUNCATION:
            raise BertForgeError(
                f"truncation={truncation!r} is not one of True, False, {', '.join(map(repr, _TRUNCATION))}"
            )
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise BertForgeError(f"max_length={max_length!r} must be a positive int (or None)")
        if max_length is None:
            limit = self.model_max_length if self.model_max_length <= LARGE_INTEGER else None
            if pad == "max_length":
                pad, max_length = ("max_length", limit) if limit else ("do_not_pad", None)
            if trunc != "do_not_truncate":
                trunc, max_length = (trunc, limit) if limit else ("do_not_truncate", max_length)
        return pad, trunc, max_length

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
        """WordPiece tokens of ``text`` without [CLS]/[SEP]."""
        return self._encode([self._inputs(text, None, False)[0]], add_special_tokens=False)[0].tokens

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
        """Id of each token; tokens outside the vocabulary map to the [UNK] id."""
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
        """[UNK], [SEP], [PAD], [CLS], [MASK] (transformers' order), without repeats."""
        return list(dict.fromkeys(getattr(self, key) for key in SPECIAL_TOKEN_KEYS))

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of :attr:`all_special_tokens`, in the same order."""
        return [self._vocab[token] for token in self.all_special_tokens]

    unk_token_id = property(lambda self: self._vocab[self.unk_token], doc="Id of the unknown token.")
    sep_token_id = property(lambda self: self._vocab[self.sep_token], doc="Id of the separator token.")
    pad_token_id = property(lambda self: self._vocab[self.pad_token], doc="Id of the padding token.")
    cls_token_id = property(lambda self: self._vocab[self.cls_token], doc="Id of the classifier token.")
    mask_token_id = property(lambda self: self._vocab[self.mask_token], doc="Id of the mask token.")

    def fingerprint(self) -> str:
        """sha256 hex of everything that decides the ids: vocabulary, normalisation and special tokens."""
        payload = {
            "vocab": sorted(self._vocab.items(), key=lambda item: item[1]),
            "do_lower_case": self.do_lower_case,
            # None means "follow lowercase"; hash the effective value so equivalent configs agree.
            "strip_accents": self.do_lower_case if self.strip_accents is None else self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "special_tokens": {key: getattr(self, key) for key in SPECIAL_TOKEN_KEYS},
        }
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

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
