"""The attention of one text (or pair) as plain data for the viewer: tokens, flags and every layer's
and head's attention matrix.

:func:`attention_data` runs any family's encoder with ``output_attentions=True`` on one unpadded
input and returns a JSON-ready dict::

    {
      "text": str, "pair": str | None,
      "tokens": ["[CLS]", "the", "play", "##ing", ...],   # display strings (see below)
      "raw_tokens": ["[CLS]", "the", "play", "##ing", ...],  # the vocabulary's strings
      "ids": [int, ...],
      "special": [bool, ...],   # tokens the tokenizer adds: [CLS]/[SEP], <s>/</s>, padding
      "segment": [0 | 1, ...],  # which text of a pair a token belongs to (specials: the one they close)
      "continuation": [bool, ...],  # a sub-word piece that continues the previous word
      "layers": L, "heads": H, "length": T,
      "attention": [[[[float] * T] * T] * H] * L,  # attention[layer][head][query][key], rows sum to 1
      "model": {"name", "model_type", "architecture", "layers", "heads", "hidden_size", "max_tokens"},
    }

Display strings: the families mark word boundaries differently (WordPiece ``##ing`` continues a word,
byte-level BPE ``Ġthe`` and Unigram ``▁the`` start one). The viewer shows them one way for every
family: a word-start piece as its bare text and a piece that continues a word with a leading ``##``;
BPE's byte characters are decoded back to UTF-8.

The input is capped (:data:`DEFAULT_MAX_TOKENS` tokens, at most the model's position table): a
``layers x heads x T x T`` array grows fast, and beyond a few dozen tokens neither view is readable.
A longer input is refused with a message naming its length and the limit.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BertForgeError

DEFAULT_MAX_TOKENS = 64
MAX_TEXT_CHARS = 5000  # refused before tokenising: nobody reads attention over more


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet (printable stand-ins for the 256 bytes), inverted."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0x100))
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _scheme(tokenizer: Any) -> str:
    """How the tokenizer marks words: ``wordpiece`` (##), ``bpe`` (Ġ, byte-level) or ``unigram`` (▁)."""
    names = {cls.__name__ for cls in type(tokenizer).__mro__}
    if "RobertaTokenizer" in names:
        return "bpe"
    if "AlbertTokenizer" in names:
        return "unigram"
    return "wordpiece"


def _bare(token: str, scheme: str) -> str:
    """A token's text without its family's word marker (BPE bytes decoded)."""
    if scheme == "wordpiece":
        return token[2:] if token.startswith("##") and len(token) > 2 else token
    if scheme == "unigram":
        return token[1:] if token.startswith("▁") else token
    decoder = _byte_decoder()
    if all(ch in decoder for ch in token):
        text = bytes(decoder[ch] for ch in token).decode("utf-8", errors="replace")
        return text.strip(" ") or text
    return token


def _bpe_texts(raw: list[str], special: list[bool]) -> list[str | None]:
    """Byte-level BPE pieces decoded as one UTF-8 stream, so a character split over two pieces shows
    once, on the piece that completes it; a piece holding only the start of a character shows its
    bytes as ``<0xC3>`` (SentencePiece's notation for byte tokens). None: not a byte-level piece."""
    decoder = _byte_decoder()
    stream = codecs.getincrementaldecoder("utf-8")(errors="replace")
    texts: list[str | None] = []
    for token, is_special in zip(raw, special, strict=True):
        if is_special or not all(ch in decoder for ch in token):
            stream.reset()
            texts.append(None)
            continue
        data = bytes(decoder[ch] for ch in token)
        text = stream.decode(data)
        if not text:
            texts.append("".join(f"<0x{b:02X}>" for b in data))
        else:
            texts.append(text.strip(" ") or text)
    return texts


def display_tokens(
    tokenizer: Any, encoding: Any, text: str, pair: str | None, special: list[bool]
) -> tuple[list[str], list[bool]]:
    """(display strings, continuation flags) for one encoded row; see the module docstring."""
    raw = list(encoding.tokens()) if hasattr(encoding, "tokens") and callable(encoding.tokens) else None
    if raw is None:
        raw = tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    scheme = _scheme(tokenizer)
    try:
        words = encoding.word_ids()
        sequences = encoding.sequence_ids()
    except Exception:  # noqa: BLE001 -- a tokenizer without Rust encodings: fall back to markers
        words = sequences = None
    offsets = encoding.get("offset_mapping")
    decoded = _bpe_texts(raw, special) if scheme == "bpe" else [None] * len(raw)
    shown: list[str] = []
    continues: list[bool] = []
    for i, token in enumerate(raw):
        if special[i]:
            shown.append(token)
            continues.append(False)
            continue
        if words is not None and sequences is not None:
            cont = (
                i > 0
                and words[i] is not None
                and words[i] == words[i - 1]
                and sequences[i] == sequences[i - 1]
            )
        elif scheme == "wordpiece":
            cont = token.startswith("##")
        else:
            cont = i > 0 and not special[i - 1] and not token.startswith(("Ġ", "▁"))
        piece = decoded[i]
        bare = piece if piece is not None else _bare(token, scheme)
        if "\ufffd" in bare and offsets is not None and sequences is not None:  # not UTF-8: the source text
            start, end = offsets[i]
            source = pair if sequences[i] == 1 and pair is not None else text
            bare = source[start:end].strip() or bare
        if not bare.strip():
            bare = "\u2423"  # a lone word marker (Unigram's "▁"): show a visible space
        shown.append(f"##{bare}" if cont else bare)
        continues.append(bool(cont))
    return shown, continues


def encoder_of(model: Any) -> Any:
    """The base encoder of a model with a head (``model.bert``, ``model.roberta`` ...), else the model."""
    prefix = getattr(model, "base_model_prefix", None)
    inner = getattr(model, prefix, None) if isinstance(prefix, str) and prefix else None
    return inner if isinstance(inner, torch.nn.Module) else model


def model_info(
    model: Any, tokenizer: Any = None, name: str | None = None, max_tokens: int | None = None
) -> dict:
    """What the page shows about the model: its name, family, class and shape, and the token limit."""
    config = model.config
    if name is None:
        source = getattr(config, "extra", {}).get("_name_or_path") if hasattr(config, "extra") else None
        name = Path(str(source)).name if source else type(model).__name__
    return {
        "name": name,
        "model_type": getattr(config, "model_type", "bert"),
        "architecture": type(model).__name__,
        "layers": int(config.num_hidden_layers),
        "heads": int(config.num_attention_heads),
        "hidden_size": int(config.hidden_size),
        "max_tokens": token_limit(model, max_tokens),
    }


def token_limit(model: Any, max_tokens: int | None = None) -> int:
    """The most tokens the viewer takes: ``max_tokens`` (default 64), never past the position table."""
    table = token_limit_table(model)
    wanted = DEFAULT_MAX_TOKENS if max_tokens is None else int(max_tokens)
    if wanted < 3:
        raise BertForgeError(f"max_tokens={wanted} is too small; the viewer needs at least 3 tokens")
    return min(wanted, table)


def _device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


def _all_heads(encoder: Any, attentions: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """Each layer's (H, T, T) weights of the one input; a pruned head (config.pruned_heads) is shown
    in its original place as all zeros, so every layer has the config's H heads."""
    config: Any = getattr(encoder, "config", None)
    pruned = getattr(config, "pruned_heads", None) or {}
    layers = []
    for layer, weights in enumerate(attentions):
        probs = weights[0].float()
        if pruned.get(layer):
            from ..pruning import kept_heads

            full = probs.new_zeros(config.num_attention_heads, *probs.shape[1:])
            full[kept_heads(config, layer)] = probs
            probs = full
        layers.append(probs)
    return layers


def attention_data(
    model: Any,
    tokenizer: Any,
    text: str,
    pair: str | None = None,
    *,
    max_tokens: int | None = None,
    name: str | None = None,
    decimals: int = 4,
) -> dict[str, Any]:
    """Every layer's and head's attention over ``text`` (and ``pair``), as a JSON-ready dict.

    ``model`` is any family's model, base or with a head (its encoder is run); ``tokenizer`` its
    tokenizer. The input is one unpadded sequence, so no padding position appears. Weights are
    rounded to ``decimals`` places. An empty text, or one longer than ``max_tokens`` tokens (default
    :data:`DEFAULT_MAX_TOKENS`, at most the model's position table), is refused with a message.
    """
    if not isinstance(text, str) or not text.strip():
        raise BertForgeError("the text is empty; type a sentence to see its attention")
    if pair is not None and not isinstance(pair, str):
        raise BertForgeError(f"pair must be a string or None, not {type(pair).__name__}")
    pair = pair if pair and pair.strip() else None
    limit = token_limit(model, max_tokens)
    chars = len(text) + len(pair or "")
    if chars > MAX_TEXT_CHARS:
        raise BertForgeError(
            f"the text is {chars} characters; the viewer takes at most {limit} tokens, "
            f"so shorten it to a sentence or two"
        )
    with _quiet("bertforge.tokenization.base"):  # its "longer than model_max_length" is said below
        encoding = tokenizer(
            text, pair, return_offsets_mapping=True, return_token_type_ids=True, return_attention_mask=True
        )
    ids = list(encoding["input_ids"])
    if len(ids) > limit:
        table = token_limit_table(model)
        raise BertForgeError(
            f"the input is {len(ids)} tokens; the viewer shows at most {limit} "
            f"(a layers x heads x {limit} x {limit} array is already hard to read); shorten the text"
            + (f" or raise --max-tokens (up to the model's {table} positions)" if limit < table else "")
        )
    added = {getattr(tokenizer, f"{k}_token_id", None) for k in ("cls", "sep", "bos", "eos", "pad")} - {None}
    special = [i in added for i in ids]
    sequences = _sequence_ids(encoding, len(ids))
    segment = _segments(sequences)
    shown, continues = display_tokens(tokenizer, encoding, text, pair, special)

    encoder = encoder_of(model)
    device = _device(encoder)
    batch = {
        "input_ids": torch.tensor([ids], device=device),
        "attention_mask": torch.ones(1, len(ids), dtype=torch.long, device=device),
        "token_type_ids": torch.tensor([encoding.get("token_type_ids") or [0] * len(ids)], device=device),
    }
    from ..auto import forward_kwargs

    try:
        kwargs = forward_kwargs(encoder, batch)
    except (TypeError, ValueError):
        kwargs = {k: v for k, v in batch.items() if k != "token_type_ids"}
    was_training = getattr(encoder, "training", False)
    if hasattr(encoder, "eval"):
        encoder.eval()
    try:
        with torch.inference_mode():
            outputs = encoder(**kwargs, output_attentions=True)
    except TypeError as err:
        raise BertForgeError(
            f"{type(model).__name__} does not return attention weights ({err}); point the viewer at the "
            "PyTorch checkpoint (an ONNX export has none)"
        ) from None
    finally:
        if was_training and hasattr(encoder, "train"):
            encoder.train()
    attentions = getattr(outputs, "attentions", None)
    if not attentions:
        raise BertForgeError(
            f"{type(model).__name__} returned no attention weights; point the viewer at the PyTorch "
            "checkpoint (an ONNX export has none)"
        )
    stacked = torch.stack(_all_heads(encoder, attentions)).cpu().numpy()  # (L, H, T, T)
    layers, heads = int(stacked.shape[0]), int(stacked.shape[1])
    return {
        "text": text,
        "pair": pair,
        "tokens": shown,
        "raw_tokens": list(encoding.tokens()) if hasattr(encoding, "tokens") else shown,
        "ids": ids,
        "special": special,
        "segment": segment,
        "continuation": continues,
        "layers": layers,
        "heads": heads,
        "length": len(ids),
        "attention": np.round(stacked.astype(np.float64), decimals).tolist(),
        "model": model_info(model, tokenizer, name=name, max_tokens=max_tokens),
    }


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Drop one logger's warnings for the duration of the block."""
    logger = logging.getLogger(name)
    drop = logging.Filter(name="\0none")  # matches no record name: filters everything
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def token_limit_table(model: Any) -> int:
    config = model.config
    return int(getattr(config, "max_sequence_length", None) or config.max_position_embeddings)


def _sequence_ids(encoding: Any, length: int) -> list[int | None]:
    try:
        return list(encoding.sequence_ids())
    except Exception:  # noqa: BLE001
        types = encoding.get("token_type_ids")
        return list(types) if types else [0] * length


def _segments(sequences: list[int | None]) -> list[int]:
    """0/1 per token; a special token belongs to the text it follows ([CLS] to the first)."""
    segment: list[int] = []
    current = 0
    for seq in sequences:
        if seq is not None:
            current = int(seq)
        segment.append(current)
    return segment


_GENERIC_NAMES = {"", ".", "model", "models", "checkpoint", "final", "best", "output", "out"}


def display_name(checkpoint: str | Path) -> str:
    """A checkpoint's name for the page: its directory, with the parent's when that is generic
    (``.../all-MiniLM-L6-v2/model`` -> ``all-MiniLM-L6-v2/model``)."""
    path = Path(checkpoint).resolve()
    return f"{path.parent.name}/{path.name}" if path.name.lower() in _GENERIC_NAMES else path.name


def load_for_viz(checkpoint: str | Path, tokenizer: str | Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of any checkpoint for the viewer: the class it was saved as (base model or
    fine-tuned head, whose encoder the viewer runs), so every weight loads with no warning."""
    from ..auto import AutoModel, checkpoint_head_kind, checkpoint_model_type, model_class_for
    from ..pipelines.common import load_tokenizer

    path = Path(checkpoint)
    if not (path / "config.json").is_file():
        raise BertForgeError(
            f"{path} is not a checkpoint directory (no config.json); pass a directory saved by "
            "bertforge or transformers"
        )
    model_type = checkpoint_model_type(path)
    kind = checkpoint_head_kind(path)
    if kind is None:
        model = AutoModel.from_pretrained(path)
    else:
        model = model_class_for(model_type, kind).from_pretrained(path)
    model.eval()
    return model, load_tokenizer(tokenizer or path)
