"""ALBERT's SentencePiece-style Unigram tokenizer, with transformers' API.

:class:`AlbertTokenizer` builds the pipeline transformers' ``AlbertTokenizer`` (the tokenizers-backed
one) builds: ``````/``''`` -> ``"``, NFKD + strip accents unless ``keep_accents``, lowercase when
``do_lower_case``, the SentencePiece model's own precompiled character map when it has one, split
on whitespace, ``▁`` (Metaspace) before every word, Unigram (Viterbi over the piece scores),
``[CLS] A [SEP] B [SEP]`` with token_type_ids 0/1. ``<pad>``=0, ``<unk>``=1, ``[CLS]``=2,
``[SEP]``=3, ``[MASK]``=4 in ALBERT's vocabulary and in vocabularies trained here.

Files: ``spiece.model`` (a SentencePiece ``ModelProto``) and/or ``tokenizer.json``.

Why our own protobuf reader/writer instead of the ``sentencepiece``/``protobuf`` packages: the model
file needs four fields (pieces with scores and types, the unknown id, the precompiled character
map), which is ~60 lines of wire-format code; a runtime dependency on a compiled package (and its
wheels for every platform) for that would be out of proportion. ``sentencepiece`` is a dev/test
dependency only: the tests train a real model with it to check this reader, and load what
:meth:`AlbertTokenizer.save_pretrained` writes with it to check the writer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import Unigram

from ..errors import BertForgeError
from ..fileio import atomic_write_bytes
from .base import FastTokenizer
from .config_files import ALL_SPECIAL_TOKEN_KEYS, TOKENIZER_FILE, added_tokens_decoder, read_json
from .training_files import training_files, training_lines

logger = logging.getLogger(__name__)

SPIECE_FILE = "spiece.model"
# ALBERT's order; train() assigns these ids 0..4.
UNIGRAM_TRAIN_SPECIAL_TOKENS = ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]")
_UNIGRAM_CONFIG_KEYS = ("do_lower_case", "keep_accents", "add_prefix_space", "trim_offsets", "remove_space")
# SentencePiece piece types (sentencepiece_model.proto).
_NORMAL, _UNKNOWN, _CONTROL = 1, 2, 3


# ------------------------------------------------------------------------------ SentencePiece protobuf


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message; length-delimited values stay bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated field")
        yield number, wire, value


def read_sentencepiece_model(path: str | Path) -> dict[str, Any]:
    """pieces [(piece, score, type)], unk_id, precompiled_charsmap and the raw bytes of a spiece.model."""
    path = Path(path)
    try:
        data = path.read_bytes()
        pieces: list[tuple[str, float, int]] = []
        model_type, unk_id, charsmap = 1, None, b""
        for number, wire, value in _fields(data):
            if number == 1 and wire == 2:
                piece, score, kind = "", 0.0, _NORMAL
                for n, w, v in _fields(value):
                    if n == 1 and w == 2:
                        piece = v.decode("utf-8")
                    elif n == 2 and w == 5:
                        score = struct.unpack("<f", v)[0]
                    elif n == 3 and w == 0:
                        kind = v
                pieces.append((piece, score, kind))
            elif number == 2 and wire == 2:  # TrainerSpec
                for n, w, v in _fields(value):
                    if n == 3 and w == 0:
                        model_type = v
                    elif n == 40 and w == 0:
                        unk_id = v
            elif number == 3 and wire == 2:  # NormalizerSpec
                for n, w, v in _fields(value):
                    if n == 2 and w == 2:
                        charsmap = v
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise BertForgeError(
            f"cannot read {path} as a SentencePiece model ({exc}); pass the spiece.model saved with the "
            "model, or a directory with tokenizer.json"
        ) from exc
    if not pieces:
        raise BertForgeError(f"{path} holds no SentencePiece pieces; it is not a spiece.model")
    if model_type != 1:
        raise BertForgeError(
            f"{path} is a SentencePiece model of type {model_type} (1 is Unigram); only Unigram models "
            "(ALBERT, XLNet, T5 style) are supported"
        )
    if unk_id is None:
        unk_id = next((i for i, p in enumerate(pieces) if p[2] == _UNKNOWN), 0)
    return {"pieces": pieces, "unk_id": unk_id, "precompiled_charsmap": charsmap, "raw": data}


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32 fields are written as 10-byte two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _message(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _encode_varint(len(payload)) + payload


def write_sentencepiece_model(pieces: list[tuple[str, float, int]], unk_id: int, pad_id: int) -> bytes:
    """A minimal Unigram ``ModelProto`` that sentencepiece (and transformers) load.

    The normaliser is ``identity``: ALBERT's own normalisation (quotes, accents, case) happens before
    SentencePiece, in the tokenizer, exactly as in transformers.
    """
    out = bytearray()
    for piece, score, kind in pieces:
        body = _message(1, piece.encode("utf-8")) + _key(2, 5) + struct.pack("<f", score) + _key(3, 0)
        out += _message(1, body + _encode_varint(kind))
    trainer = (
        _key(3, 0)
        + _encode_varint(1)  # model_type UNIGRAM
        + _key(4, 0)
        + _encode_varint(len(pieces))  # vocab_size
        + _key(40, 0)
        + _encode_varint(unk_id)
        + _key(41, 0)
        + _encode_varint(-1)  # bos_id: ALBERT has none
        + _key(42, 0)
        + _encode_varint(-1)  # eos_id
        + _key(43, 0)
        + _encode_varint(pad_id)
    )
    out += _message(2, trainer)
    normalizer = (
        _message(1, b"identity")
        + _key(3, 0)
        + _encode_varint(1)  # add_dummy_prefix
        + _key(4, 0)
        + _encode_varint(1)  # remove_extra_whitespaces
        + _key(5, 0)
        + _encode_varint(1)  # escape_whitespaces
    )
    out += _message(3, normalizer)
    return bytes(out)


def _read_unigram_json(path: Path) -> tuple[list[tuple[str, float]], dict[str, Any]]:
    data = read_json(path)
    model = data.get("model") or {}
    if model.get("type") != "Unigram" or not isinstance(model.get("vocab"), list):
        raise BertForgeError(
            f"{path} holds a {model.get('type', 'unknown')} model, not a Unigram vocabulary; load it with "
            "the tokenizer of its family (bertforge.tokenization.load_tokenizer picks it)"
        )
    settings: dict[str, Any] = {"keep_accents": True, "do_lower_case": False}
    norm = data.get("normalizer") or {}
    for item in norm.get("normalizers", [norm]) if norm.get("type") == "Sequence" else [norm]:
        kind = item.get("type")
        if kind == "StripAccents":
            settings["keep_accents"] = False
        elif kind == "Lowercase":
            settings["do_lower_case"] = True
        elif kind == "Precompiled" and item.get("precompiled_charsmap"):
            settings["precompiled_charsmap"] = base64.b64decode(item["precompiled_charsmap"])
    pre = data.get("pre_tokenizer") or {}
    for item in pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]:
        if item.get("type") == "Metaspace":
            settings["add_prefix_space"] = item.get("prepend_scheme", "always") != "never"
    return [(str(p), float(s)) for p, s in model["vocab"]], settings


class AlbertTokenizer(FastTokenizer):
    """ALBERT Unigram tokenizer with transformers' API (``__call__``, ``encode``, ``decode``, ...).

    ``vocab`` is a list of (piece, score) in id order, or a path to a spiece.model.
    ``precompiled_charsmap``: SentencePiece's normalisation table (read from spiece.model when given).
    """

    tokenizer_class: ClassVar[str] = "AlbertTokenizer"
    # transformers 5 leaves token_type_ids out by default for ALBERT (4.x returned them); pass
    # return_token_type_ids=True, or model_input_names, for segment ids.
    model_input_names = ["input_ids", "attention_mask"]
    special_token_keys: ClassVar[tuple[str, ...]] = ALL_SPECIAL_TOKEN_KEYS  # every key, transformers' order
    config_keys: ClassVar[tuple[str, ...]] = _UNIGRAM_CONFIG_KEYS

    def __init__(
        self,
        vocab: list[tuple[str, float]] | str | Path,
        *,
        do_lower_case: bool = True,
        keep_accents: bool = False,
        remove_space: bool = True,
        add_prefix_space: bool = True,
        trim_offsets: bool = True,
        precompiled_charsmap: bytes | None = None,
        bos_token: str = "[CLS]",
        eos_token: str = "[SEP]",
        unk_token: str = "<unk>",
        sep_token: str = "[SEP]",
        pad_token: str = "<pad>",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = False,
        model_input_names: list[str] | None = None,
    ) -> None:
        # The spiece.model this was read from, written back unchanged by save_pretrained.
        self._spiece: bytes | None = None
        if isinstance(vocab, (str, Path)):
            model = read_sentencepiece_model(vocab)
            vocab = [(piece, score) for piece, score, _ in model["pieces"]]
            self._spiece = model["raw"]
            if precompiled_charsmap is None:
                precompiled_charsmap = model["precompiled_charsmap"] or None
        self._scores = [(str(piece), float(score)) for piece, score in vocab]
        self._vocab = {}
        for index, (piece, _) in enumerate(self._scores):
            self._vocab.setdefault(piece, index)
        self.do_lower_case = bool(do_lower_case)
        self.keep_accents = bool(keep_accents)
        self.remove_space = bool(remove_space)
        self.add_prefix_space = bool(add_prefix_space)
        self.trim_offsets = bool(trim_offsets)
        self.precompiled_charsmap = precompiled_charsmap or None
        specials = {
            "bos_token": bos_token,
            "eos_token": eos_token,
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
        backend = Tokenizer(Unigram(self._scores, unk_id=self._vocab[self.unk_token], byte_fallback=False))
        backend.normalizer = albert_normalizer(
            self.do_lower_case, self.keep_accents, self.precompiled_charsmap
        )
        scheme = "always" if self.add_prefix_space else "never"
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.WhitespaceSplit(),
                pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme),
            ]
        )
        backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme)
        cls, sep = self.cls_token, self.sep_token
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0",
            pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, self._vocab[cls]), (sep, self._vocab[sep])],
        )
        return backend

    def _added_token(self, token: str) -> AddedToken:
        # ALBERT's [MASK] absorbs the space before it, as in transformers' AlbertTokenizer.
        return AddedToken(token, special=True, normalized=False, lstrip=token == self.mask_token)

    def __repr__(self) -> str:
        return (
            f"AlbertTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
            f"keep_accents={self.keep_accents}, model_max_length={self.model_max_length})"
        )

    def _is_word_start_token(self, token: str) -> bool:
        return token.startswith("▁")

    @property
    def scores(self) -> list[tuple[str, float]]:
        """(piece, log-probability) in id order (a copy)."""
        return list(self._scores)

    # ----------------------------------------------------------------------------------- loading, saving

    @classmethod
    def _from_file(cls, path: Path, overrides: dict[str, Any]) -> AlbertTokenizer:
        if path.suffix == ".json":
            vocab, settings = _read_unigram_json(path)
            return cls(vocab, **{**settings, **overrides})
        return cls(path, **overrides)

    @classmethod
    def _from_directory(cls, path: Path, settings: dict[str, Any]) -> AlbertTokenizer:
        if (path / TOKENIZER_FILE).is_file():
            vocab, from_json = _read_unigram_json(path / TOKENIZER_FILE)
            return cls(vocab, **{**from_json, **settings})
        if (path / SPIECE_FILE).is_file():
            return cls(path / SPIECE_FILE, **settings)
        found = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "nothing"
        raise BertForgeError(
            f"no {SPIECE_FILE} or {TOKENIZER_FILE} in {path} (found: {found}); pass a directory written "
            "by save_pretrained or a Hugging Face ALBERT model directory"
        )

    def _save_vocabulary(self, directory: Path) -> list[Path]:
        if self._spiece is not None:
            atomic_write_bytes(directory / SPIECE_FILE, self._spiece)
            return [directory / SPIECE_FILE]
        if self.precompiled_charsmap is not None:
            # Loaded from a tokenizer.json with SentencePiece's character map: we do not re-encode that
            # map into a model file; tokenizer.json (written beside) keeps it as the Precompiled normaliser.
            logger.info("not writing spiece.model: the precompiled character map is kept in tokenizer.json")
            return []
        unk = self._vocab[self.unk_token]
        specials = set(self.all_special_tokens)
        pieces = [
            (piece, score, _UNKNOWN if i == unk else _CONTROL if piece in specials else _NORMAL)
            for i, (piece, score) in enumerate(self._scores)
        ]
        blob = write_sentencepiece_model(pieces, unk, self._vocab[self.pad_token])
        atomic_write_bytes(directory / SPIECE_FILE, blob)
        return [directory / SPIECE_FILE]

    def _family_config(self) -> dict[str, Any]:
        return {
            "do_lower_case": self.do_lower_case,
            "keep_accents": self.keep_accents,
            "remove_space": self.remove_space,
            "add_prefix_space": self.add_prefix_space,
            "trim_offsets": self.trim_offsets,
            "added_tokens_decoder": added_tokens_decoder(self),
        }

    def _fingerprint_settings(self) -> dict[str, Any]:
        charsmap = self.precompiled_charsmap
        return {
            "family": "unigram",
            "scores": [score for _, score in self._scores],
            "do_lower_case": self.do_lower_case,
            "keep_accents": self.keep_accents,
            "add_prefix_space": self.add_prefix_space,
            "charsmap": hashlib.sha256(charsmap).hexdigest() if charsmap else None,
        }

    # ------------------------------------------------------------------------------------------ training

    @classmethod
    def train(
        cls, files: str | Path | Iterable[str | Path], vocab_size: int = 30000, **options: Any
    ) -> AlbertTokenizer:
        """Learn a Unigram vocabulary from UTF-8 text files (``.gz`` read compressed).

        Options as in :meth:`train_from_iterator`.
        """
        return cls.train_from_iterator(training_lines(training_files(files)), vocab_size, **options)

    @classmethod
    def train_from_iterator(
        cls,
        texts: Iterable[str],
        vocab_size: int = 30000,
        *,
        lowercase: bool = True,
        keep_accents: bool = False,
        max_piece_length: int = 16,
        shrinking_factor: float = 0.75,
        show_progress: bool = False,
        save_to: str | Path | None = None,
        **unknown: Any,
    ) -> AlbertTokenizer:
        """Learn a Unigram vocabulary of ``vocab_size`` pieces (5 specials first) from ``texts``.

        ``lowercase``/``keep_accents`` set the normalisation (ALBERT: lowercased, accents stripped).
        ``save_to``: also write tokenizer.json, spiece.model, tokenizer_config.json and
        special_tokens_map.json there.
        """
        if unknown:
            raise BertForgeError(
                f"unknown Unigram training option(s) {sorted(unknown)}; use lowercase, keep_accents, "
                "max_piece_length, shrinking_factor, show_progress, save_to"
            )
        if isinstance(texts, str):
            raise BertForgeError("texts must be an iterable of strings, not one str; wrap it in a list")
        if not isinstance(vocab_size, int) or vocab_size <= len(UNIGRAM_TRAIN_SPECIAL_TOKENS):
            raise BertForgeError(
                f"vocab_size={vocab_size!r} is too small: it must exceed the "
                f"{len(UNIGRAM_TRAIN_SPECIAL_TOKENS)} special tokens (ALBERT uses 30000)"
            )
        backend = Tokenizer(Unigram())
        backend.normalizer = albert_normalizer(lowercase, keep_accents, None)
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.WhitespaceSplit(),
                pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
            ]
        )
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            special_tokens=list(UNIGRAM_TRAIN_SPECIAL_TOKENS),
            unk_token="<unk>",
            max_piece_length=max_piece_length,
            shrinking_factor=shrinking_factor,
            show_progress=show_progress,
        )
        try:
            backend.train_from_iterator(texts, trainer=trainer)
        except Exception as exc:
            if "not large enough" not in str(exc):
                raise
            # Unigram keeps every character seen; a CJK corpus has thousands.
            raise BertForgeError(
                f"vocab_size={vocab_size} is smaller than the number of distinct characters in the corpus; "
                "pass a larger vocab_size (Chinese or Japanese text needs several thousand)"
            ) from exc
        model = json.loads(backend.to_str())["model"]
        if len(model["vocab"]) <= len(UNIGRAM_TRAIN_SPECIAL_TOKENS):
            raise BertForgeError(
                "the training corpus contains no text (or only whitespace), so no vocabulary was learned; "
                "pass non-empty UTF-8 text"
            )
        vocab = _canonical_order([(str(p), float(s)) for p, s in model["vocab"]])
        # ALBERT pretrains with segment ids (sentence-order prediction), so a vocabulary trained here
        # returns them for pairs; saved in tokenizer_config.json, transformers returns them too
        # (its ALBERT default, for published checkpoints, is to leave them out).
        tokenizer = cls(
            vocab,
            do_lower_case=lowercase,
            keep_accents=keep_accents,
            model_input_names=["input_ids", "token_type_ids", "attention_mask"],
        )
        logger.info("trained a Unigram vocabulary of %d pieces", len(vocab))
        if save_to is not None:
            tokenizer.save_pretrained(save_to)
        return tokenizer


def _canonical_order(vocab: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """The trainer's vocabulary in an order (and with scores) that depends on the corpus only.

    Determinism (2026-11, tokenizers 0.23): UnigramTrainer lists pieces of equal score in hash-map
    order, and adds the characters it must keep but did not learn from a hash set, scoring them
    ``lowest + k * 1e-4`` in that set's order; so the same corpus gave different ids on every run.
    Here the specials stay first, those added characters get their scores in code-point order, and
    equal scores are ordered by piece. Scores are rounded to float32, the precision of
    spiece.model, so both saved files segment alike.
    """

    def f32(score: float) -> float:
        return float(struct.unpack("<f", struct.pack("<f", score))[0])

    count = len(UNIGRAM_TRAIN_SPECIAL_TOKENS)
    head, rest = vocab[:count], list(vocab[count:])
    if rest:
        lowest = min(score for _, score in rest)
        added = [
            i
            for i, (piece, score) in enumerate(rest)
            if len(piece) == 1 and abs((score - lowest) / 1e-4 - round((score - lowest) / 1e-4)) < 1e-3
        ]
        scores = sorted((rest[i][1] for i in added), reverse=True)
        pieces = sorted(rest[i][0] for i in added)
        for i, piece, score in zip(added, pieces, scores, strict=True):
            rest[i] = (piece, score)
    ordered = sorted(((piece, f32(score)) for piece, score in rest), key=lambda item: (-item[1], item[0]))
    return [(piece, f32(score)) for piece, score in head] + ordered


def albert_normalizer(
    do_lower_case: bool, keep_accents: bool, precompiled_charsmap: bytes | None
) -> normalizers.Normalizer:
    """transformers' ALBERT normaliser: quotes, then NFKD + strip accents, lowercase, SentencePiece map."""
    steps: list[normalizers.Normalizer] = [normalizers.Replace("``", '"'), normalizers.Replace("''", '"')]
    if not keep_accents:
        steps += [normalizers.NFKD(), normalizers.StripAccents()]
    if do_lower_case:
        steps.append(normalizers.Lowercase())
    if precompiled_charsmap:
        steps.append(normalizers.Precompiled(precompiled_charsmap))
    return normalizers.Sequence(steps)
