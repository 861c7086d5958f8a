"""Tokenizers for the BERT family, and :func:`load_tokenizer` (``AutoTokenizer.from_pretrained``).

| family            | class                 | files                              | word start  |
|-------------------|-----------------------|------------------------------------|-------------|
| BERT WordPiece    | BertTokenizer         | vocab.txt / tokenizer.json         | not ``##``  |
| DistilBERT        | DistilBertTokenizer   | vocab.txt / tokenizer.json         | not ``##``  |
| RoBERTa BPE       | RobertaTokenizer      | vocab.json + merges.txt / t.json   | ``Ġ``       |
| ALBERT Unigram    | AlbertTokenizer       | spiece.model / tokenizer.json      | ``▁``       |
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import BertForgeError
from .base import FastTokenizer
from .bpe import MERGES_FILE, VOCAB_JSON_FILE, RobertaTokenizer
from .config_files import TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, read_json
from .unigram import SPIECE_FILE, AlbertTokenizer
from .wordpiece import VOCAB_FILE, BertTokenizer, DistilBertTokenizer

__all__ = [
    "AlbertTokenizer",
    "AutoTokenizer",
    "BertTokenizer",
    "DistilBertTokenizer",
    "FastTokenizer",
    "RobertaTokenizer",
    "load_tokenizer",
]

# transformers' tokenizer_class names (slow or Fast) -> ours.
TOKENIZER_CLASSES: dict[str, type[FastTokenizer]] = {
    "BertTokenizer": BertTokenizer,
    "DistilBertTokenizer": DistilBertTokenizer,
    "RobertaTokenizer": RobertaTokenizer,
    "AlbertTokenizer": AlbertTokenizer,
}
MODEL_TYPES: dict[str, type[FastTokenizer]] = {
    "bert": BertTokenizer,
    "distilbert": DistilBertTokenizer,
    "roberta": RobertaTokenizer,
    "albert": AlbertTokenizer,
}
_JSON_MODELS: dict[str, type[FastTokenizer]] = {
    "WordPiece": BertTokenizer,
    "BPE": RobertaTokenizer,
    "Unigram": AlbertTokenizer,
}
_SUPPORTED = (
    "BERT/DistilBERT WordPiece (vocab.txt), RoBERTa byte-level BPE (vocab.json + merges.txt), "
    "ALBERT Unigram (spiece.model), or a tokenizer.json of one of those"
)


def _json_model_type(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            model = json.load(handle).get("model") or {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise BertForgeError(f"cannot read {path}: {exc}; fix or delete the file") from exc
    # Old WordPiece files have no "type"; their vocab is a dict with ##-continuations.
    return model.get("type") or ("WordPiece" if isinstance(model.get("vocab"), dict) else None)


def tokenizer_class_for(path: str | os.PathLike[str]) -> type[FastTokenizer]:
    """The tokenizer class for a directory (or file): tokenizer_config.json's ``tokenizer_class``,
    else config.json's ``model_type``, else the vocabulary files present."""
    path = Path(path)
    if path.is_file():
        if path.name == TOKENIZER_FILE or path.suffix == ".json":
            found = _json_model_type(path)
            if found in _JSON_MODELS:
                return _JSON_MODELS[found]
            raise BertForgeError(f"{path} holds a {found or 'unknown'} model; supported: {_SUPPORTED}")
        if path.suffix == ".model":
            return AlbertTokenizer
        return BertTokenizer  # a vocab.txt, as BertTokenizer.from_pretrained has always accepted
    if not path.is_dir():
        raise BertForgeError(
            f"tokenizer path {path} does not exist; pass a directory with the tokenizer files "
            "(one written by save_pretrained or a Hugging Face model directory)"
        )
    if (path / TOKENIZER_CONFIG_FILE).is_file():
        name = read_json(path / TOKENIZER_CONFIG_FILE).get("tokenizer_class")
        if isinstance(name, str):
            base = name.removesuffix("Fast")
            if base not in TOKENIZER_CLASSES:
                raise BertForgeError(
                    f"{path / TOKENIZER_CONFIG_FILE} names tokenizer_class={name!r}, which bertforge does "
                    f"not have; supported: {', '.join(TOKENIZER_CLASSES)} ({_SUPPORTED})"
                )
            return TOKENIZER_CLASSES[base]
    if (path / "config.json").is_file():
        model_type = read_json(path / "config.json").get("model_type")
        if isinstance(model_type, str) and model_type in MODEL_TYPES:
            return MODEL_TYPES[model_type]
    if (path / VOCAB_FILE).is_file():
        return BertTokenizer
    if (path / VOCAB_JSON_FILE).is_file() and (path / MERGES_FILE).is_file():
        return RobertaTokenizer
    if (path / SPIECE_FILE).is_file():
        return AlbertTokenizer
    if (path / TOKENIZER_FILE).is_file():
        found = _json_model_type(path / TOKENIZER_FILE)
        if found in _JSON_MODELS:
            return _JSON_MODELS[found]
    names = ", ".join(sorted(p.name for p in path.iterdir())[:12]) or "nothing"
    raise BertForgeError(
        f"cannot tell which tokenizer {path} holds (found: {names}); supported: {_SUPPORTED}"
    )


def load_tokenizer(path: str | os.PathLike[str], **overrides: Any) -> FastTokenizer:
    """Load whichever family's tokenizer ``path`` holds (see :func:`tokenizer_class_for`)."""
    return tokenizer_class_for(path).from_pretrained(path, **overrides)  # type: ignore[no-any-return]


class AutoTokenizer:
    """transformers' spelling of :func:`load_tokenizer`: ``AutoTokenizer.from_pretrained(path)``."""

    from_pretrained = staticmethod(load_tokenizer)
