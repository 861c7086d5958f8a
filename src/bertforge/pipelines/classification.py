"""Sequence classification, regression and multiple choice over texts of any length.

A single text longer than the model's window is cut into overlapping windows ([CLS] window [SEP],
sharing ``stride`` tokens); the text's class probabilities are the mean of its windows'
probabilities (regression: the mean of the windows' values). A text that fits gives exactly the
plain, truncation-free result. Pairs are truncated ``longest_first`` to one window, because
windowing one segment of a pair would change what the pair means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import BertForgeError
from ..tasks.preprocess import encode_choices, encode_text_windows, encode_texts
from .common import InferenceSettings, fit_to_model, run_features, softmax


@dataclass
class LabelScore:
    """A label and its probability (regression: the predicted value, label "value")."""

    label: str
    score: float


def _is_regression(model: Any) -> bool:
    config = model.config
    return bool(config.problem_type == "regression" or config.num_labels == 1)


def sequence_scores(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    pairs: Sequence[str | None] | None = None,
    settings: InferenceSettings | None = None,
) -> np.ndarray:
    """(N, C) class probabilities, or (N,) values for a regression model."""
    settings = fit_to_model(settings, model)
    regression = _is_regression(model)
    pairs = list(pairs) if pairs is not None else [None] * len(texts)
    if len(pairs) != len(texts):
        raise BertForgeError(f"{len(texts)} texts but {len(pairs)} pair texts; pass one per text")
    single = [i for i, p in enumerate(pairs) if not p]
    paired = [i for i, p in enumerate(pairs) if p]
    features = encode_text_windows(
        [texts[i] for i in single], tokenizer, settings.max_length, settings.stride
    )
    for feature in features:
        feature["example_index"] = single[feature["example_index"]]
    pair_examples = [SimpleNamespace(text=texts[i], text_pair=pairs[i], label=None, line=0) for i in paired]
    for feature in encode_texts(pair_examples, tokenizer, settings.max_length):
        feature["example_index"] = paired[feature["example_index"]]
        features.append(feature)
    width = 1 if regression else model.config.num_labels
    totals = np.zeros((len(texts), width), dtype=np.float64)
    counts = np.zeros(len(texts))
    for index, (logits,) in run_features(
        model, features, tokenizer.pad_token_id, settings.batch_size, settings.dtype
    ):
        example = features[index]["example_index"]
        totals[example] += logits if regression else softmax(logits)
        counts[example] += 1
    scores = totals / counts[:, None]
    return scores[:, 0] if regression else scores


def classify(
    model: Any,
    tokenizer: Any,
    text: str | Sequence[str],
    text_pair: str | Sequence[str | None] | None = None,
    top_k: int | None = 1,
    settings: InferenceSettings | None = None,
) -> list[LabelScore] | list[list[LabelScore]]:
    """Labels with probabilities, best first (``top_k=None``: all labels), for a text or a list.

    Regression models give one ``LabelScore("value", prediction)`` per text.
    """
    single = isinstance(text, str)
    texts = [text] if isinstance(text, str) else list(text)
    if text_pair is None:
        pairs: list[str | None] = [None] * len(texts)
    elif isinstance(text_pair, str):
        pairs = [text_pair]
    else:
        pairs = list(text_pair)
    if top_k is not None and top_k < 1:
        raise BertForgeError(f"top_k ({top_k}) must be at least 1, or None for every label")
    scores = sequence_scores(model, tokenizer, texts, pairs, settings)
    results: list[list[LabelScore]] = []
    for row in scores:
        if np.ndim(row) == 0:
            results.append([LabelScore("value", float(row))])
            continue
        order = np.argsort(-row, kind="stable")[:top_k]
        results.append([LabelScore(model.config.id2label[int(i)], float(row[i])) for i in order])
    return results[0] if single else results


def choice_scores(
    model: Any, tokenizer: Any, examples: Sequence[Any], settings: InferenceSettings | None = None
) -> np.ndarray:
    """(N, C) probabilities over each multiple-choice example's endings (ChoiceExample-like)."""
    settings = fit_to_model(settings, model)
    features = encode_choices(examples, tokenizer, settings.max_length)
    scores = np.zeros((len(examples), len(examples[0].endings) if examples else 0))
    for index, (logits,) in run_features(
        model, features, tokenizer.pad_token_id, settings.batch_size, settings.dtype
    ):
        scores[features[index]["example_index"]] = softmax(logits)
    return scores
