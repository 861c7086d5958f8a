"""Token tagging (NER): per-word tags with scores, and entities with character spans.

A word's tag is the prediction at its first sub-word (the piece that carried the label in
training); the word's other pieces are merged into it. A sentence longer than the model's window
is cut into overlapping windows, and each token's prediction comes from the window in which it is
most central (most context on both sides; BERT's ``_check_is_max_context``), so no token is judged
from the edge of a window when a better view of it exists.

Entities are decoded from BIO or BIOES tags (chosen by the tag set: any S-/E- tag means BIOES), the
lenient way seqeval's default mode reads them: an I-X that does not continue an X entity starts one.
An entity's score is the mean probability of its words' tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..tasks.preprocess import encode_words, max_context_owner
from .common import InferenceSettings, fit_to_model, run_features, softmax


@dataclass
class Entity:
    """A named entity: its type, its text, its character span [start, end) and a score."""

    type: str
    text: str
    start: int
    end: int
    score: float


def word_tags(
    model: Any,
    tokenizer: Any,
    words: Sequence[Sequence[str]],
    settings: InferenceSettings | None = None,
) -> list[tuple[list[str], list[float]]]:
    """(tags, probabilities) per word of each pre-split sentence."""
    settings = fit_to_model(settings, model, "ner")
    features, word_maps = encode_words(words, tokenizer, settings.max_length, settings.stride)
    windows_of: dict[int, list[int]] = {}
    for index, feature in enumerate(features):
        windows_of.setdefault(feature["example_index"], []).append(index)
    owners = {
        example: max_context_owner([features[i]["window"] for i in indices], len(word_maps[example]))
        for example, indices in windows_of.items()
    }
    token_probs: list[dict[int, np.ndarray]] = [{} for _ in words]
    for index, (logits,) in run_features(
        model, features, tokenizer.pad_token_id, settings.batch_size, settings.dtype, per_token=True
    ):
        feature = features[index]
        example = feature["example_index"]
        window_number = windows_of[example].index(index)
        start, end = feature["window"]
        offset = feature["offset"]  # drop the specials around the window ([CLS] / [SEP], <s> / </s>)
        probs = softmax(logits[offset : offset + end - start])
        for position in range(start, end):
            if owners[example][position] == window_number:
                token_probs[example][position] = probs[position - start]
    id2label = model.config.id2label
    outside = "O" if "O" in id2label.values() else id2label[0]
    results = []
    for example, sentence in enumerate(words):
        tags, scores = [outside] * len(sentence), [1.0] * len(sentence)
        seen: set[int] = set()
        for position, word in enumerate(word_maps[example]):
            if word is None or word in seen:
                continue  # not the word's first piece
            seen.add(word)
            probs = token_probs[example][position]
            best = int(probs.argmax())
            tags[word], scores[word] = id2label[best], float(probs[best])
        results.append((tags, scores))
    return results


def entities_from_tags(
    tags: Sequence[str],
    spans: Sequence[tuple[int, int]],
    text: str,
    scores: Sequence[float] | None = None,
) -> list[Entity]:
    """Entities from per-word BIO/BIOES tags and each word's character span in ``text``."""
    scores = scores if scores is not None else [1.0] * len(tags)
    entities: list[Entity] = []
    current: tuple[str, int, list[int]] | None = None  # (type, first word, words)

    def close() -> None:
        if current is not None:
            kind, _, members = current
            start, end = spans[members[0]][0], spans[members[-1]][1]
            score = float(np.mean([scores[m] for m in members]))
            entities.append(Entity(kind, text[start:end], start, end, score))

    for index, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        if tag == "O" or not kind:
            close()
            current = None
            continue
        continues = current is not None and current[0] == kind and prefix in ("I", "E")
        if continues:
            current[2].append(index)  # type: ignore[index]
        else:
            close()
            current = (kind, index, [index])
        if prefix in ("E", "S"):
            close()
            current = None
    close()
    return entities


def ner(
    model: Any,
    tokenizer: Any,
    text: str | Sequence[str],
    settings: InferenceSettings | None = None,
) -> list[Entity] | list[list[Entity]]:
    """Entities in a text (or a list of texts), with types, texts, character spans and scores.

    Words are the tokenizer's pre-tokenization of the text (whitespace and punctuation splits, each
    Chinese character its own word), which is how CoNLL and CLUENER training data is split.
    """
    single = isinstance(text, str)
    texts = [text] if isinstance(text, str) else list(text)
    encodings = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    all_spans: list[list[tuple[int, int]]] = []
    for encoding in encodings:
        spans: dict[int, tuple[int, int]] = {}
        for word, (start, end) in zip(encoding.word_ids, encoding.offsets, strict=True):
            if word is not None:
                first = spans.get(word, (start, end))
                spans[word] = (min(first[0], start), max(first[1], end))
        all_spans.append([spans[w] for w in sorted(spans)])
    words = [[t[s:e] for s, e in spans] for t, spans in zip(texts, all_spans, strict=True)]
    tagged = word_tags(model, tokenizer, words, settings)
    results = [
        entities_from_tags(tags, spans, t, scores)
        for (tags, scores), spans, t in zip(tagged, all_spans, texts, strict=True)
    ]
    return results[0] if single else results
