"""Compatibility module: the tokenizers now live in :mod:`bertforge.tokenization`.

``from bertforge.tokenizer import BertTokenizer`` (and the helpers below) keep working unchanged.
"""

from __future__ import annotations

from .encoding import BatchEncoding
from .tokenization.base import FastTokenizer
from .tokenization.call_arguments import LARGE_INTEGER
from .tokenization.config_files import SPECIAL_TOKENS_MAP_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE
from .tokenization.wordpiece import (
    SPECIAL_TOKEN_KEYS,
    TRAIN_SPECIAL_TOKENS,
    VOCAB_FILE,
    BertTokenizer,
    DistilBertTokenizer,
    load_vocab,
)

__all__ = [
    "LARGE_INTEGER",
    "SPECIAL_TOKENS_MAP_FILE",
    "SPECIAL_TOKEN_KEYS",
    "TOKENIZER_CONFIG_FILE",
    "TOKENIZER_FILE",
    "TRAIN_SPECIAL_TOKENS",
    "VOCAB_FILE",
    "BatchEncoding",
    "BertTokenizer",
    "DistilBertTokenizer",
    "FastTokenizer",
    "load_vocab",
]
