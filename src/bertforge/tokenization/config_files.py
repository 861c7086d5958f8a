"""The files beside a tokenizer's vocabulary: tokenizer_config.json, special_tokens_map.json and
tokenizer.json, by name, and what every family reads from or writes to them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BertForgeError

if TYPE_CHECKING:
    from .base import FastTokenizer

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
TOKENIZER_FILE = "tokenizer.json"
# transformers' SPECIAL_TOKENS_ATTRIBUTES order, so all_special_ids lines up with theirs.
ALL_SPECIAL_TOKEN_KEYS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; anything else is a BertForgeError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BertForgeError(f"cannot read {path}: {exc}; fix or delete the file") from exc
    if not isinstance(data, dict):
        raise BertForgeError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def read_settings(directory: Path, keys: Sequence[str]) -> dict[str, Any]:
    """The ``keys`` found in special_tokens_map.json and tokenizer_config.json (the latter wins)."""
    config: dict[str, Any] = {}
    for name in (SPECIAL_TOKENS_MAP_FILE, TOKENIZER_CONFIG_FILE):
        if (directory / name).is_file():
            config.update(read_json(directory / name))
    settings = {key: config[key] for key in keys if key in config}
    for key in ALL_SPECIAL_TOKEN_KEYS:  # saved AddedTokens look like {"content": "[UNK]", ...}
        if isinstance(settings.get(key), dict):
            settings[key] = settings[key].get("content")
    return settings


def added_tokens_decoder(tokenizer: FastTokenizer) -> dict[str, dict[str, Any]]:
    """transformers' ``added_tokens_decoder`` entry: how each special token matches raw text."""
    entries: dict[str, dict[str, Any]] = {}
    for token in tokenizer.all_special_tokens:
        added = tokenizer._added_token(token)
        entries[str(tokenizer.get_vocab()[token])] = {
            "content": token,
            "lstrip": added.lstrip,
            "normalized": added.normalized,
            "rstrip": added.rstrip,
            "single_word": added.single_word,
            "special": True,
        }
    return dict(sorted(entries.items(), key=lambda item: int(item[0])))
