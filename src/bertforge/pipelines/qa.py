"""Extractive question answering over contexts of any length (sliding windows, see
:mod:`bertforge.tasks.preprocess_qa` for the window and span rules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import BertForgeError
from ..tasks.preprocess_qa import QAPrediction, decode_qa, encode_qa
from .common import InferenceSettings, fit_to_model, run_features


def answer_questions(
    model: Any,
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    settings: InferenceSettings | None = None,
    n_best: int = 20,
    max_answer_length: int = 30,
    version_2: bool | None = None,
    null_score_diff_threshold: float = 0.0,
) -> list[QAPrediction]:
    """The best answer span and the n-best list for each (question, context).

    ``version_2`` (may answer "no answer"): None reads it from the model config's
    ``version_2_with_negative``, which ``bertforge finetune`` sets when it trains on SQuAD 2.0 data.
    """
    settings = fit_to_model(settings, model, "qa")
    if version_2 is None:
        version_2 = bool(getattr(model.config, "extra", {}).get("version_2_with_negative", False))
    features = encode_qa(
        questions, contexts, tokenizer, settings.max_length, settings.stride, settings.max_query_length
    )
    starts: list[np.ndarray] = [np.empty(0)] * len(features)
    ends: list[np.ndarray] = [np.empty(0)] * len(features)
    for index, (start_logits, end_logits) in run_features(
        model,
        features,
        tokenizer.pad_token_id,
        settings.batch_size,
        settings.dtype,
        outputs=("start_logits", "end_logits"),
        per_token=True,
    ):
        starts[index], ends[index] = start_logits, end_logits
    return decode_qa(
        features, starts, ends, contexts, n_best, max_answer_length, version_2, null_score_diff_threshold
    )


def qa(
    model: Any,
    tokenizer: Any,
    question: str,
    context: str,
    settings: InferenceSettings | None = None,
    top_k: int = 1,
    **options: Any,
) -> QAPrediction:
    """Answer one question from one context: ``.answer`` (text, start, end, score) and ``.n_best``
    (the ``top_k`` best spans; options: max_answer_length, version_2, null_score_diff_threshold)."""
    if not isinstance(question, str) or not isinstance(context, str):
        raise BertForgeError("qa takes one question and one context, both str")
    prediction = answer_questions(model, tokenizer, [question], [context], settings, **options)[0]
    prediction.n_best = prediction.n_best[:top_k]
    return prediction
