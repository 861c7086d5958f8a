"""What every task pipeline shares: finding a checkpoint's task, loading its model with the
settings it was fine-tuned with, and running features through a model in length-sorted batches."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import BertConfig
from ..errors import BertForgeError
from ..tasks.preprocess import Feature
from ..tasks.preprocess_batches import collate, feature_length, sorted_batches

TASKS = ("classification", "regression", "ner", "qa", "multiple-choice")

# Architecture name in config.json -> the task whose head it is.
ARCHITECTURE_TASKS = {
    "BertForSequenceClassification": "classification",
    "BertForTokenClassification": "ner",
    "BertForQuestionAnswering": "qa",
    "BertForMultipleChoice": "multiple-choice",
}

# Window settings when a checkpoint does not say what it was fine-tuned with (BERT's recipe).
DEFAULT_MAX_LENGTH = {"qa": 384}
FINETUNE_CONFIG_FILE = "finetune_config.json"


@dataclass
class InferenceSettings:
    """Window sizes and batching for inference; defaults come from the checkpoint's fine-tuning."""

    max_length: int = 128
    stride: int = 32  # tokens shared by consecutive windows (doc_stride for QA)
    max_query_length: int = 64
    batch_size: int = 32
    dtype: torch.dtype | None = None  # autocast dtype, e.g. torch.bfloat16

    @classmethod
    def for_checkpoint(
        cls, path: str | os.PathLike[str] | None, task: str, **overrides: Any
    ) -> InferenceSettings:
        """Settings a checkpoint was fine-tuned with (``finetune_config.json``), else BERT's defaults."""
        settings = cls(max_length=DEFAULT_MAX_LENGTH.get(task, 128), stride=128 if task == "qa" else 32)
        saved = Path(path) / FINETUNE_CONFIG_FILE if path is not None else None
        if saved is not None and saved.is_file():
            data = json.loads(saved.read_text(encoding="utf-8"))
            settings.max_length = int(data.get("max_seq_length", settings.max_length))
            if task == "qa":
                settings.stride = int(data.get("doc_stride", settings.stride))
                settings.max_query_length = int(data.get("max_query_length", settings.max_query_length))
            else:
                settings.stride = int(data.get("window_stride", settings.stride))
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        return settings


def fit_to_model(
    settings: InferenceSettings | None, model: Any, task: str = "classification"
) -> InferenceSettings:
    """The settings (defaults when None) with windows no longer than the model's position table."""
    settings = settings or InferenceSettings.for_checkpoint(None, task)
    limit = int(model.config.max_position_embeddings)
    if settings.max_length > limit:
        settings = dataclasses.replace(settings, max_length=limit)
        if task == "qa":
            settings.stride = min(settings.stride, limit // 4)
    return settings


def detect_task(path: str | os.PathLike[str]) -> str:
    """The task of a fine-tuned checkpoint, from config.json's ``architectures`` and ``problem_type``."""
    config = BertConfig.from_pretrained(path)
    architectures = config.extra.get("architectures") or []
    for name in architectures:
        if name in ARCHITECTURE_TASKS:
            task = ARCHITECTURE_TASKS[name]
            if task == "classification" and (config.problem_type == "regression" or config.num_labels == 1):
                return "regression"
            return task
    raise BertForgeError(
        f"cannot tell the task of {path}: config.json architectures is {architectures or 'missing'}; "
        f"pass --task (one of {', '.join(TASKS)})"
    )


def model_class(task: str) -> Any:
    from .. import heads

    if task not in TASKS:
        raise BertForgeError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    name = {
        "classification": "BertForSequenceClassification",
        "regression": "BertForSequenceClassification",
    }.get(task, {v: k for k, v in ARCHITECTURE_TASKS.items()}.get(task, ""))
    return getattr(heads, name)  # type: ignore[no-any-return]


def load_task_model(path: str | os.PathLike[str], task: str | None = None) -> tuple[Any, str]:
    """(model in eval mode, task) for a fine-tuned checkpoint; the task is detected when not given."""
    task = task or detect_task(path)
    return model_class(task).from_pretrained(path), task


def autocast(dtype: torch.dtype | None, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16/fp16 autocast on the model's device, or nothing for float32."""
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def run_features(
    model: Any,
    features: Sequence[Feature],
    pad_token_id: int,
    batch_size: int = 32,
    dtype: torch.dtype | None = None,
    outputs: tuple[str, ...] = ("logits",),
    per_token: bool = False,
) -> Iterator[tuple[int, list[np.ndarray]]]:
    """Yield (feature index, [each output for that feature, float32]); ``per_token`` outputs are
    (T, ...) and cut to the feature's length.

    Batches go longest first, so padding is minimal; model is any module that takes
    input_ids/attention_mask/token_type_ids and returns the named fields (bertforge or transformers).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    lengths = [feature_length(f) for f in features]
    try:
        with torch.inference_mode(), autocast(dtype, device):
            for indices in sorted_batches(lengths, batch_size):
                batch = collate([features[i] for i in indices], pad_token_id)
                out = model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    token_type_ids=batch["token_type_ids"].to(device),
                )
                tensors = [getattr(out, name).float().cpu().numpy() for name in outputs]
                for row, index in enumerate(indices):
                    length = lengths[index]
                    yield index, [t[row, :length] if per_token else t[row] for t in tensors]
    finally:
        model.train(was_training)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
