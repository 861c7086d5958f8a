"""Tokenizers for the BERT family."""

from __future__ import annotations

from .base import FastTokenizer
from .bpe import RobertaTokenizer
from .unigram import AlbertTokenizer
from .wordpiece import BertTokenizer, DistilBertTokenizer

__all__ = ["AlbertTokenizer", "BertTokenizer", "DistilBertTokenizer", "FastTokenizer", "RobertaTokenizer"]
