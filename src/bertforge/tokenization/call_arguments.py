"""What a tokenizer call accepts, with transformers' meaning: one text, a pair, a batch of texts or
pairs, pre-split words, and the padding / truncation / max_length arguments.

Each function checks its arguments and names the bad one; :meth:`.base.FastTokenizer.__call__`
then hands the result to the Rust encoder.
"""

from __future__ import annotations

from typing import Any

from ..errors import BertForgeError

# transformers treats a model_max_length above this as "no limit" (it stores 1e30 when none is known).
LARGE_INTEGER = int(1e20)
_PADDING = ("longest", "max_length", "do_not_pad")
_TRUNCATION = ("longest_first", "only_first", "only_second", "do_not_truncate")


def _strategy(value: Any) -> Any:
    # transformers' PaddingStrategy/TruncationStrategy are str enums hashed by name, so compare by value.
    return getattr(value, "value", value)


def _is_pair(item: Any) -> bool:
    return isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, str) for x in item)


def text_inputs(text: Any, text_pair: Any, batched: bool) -> list[Any]:
    """What the encoder takes for one text (or pair) or a batch of texts (or pairs, also given as
    (text, text_pair) tuples), after checking that every text is a str."""
    if not batched:
        if not isinstance(text, str):
            raise BertForgeError(f"text must be a str or a list of str, not {type(text).__name__}")
        if text_pair is not None and not isinstance(text_pair, str):
            raise BertForgeError(f"text_pair for a single text must be a str, not {type(text_pair).__name__}")
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
        got = f"{len(text_pair)} items" if isinstance(text_pair, (list, tuple)) else type(text_pair).__name__
        raise BertForgeError(
            f"text has {len(text)} items but text_pair has {got}; pass one pair text per text, "
            "as a list of the same length"
        )
    bad = next((i for i, t in enumerate(text_pair) if not isinstance(t, str)), None)
    if bad is not None:
        raise BertForgeError(f"text_pair[{bad}] is a {type(text_pair[bad]).__name__}; pairs must be str")
    return list(zip(text, text_pair, strict=True))


def word_inputs(text: Any, text_pair: Any, batched: bool) -> list[Any]:
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
        raise BertForgeError(f"text has {len(texts)} items but text_pair has {len(pairs)}; pass one per text")
    return [(list(a), list(b)) for a, b in zip(texts, pairs, strict=True)]


def resolve_padding_truncation(
    padding: Any, truncation: Any, max_length: int | None, model_max_length: int
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
        limit = model_max_length if model_max_length <= LARGE_INTEGER else None
        if pad == "max_length":
            pad, max_length = ("max_length", limit) if limit else ("do_not_pad", None)
        if trunc != "do_not_truncate":
            trunc, max_length = (trunc, limit) if limit else ("do_not_truncate", max_length)
    return pad, trunc, max_length
