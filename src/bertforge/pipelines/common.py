"""What every task pipeline shares: finding a checkpoint's task, loading its model (any family,
through :mod:`bertforge.auto`) and its tokenizer (:func:`load_tokenizer`) with the settings it was
fine-tuned with, and running features through a model in length-sorted batches."""

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

from ..auto import checkpoint_head_kind, checkpoint_model_type, forward_kwargs, model_class_for
from ..errors import BertForgeError
from ..inference import inference_model
from ..ops import unpadded
from ..tasks.arguments import argument
from ..tasks.preprocess import Feature
from ..tasks.preprocess_batches import collate, feature_length, sorted_batches
from ..tasks.registry import get_task, task_for_head, task_names

FINETUNE_CONFIG_FILE = "finetune_config.json"
# The batch entries a model may take; forward_kwargs keeps those its forward names.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def load_tokenizer(path: str | os.PathLike[str]) -> Any:
    """The tokenizer saved in ``path``, of the checkpoint's family (WordPiece, BPE, Unigram).

    Uses :func:`bertforge.tokenization.load_tokenizer` where that package exists, else BERT's
    WordPiece tokenizer; every command and pipeline loads its tokenizer through here.
    """
    try:
        from ..tokenization import load_tokenizer as family_tokenizer
    except ImportError:
        from ..tokenizer import BertTokenizer

        return BertTokenizer.from_pretrained(path)
    return family_tokenizer(path)


@dataclass
class InferenceSettings:
    """Window sizes and batching for inference; defaults come from the checkpoint's fine-tuning."""

    max_length: int = 128
    stride: int = 32  # tokens shared by consecutive windows (doc_stride for QA)
    max_query_length: int = 64
    batch_size: int = 32
    dtype: torch.dtype | None = None  # the matmuls' dtype, e.g. torch.bfloat16 (bertforge.inference)

    @classmethod
    def for_checkpoint(
        cls, path: str | os.PathLike[str] | None, task: str, **overrides: Any
    ) -> InferenceSettings:
        """Settings a checkpoint was fine-tuned with (``finetune_config.json``), else the task's defaults."""
        definition = get_task(task)
        settings = cls(max_length=definition.max_length, stride=definition.stride)
        saved = Path(path) / FINETUNE_CONFIG_FILE if path is not None else None
        if saved is not None and saved.is_file():
            data = json.loads(saved.read_text(encoding="utf-8"))
            settings.max_length = int(data.get("max_seq_length", settings.max_length))
            settings.stride = int(data.get(definition.stride_setting, settings.stride))
            settings.max_query_length = int(data.get("max_query_length", settings.max_query_length))
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        return settings


def position_limit(config: Any) -> int:
    """The longest input a model config allows (RoBERTa's table is 2 longer than that)."""
    # transformers' configs (benchmarks compare against them) have no max_sequence_length.
    return int(getattr(config, "max_sequence_length", config.max_position_embeddings))


def check_vocabulary(tokenizer: Any, config: Any, tokenizer_path: str | os.PathLike[str]) -> None:
    """Refuse a tokenizer with more tokens than the model has embedding rows: its extra ids would
    fail the embedding lookup in the middle of a run, on the first text that holds one."""
    rows, tokens = int(config.vocab_size), len(tokenizer)
    if tokens > rows:
        raise BertForgeError(
            f"the tokenizer in {tokenizer_path} has {tokens} tokens but the model has {rows} embedding "
            "rows (vocab_size in config.json); use the tokenizer the model was trained with"
        )


def torch_device(name: str, setting: str = "device") -> torch.device:
    """``name`` as a torch device, or an error naming ``setting`` when torch has no such device here."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise BertForgeError(
            f"{argument(setting, name)} is not a torch device; pass cpu, or cuda (cuda:N) on a GPU machine"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BertForgeError(
            f"{argument(setting, name)}: no CUDA GPU is visible to this torch build; "
            f"pass {argument(setting, 'cpu')}"
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise BertForgeError(
            f"{argument(setting, name)}: this machine has {torch.cuda.device_count()} GPU(s), "
            f"numbered from 0; pass {argument(setting, 'cuda:0')}"
        )
    return device


def fit_to_model(
    settings: InferenceSettings | None, model: Any, task: str = "classification"
) -> InferenceSettings:
    """The settings (defaults when None) with windows no longer than the model's position table."""
    settings = settings or InferenceSettings.for_checkpoint(None, task)
    limit = position_limit(model.config)
    if settings.max_length > limit:
        settings = dataclasses.replace(settings, max_length=limit)
        if get_task(task).stride_setting == "doc_stride":  # question + context windows
            settings.stride = min(settings.stride, limit // 4)
    return settings


def detect_task(path: str | os.PathLike[str]) -> str:
    """The task of a fine-tuned checkpoint of any family, from config.json's ``architectures`` (the
    head kind, :func:`bertforge.auto.checkpoint_head_kind`) and ``problem_type`` / labels."""
    from ..auto import AutoConfig

    kind = checkpoint_head_kind(path)
    task = task_for_head(kind, AutoConfig.from_pretrained(path)) if kind is not None else None
    if task is None:
        config = AutoConfig.from_pretrained(path)
        architectures = config.extra.get("architectures") or []
        raise BertForgeError(
            f"cannot tell the task of {path}: config.json architectures is {architectures or 'missing'}; "
            f"pass --task (one of {', '.join(task_names())})"
        )
    return task


def model_class(task: str, model_type: str = "bert") -> Any:
    """The class of ``task``'s head in the ``model_type`` family (its sequence-classification model ...)."""
    return model_class_for(model_type, get_task(task).head)


def load_task_model(path: str | os.PathLike[str], task: str | None = None) -> tuple[Any, str]:
    """(model, task) for a fine-tuned checkpoint of any family; the task is detected when not given."""
    from ..export.runtime import OnnxModel, is_onnx_export

    task = task or detect_task(path)
    if is_onnx_export(path):  # a `bertforge export` directory: onnxruntime behind the model's API
        return OnnxModel.from_pretrained(path), task
    return model_class(task, checkpoint_model_type(path)).from_pretrained(path), task


def autocast(dtype: torch.dtype | None, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16/fp16 autocast on the model's device, or nothing for float32: for training steps.
    Inference converts the weights once instead (:func:`bertforge.inference.inference_model`)."""
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

    Batches go longest first, so padding is minimal; model is any module that takes input_ids and
    attention_mask (token_type_ids where its forward names them: not DistilBERT) and returns the
    named fields (bertforge of any family, or transformers). ``dtype`` (bf16) runs the model's
    converted copy, made on the first call and reused (:func:`bertforge.inference.inference_model`);
    no autocast.
    """
    model = inference_model(model, dtype)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    lengths = [feature_length(f) for f in features]
    try:
        # Unpadded: every output is read at real tokens only (per_token ones are cut to the length).
        with torch.inference_mode(), unpadded():
            for indices in sorted_batches(lengths, batch_size):
                batch = collate([features[i] for i in indices], pad_token_id)
                inputs = {k: batch[k].to(device) for k in MODEL_INPUTS if k in batch}
                out = model(**forward_kwargs(model, inputs))
                tensors = [getattr(out, name).float().cpu().numpy() for name in outputs]
                for row, index in enumerate(indices):
                    length = lengths[index]
                    yield index, [t[row, :length] if per_token else t[row] for t in tensors]
    finally:
        model.train(was_training)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
