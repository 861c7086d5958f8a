"""RoBERTa's byte-level BPE tokenizer (GPT-2's vocabulary format), with transformers' API.

:class:`RobertaTokenizer` builds the pipeline transformers' ``RobertaTokenizer(Fast)`` builds: no
normaliser, ByteLevel pre-tokeniser (GPT-2's split regex, every byte mapped to a printable
character, a space becoming ``Ġ``), BPE without continuation prefix, ``<s> A </s>`` and
``<s> A </s></s> B </s>`` with all token_type_ids 0, and a ``<mask>`` that swallows the space before
it (``lstrip``), so "a <mask>." masks the word "Ġword" the model saw in pretraining.

Files: ``vocab.json`` (token -> id) + ``merges.txt`` (one "a b" merge per line, after a
``#version`` line), or a ``tokenizer.json`` holding a BPE model. :meth:`RobertaTokenizer.train`
learns both from raw text; vocabularies trained here put ``<s> <pad> </s> <unk> <mask>`` at ids 0..4
(RoBERTa's own vocabulary has ``<mask>`` last).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors, trainers
from tokenizers.models import BPE

from ..errors import BertForgeError
from ..fileio import atomic_write_text
from .base import FastTokenizer
from .config_files import ALL_SPECIAL_TOKEN_KEYS, TOKENIZER_FILE, added_tokens_decoder, read_json
from .training_files import training_files, training_lines

logger = logging.getLogger(__name__)

VOCAB_JSON_FILE = "vocab.json"
MERGES_FILE = "merges.txt"
# fairseq's order; train() assigns these ids 0..4.
BPE_TRAIN_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
_BPE_CONFIG_KEYS = ("add_prefix_space", "trim_offsets", "errors")


def load_merges(path: str | Path) -> list[tuple[str, str]]:
    """merges.txt as (left, right) pairs; the ``#version`` header and blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise BertForgeError(f"merges file {path} not found; pass a directory with vocab.json and merges.txt")
    merges: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line or (number == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2:
                raise BertForgeError(
                    f"{path}:{number} is {line!r}, not a merge 'left right'; merges.txt holds one pair per line"
                )
            merges.append((parts[0], parts[1]))
    return merges


def _load_vocab_json(path: Path) -> dict[str, int]:
    if not path.is_file():
        raise BertForgeError(
            f"vocabulary file {path} not found; pass a directory with vocab.json and merges.txt"
        )
    vocab = read_json(path)
    if not all(isinstance(v, int) for v in vocab.values()):
        raise BertForgeError(f"{path} must map every token to an integer id")
    return vocab


def _merges_of(model: dict[str, Any]) -> list[tuple[str, str]]:
    # tokenizers wrote merges as "a b" strings before 0.20 and as ["a", "b"] pairs since.
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in model.get("merges", [])]  # type: ignore[misc]


def _read_bpe_json(path: Path) -> tuple[dict[str, int], list[tuple[str, str]], dict[str, Any]]:
    """Vocabulary, merges and ByteLevel/RobertaProcessing flags of a tokenizers ``tokenizer.json``."""
    data = read_json(path)
    model = data.get("model") or {}
    if model.get("type", "BPE") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise BertForgeError(
            f"{path} holds a {model.get('type', 'unknown')} model, not a BPE vocabulary; load it with the "
            "tokenizer of its family (bertforge.tokenization.load_tokenizer picks it)"
        )
    settings: dict[str, Any] = {}
    pre = data.get("pre_tokenizer") or {}
    for item in pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]:
        if item.get("type") == "ByteLevel":
            settings["add_prefix_space"] = bool(item.get("add_prefix_space", False))
    post = data.get("post_processor") or {}
    if post.get("type") == "RobertaProcessing":
        settings["trim_offsets"] = bool(post.get("trim_offsets", True))
    return model["vocab"], _merges_of(model), settings


