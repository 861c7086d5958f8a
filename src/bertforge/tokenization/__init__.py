"""Tokenizers for the BERT family."""

from __future__ import annotations

from .wordpiece import BertTokenizer

__all__ = ["BertTokenizer"]