class RobertaTokenizer(FastTokenizer):
    """RoBERTa byte-level BPE tokenizer with transformers' API (``__call__``, ``encode``, ``decode``, ...).

    ``vocab`` is a token -> id dict or a path to vocab.json; ``merges`` a list of pairs or a path to
    merges.txt. ``add_prefix_space`` treats the first word like any other (needed for
    ``is_split_into_words``); ``trim_offsets`` keeps the space out of a token's character offsets.
    """

    tokenizer_class: ClassVar[str] = "RobertaTokenizer"
    model_input_names = ["input_ids", "attention_mask"]
    special_token_keys: ClassVar[tuple[str, ...]] = ALL_SPECIAL_TOKEN_KEYS  # every key, transformers' order
    config_keys: ClassVar[tuple[str, ...]] = _BPE_CONFIG_KEYS

    def __init__(
        self,
        vocab: dict[str, int] | str | Path,
        merges: Iterable[tuple[str, str]] | str | Path,
        *,
        add_prefix_space: bool = False,
        trim_offsets: bool = True,
        errors: str = "replace",
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        sep_token: str = "</s>",
        cls_token: str = "<s>",
        unk_token: str = "<unk>",
        pad_token: str = "<pad>",
        mask_token: str = "<mask>",
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = False,
        model_input_names: list[str] | None = None,
    ) -> None:
        self._vocab = dict(vocab) if isinstance(vocab, dict) else _load_vocab_json(Path(vocab))
        self._merges = load_merges(merges) if isinstance(merges, (str, Path)) else [(a, b) for a, b in merges]
        self.add_prefix_space = bool(add_prefix_space)
        self.trim_offsets = bool(trim_offsets)
        # Kept for transformers' config only: the Rust ByteLevel decoder always replaces bad UTF-8.
        self.errors = errors
        self.do_lower_case = False
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
        try:
            model = BPE(
                self._vocab,
                self._merges,
                dropout=None,
                continuing_subword_prefix="",
                end_of_word_suffix="",
                fuse_unk=False,
            )
        except Exception as exc:  # tokenizers names the merge whose parts are not in the vocabulary
            raise BertForgeError(
                f"vocab.json and merges.txt do not fit together: {exc}; use the files saved together"
            ) from exc
        backend = Tokenizer(model)
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=self.add_prefix_space)
        backend.decoder = decoders.ByteLevel()
        backend.post_processor = processors.RobertaProcessing(
            (self.sep_token, self._vocab[self.sep_token]),
            (self.cls_token, self._vocab[self.cls_token]),
            trim_offsets=self.trim_offsets,
            add_prefix_space=self.add_prefix_space,
        )
        return backend

    def _added_token(self, token: str) -> AddedToken:
        # RoBERTa's <mask> absorbs the space before it, as in transformers.
        lstrip = token == self.mask_token
        return AddedToken(token, special=True, normalized=False, lstrip=lstrip)

    def __repr__(self) -> str:
        return (
            f"RobertaTokenizer(vocab_size={self.vocab_size}, merges={len(self._merges)}, "
            f"add_prefix_space={self.add_prefix_space}, model_max_length={self.model_max_length})"
        )

    def _is_word_start_token(self, token: str) -> bool:
        return token.startswith("Ġ")

    @property
    def merges(self) -> list[tuple[str, str]]:
        """The BPE merges, highest priority first (a copy)."""
        return list(self._merges)

    # ----------------------------------------------------------------------------------- loading, saving

    @classmethod
    def _from_file(cls, path: Path, overrides: dict[str, Any]) -> RobertaTokenizer:
        if path.suffix == ".json" and path.name != VOCAB_JSON_FILE:
            vocab, merges, settings = _read_bpe_json(path)
            return cls(vocab, merges, **{**settings, **overrides})
        return super()._from_file(path, overrides)  # type: ignore[return-value]

    @classmethod
    def _from_directory(cls, path: Path, settings: dict[str, Any]) -> RobertaTokenizer:
        if (path / TOKENIZER_FILE).is_file():
            vocab, merges, from_json = _read_bpe_json(path / TOKENIZER_FILE)
            return cls(vocab, merges, **{**from_json, **settings})
        if (path / VOCAB_JSON_FILE).is_file() and (path / MERGES_FILE).is_file():
            return cls(path / VOCAB_JSON_FILE, path / MERGES_FILE, **settings)
        found = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "nothing"
        raise BertForgeError(
            f"no {VOCAB_JSON_FILE} + {MERGES_FILE} or {TOKENIZER_FILE} in {path} (found: {found}); pass a "
            "directory written by save_pretrained or a Hugging Face RoBERTa model directory"
        )

    def _save_vocabulary(self, directory: Path) -> list[Path]:
        paths = [directory / VOCAB_JSON_FILE, directory / MERGES_FILE]
        # transformers' layout (sorted keys, indent 2), so a diff against its files is empty.
        vocab_text = json.dumps(self._vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        atomic_write_text(paths[0], vocab_text)
        atomic_write_text(paths[1], "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in self._merges))
        return paths

    def _family_config(self) -> dict[str, Any]:
        return {
            "add_prefix_space": self.add_prefix_space,
            "trim_offsets": self.trim_offsets,
            "errors": self.errors,
            "added_tokens_decoder": added_tokens_decoder(self),
        }

    def _fingerprint_settings(self) -> dict[str, Any]:
        return {"family": "bpe", "merges": self._merges, "add_prefix_space": self.add_prefix_space}

    # ------------------------------------------------------------------------------------------ training

    @classmethod
    def train(
        cls,
        files: str | Path | Iterable[str | Path],
        vocab_size: int = 50265,
        **options: Any,
    ) -> RobertaTokenizer:
        """Learn a byte-level BPE vocabulary from UTF-8 text files (``.gz`` read compressed).

        Options as in :meth:`train_from_iterator`.
        """
        return cls.train_from_iterator(training_lines(training_files(files)), vocab_size, **options)

    @classmethod
    def train_from_iterator(
        cls,
        texts: Iterable[str],
        vocab_size: int = 50265,
        *,
        min_frequency: int = 2,
        add_prefix_space: bool = False,
        show_progress: bool = False,
        save_to: str | Path | None = None,
        **unknown: Any,
    ) -> RobertaTokenizer:
        """Learn ``vocab_size`` tokens (256 bytes + merges + 5 specials) from ``texts``.

        ``min_frequency``: a merge must occur this often. ``save_to``: also write the tokenizer files
        (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json) there.
        The same texts and options always give the same vocab.json and merges.txt.
        """
        if unknown:
            raise BertForgeError(
                f"unknown BPE training option(s) {sorted(unknown)}; use min_frequency, add_prefix_space, "
                "show_progress, save_to"
            )
        if isinstance(texts, str):
            raise BertForgeError("texts must be an iterable of strings, not one str; wrap it in a list")
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if not isinstance(vocab_size, int) or vocab_size <= len(BPE_TRAIN_SPECIAL_TOKENS) + len(alphabet):
            raise BertForgeError(
                f"vocab_size={vocab_size!r} is too small: byte-level BPE needs the 256 byte tokens and the "
                f"{len(BPE_TRAIN_SPECIAL_TOKENS)} special tokens first (RoBERTa uses 50265)"
            )
        backend = Tokenizer(BPE(continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            show_progress=show_progress,
            special_tokens=list(BPE_TRAIN_SPECIAL_TOKENS),
            # All 256 bytes, seen or not, so no input ever needs <unk>.
            initial_alphabet=alphabet,
        )
        backend.train_from_iterator(texts, trainer=trainer)
        model = json.loads(backend.to_str())["model"]
        if len(model["vocab"]) <= len(BPE_TRAIN_SPECIAL_TOKENS) + len(alphabet) and not model["merges"]:
            logger.warning("the BPE training corpus produced no merges; the vocabulary is bytes only")
        vocab = backend.get_vocab(with_added_tokens=True)
        tokenizer = cls(vocab, _merges_of(model), add_prefix_space=add_prefix_space)
        logger.info("trained a byte-level BPE vocabulary of %d tokens", len(vocab))
        if save_to is not None:
            tokenizer.save_pretrained(save_to)
        return tokenizer
