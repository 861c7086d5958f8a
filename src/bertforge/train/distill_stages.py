"""The two stages of task distillation (:mod:`.distill_task`), and the teacher's outputs they learn from.

* :class:`TeacherOutputs`: the teacher's prediction-layer outputs for every training feature,
  computed once under inference mode and kept in a numpy memmap on disk, so that the epochs (and the
  seeds) of the prediction stage read them instead of running the teacher again. A manifest holding a
  fingerprint of the teacher and of the features is written last; a cache whose fingerprint differs
  (another teacher, other data, another dtype) is recomputed, never reused.
* :class:`PredictionLoss`: the prediction stage's loss, a :data:`~.finetune.LossFunction` for the
  fine-tuning loop: ``alpha`` * soft targets + (1 - ``alpha``) * the student's own loss on the gold
  labels. The soft part depends on the head (:data:`SOFT_KINDS`): KL at temperature T (× T²) of the
  class or choice distributions; MSE to the teacher's value for regression; the per-token KL over the
  real (non-padding) tokens for tagging; the mean of the start and end KLs over the real tokens of
  the window for extractive QA. A batch of transfer data (unlabelled features, :mod:`.distill_transfer`)
  learns the soft targets alone.
* :class:`IntermediateLoss` and :func:`intermediate_stage`: TinyBERT's first stage. The student's
  embedding output and each layer's output follow the mapped teacher layer's (MSE, through one learned
  projection shared by all layers when the widths differ) and each layer's attention distributions
  follow the mapped teacher layer's (KL). The teacher runs per batch: its every layer's hidden states
  are far too large to cache. The projection is dropped after the stage; the student stays a plain model.

Shapes: B batch, T sequence length, K outputs per row (classes, choices, tags; 2 for QA's start/end).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..auto import forward_kwargs
from ..fileio import atomic_open, atomic_path, atomic_write_json
from ..pipelines.common import MODEL_INPUTS, run_features
from ..tasks.preprocess import Feature
from ..tasks.preprocess_batches import collate, feature_length, training_batches
from .distill_losses import attention_kl_loss, hidden_mse_loss, soft_target_loss
from .finetune import training_step
from .finetune_config import FinetuneConfig
from .logging import progress_bar
from .optim import OptimConfig, ScheduleConfig, build_optimizer, build_scheduler

logger = logging.getLogger(__name__)

# How a head's outputs are distilled: "classes" (sequence classification, multiple choice),
# "value" (regression), "tokens" (token classification), "span" (extractive QA).
SOFT_KINDS = ("classes", "value", "tokens", "span")
OUTPUTS_FILE = "teacher_outputs.npy"
OFFSETS_FILE = "teacher_offsets.npy"
MANIFEST_FILE = "teacher_outputs.json"
# Logit given to padded positions of QA windows: exp() of it is exactly 0 in float32 and bfloat16,
# yet it stays finite, so the KL's 0 * (a - b) terms are 0 and not NaN.
_PADDED_LOGIT = -1e4
_LABEL_KEYS = ("labels", "start_positions", "end_positions")
_INPUT_KEYS = ("input_ids", "token_type_ids")


# ------------------------------------------------------------------------------ teacher outputs
@dataclass
class TeacherOutputs:
    """Feature i's outputs are ``rows[offsets[i]:offsets[i + 1]]``: one row (K,) for sequence heads,
    one per token (T_i, K) for tagging and QA; float32, memory-mapped."""

    rows: np.ndarray  # (R, K)
    offsets: np.ndarray  # (N + 1,)
    kind: str

    def batch(self, indices: Sequence[int], device: torch.device) -> torch.Tensor:
        """The outputs of a batch of features: (B, K), (sum T_i, K) for tagging (the rows of the real
        tokens, in the order ``logits[attention_mask]`` gives), or (B, T, 2) padded for QA."""
        parts = [self.rows[self.offsets[i] : self.offsets[i + 1]] for i in indices]
        if self.kind == "span":
            width = max(len(p) for p in parts)
            padded = np.full((len(parts), width, 2), _PADDED_LOGIT, dtype=np.float32)
            for row, part in enumerate(parts):
                padded[row, : len(part)] = part
            return torch.from_numpy(padded).to(device)
        return torch.from_numpy(np.concatenate(parts)).to(device)


def _fingerprint(teacher_dir: str, features: Sequence[Feature], kind: str, dtype: torch.dtype | None) -> str:
    """What the cached outputs depend on: the teacher's files (config, weights by size and time),
    the soft-target kind, the dtype and every feature's token ids and segment ids."""
    digest = hashlib.sha256(f"{kind}|{dtype}".encode())
    for path in sorted(Path(teacher_dir).iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    for feature in features:
        for key in ("input_ids", "token_type_ids"):
            digest.update(np.asarray(feature.get(key, []), dtype=np.int64).tobytes() + b"|")
    return digest.hexdigest()


def teacher_outputs(
    teacher: Any,
    teacher_dir: str,
    features: Sequence[Feature],
    kind: str,
    directory: Path,
    *,
    pad_token_id: int,
    batch_size: int,
    dtype: torch.dtype | None,
) -> TeacherOutputs:
    """The teacher's outputs for ``features``, from the cache in ``directory`` when its fingerprint
    matches, else computed once (inference mode, autocast to ``dtype``) and written there."""
    fingerprint = _fingerprint(teacher_dir, features, kind, dtype)
    manifest_path = directory / MANIFEST_FILE
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("fingerprint") == fingerprint:
            logger.info("teacher outputs reused from %s", directory)
            return _load(directory, kind)
    manifest_path.unlink(missing_ok=True)  # the manifest goes first, so a torn cache is never trusted
    directory.mkdir(parents=True, exist_ok=True)
    per_token = kind in ("tokens", "span")
    names = ("start_logits", "end_logits") if kind == "span" else ("logits",)
    counts = [feature_length(f) if per_token else 1 for f in features]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # Inputs only: transfer features carry no labels, and collate pads a key only every row has.
    inputs = [{k: f[k] for k in _INPUT_KEYS if k in f} for f in features]
    results = run_features(
        teacher, inputs, pad_token_id, batch_size, dtype, outputs=names, per_token=per_token
    )
    with atomic_path(directory / OUTPUTS_FILE) as tmp:
        rows: np.memmap | None = None
        for index, arrays in results:
            # QA: two (T_i,) arrays -> (T_i, 2); classes: (K,) -> (1, K); tagging: (T_i, K) as is
            value = np.stack(arrays, axis=-1) if kind == "span" else arrays[0].reshape(counts[index], -1)
            if rows is None:
                rows = np.lib.format.open_memmap(
                    tmp, mode="w+", dtype=np.float32, shape=(int(offsets[-1]), value.shape[-1])
                )
            rows[offsets[index] : offsets[index + 1]] = value
        assert rows is not None
        rows.flush()
        del rows
    with atomic_open(directory / OFFSETS_FILE, "wb") as handle:
        np.save(handle, offsets)
    atomic_write_json(manifest_path, {"fingerprint": fingerprint, "kind": kind, "features": len(features)})
    logger.info("teacher outputs for %d features cached in %s", len(features), directory)
    return _load(directory, kind)


def _load(directory: Path, kind: str) -> TeacherOutputs:
    return TeacherOutputs(
        np.load(directory / OUTPUTS_FILE, mmap_mode="r"), np.load(directory / OFFSETS_FILE), kind
    )


# ----------------------------------------------------------------------------- prediction stage
def soft_loss(
    kind: str, output: Any, teacher: torch.Tensor, attention_mask: torch.Tensor, temperature: float
) -> torch.Tensor:
    """The soft-target part of the prediction stage for one batch of student ``output``."""
    if kind == "classes":  # (B, K) class or choice scores
        return soft_target_loss(output.logits, teacher, temperature)
    if kind == "value":  # (B, 1) regression: the teacher's prediction is the target
        return F.mse_loss(output.logits.float().reshape(-1), teacher.reshape(-1))
    real = attention_mask.bool()
    if kind == "tokens":  # (B, T, K) -> the real tokens' rows, as the teacher's were cached
        return soft_target_loss(output.logits[real], teacher, temperature)
    # span: a distribution over the window's real tokens for the start, another for the end
    start = output.start_logits.masked_fill(~real, _PADDED_LOGIT)
    end = output.end_logits.masked_fill(~real, _PADDED_LOGIT)
    return (
        soft_target_loss(start, teacher[..., 0], temperature)
        + soft_target_loss(end, teacher[..., 1], temperature)
    ) / 2


class PredictionLoss:
    """``alpha`` * soft targets + (1 - ``alpha``) * the model's own loss on the gold labels, for the
    fine-tuning loop (the batch's ``feature_index`` finds the teacher's cached outputs).

    Features from ``labelled`` on are transfer data, without labels: their batches (never mixed
    with labelled ones, :func:`~bertforge.tasks.preprocess_batches.training_batches`) learn the soft
    targets alone, at full weight, as DistilBERT's and TinyBERT's task stages learn their extra data."""

    def __init__(
        self, outputs: TeacherOutputs, alpha: float, temperature: float, labelled: int | None = None
    ) -> None:
        self.outputs, self.alpha, self.temperature = outputs, alpha, temperature
        self.labelled = len(outputs.offsets) - 1 if labelled is None else labelled

    def __call__(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        indices = batch["feature_index"].tolist()
        transfer = min(indices) >= self.labelled
        assert transfer or max(indices) < self.labelled, "a batch mixes labelled and transfer features"
        alpha = 1.0 if transfer else self.alpha
        keys = MODEL_INPUTS + (_LABEL_KEYS if alpha < 1 else ())
        output = model(**forward_kwargs(model, {k: v for k, v in batch.items() if k in keys}))
        teacher = self.outputs.batch(indices, batch["input_ids"].device)
        loss = alpha * soft_loss(
            self.outputs.kind, output, teacher, batch["attention_mask"], self.temperature
        )
        if alpha < 1:
            loss = loss + (1 - alpha) * output.loss
        return loss


# --------------------------------------------------------------------------- intermediate stage
def layer_count(config: Any) -> int:
    """Layer calls of an encoder: hidden_states has one more entry (the embeddings)."""
    return int(config.num_hidden_layers) * int(getattr(config, "inner_group_num", 1))


def uniform_layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    """TinyBERT's uniform mapping, 0-based: student layer i learns from teacher layer
    ceil((i + 1) * N / M) - 1 (12 -> 4: 2, 5, 8, 11; 2 -> 4: 0, 0, 1, 1): the last from the last."""
    return [-(-(i + 1) * teacher_layers // student_layers) - 1 for i in range(student_layers)]


def _teacher_autocast(
    dtype: torch.dtype | None, device: torch.device
) -> contextlib.AbstractContextManager[Any]:
    """The teacher's precision inside the student's step, whatever autocast the step runs under."""
    if dtype is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)


def _width(model: Any) -> int:
    return int(model.config.hidden_size)


class IntermediateLoss(nn.Module):
    """``forward(batch)`` = the hidden-state and attention losses of the student (``self.model``)
    against the teacher along ``layer_map``. Holds the projection (student width -> teacher width,
    when they differ), so one optimizer and one clipping cover it; the teacher is held outside the
    module tree (never optimised or saved)."""

    def __init__(
        self, student: nn.Module, teacher: nn.Module, layer_map: list[int], teacher_dtype: torch.dtype | None
    ) -> None:
        super().__init__()
        self.model = student
        self.__dict__["teacher"] = teacher  # a plain attribute, not a registered submodule
        self.layer_map, self.teacher_dtype = layer_map, teacher_dtype
        s_width, t_width = _width(student), _width(teacher)
        # TinyBERT's W_h: one (H_s -> H_t) map for every layer; none needed at equal widths
        self.projection = nn.Linear(s_width, t_width) if s_width != t_width else nn.Identity()

    teacher: nn.Module

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k in MODEL_INPUTS}
        device = batch["input_ids"].device
        with torch.inference_mode(), _teacher_autocast(self.teacher_dtype, device):
            taught = self.teacher(
                **forward_kwargs(self.teacher, inputs), output_hidden_states=True, output_attentions=True
            )
        learnt = self.model(
            **forward_kwargs(self.model, inputs), output_hidden_states=True, output_attentions=True
        )
        mask = batch["attention_mask"]
        mask = mask.reshape(-1, mask.shape[-1])  # multiple choice: (B, C, T) -> (B*C, T), as the encoder runs
        # Clones leave inference mode: autograd may save the targets for the backward.
        loss = hidden_mse_loss(
            self.projection(learnt.hidden_states[0]), taught.hidden_states[0].clone(), mask
        )
        for student_layer, teacher_layer in enumerate(self.layer_map):
            loss = loss + hidden_mse_loss(
                self.projection(learnt.hidden_states[student_layer + 1]),
                taught.hidden_states[teacher_layer + 1].clone(),
                mask,
            )
            loss = loss + attention_kl_loss(
                learnt.attentions[student_layer], taught.attentions[teacher_layer].clone(), mask
            )
        return loss


def _stage_loss(stage: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return stage(batch)  # type: ignore[no-any-return]


def intermediate_stage(
    student: nn.Module,
    teacher: nn.Module,
    features: Sequence[Feature],
    pad_token_id: int,
    config: FinetuneConfig,
    *,
    epochs: float,
    layer_map: list[int],
    teacher_dtype: torch.dtype | None,
    progress: bool = True,
    labelled: int | None = None,
) -> list[float]:
    """Train ``student`` (in place) for ``epochs`` on the intermediate losses, with the run's batch
    size, learning rate, warm-up, clipping and batch order; returns the loss of every step.
    Features from ``labelled`` on (transfer data) are batched apart, as in the prediction stage."""
    stage = IntermediateLoss(student, teacher, layer_map, teacher_dtype).to(config.device)
    lengths = [feature_length(f) for f in features]

    def epoch_batches(epoch: int) -> list[list[int]]:
        return training_batches(
            lengths, config.batch_size, config.seed, epoch, config.group_by_length, labelled
        )

    steps_per_epoch = len(epoch_batches(0))
    total_steps = max(1, math.ceil(steps_per_epoch * epochs))
    optimizer = build_optimizer(
        stage, OptimConfig(lr=config.lr, weight_decay=config.weight_decay, eps=config.adam_eps)
    )
    scheduler = build_scheduler(optimizer, ScheduleConfig(warmup=config.warmup, decay="linear"), total_steps)
    dtype = torch.bfloat16 if config.bf16 else None
    logger.info(
        "intermediate stage: %d steps, student layers -> teacher layers %s, projection %s",
        total_steps, layer_map, type(stage.projection).__name__,
    )  # fmt: skip
    bar = progress_bar(total_steps, enabled=progress, desc="distill intermediate")
    losses: list[float] = []
    stage.train()
    epoch = 0
    while len(losses) < total_steps:
        for indices in epoch_batches(epoch)[: total_steps - len(losses)]:
            batch = collate([features[i] for i in indices], pad_token_id)
            losses.append(
                training_step(stage, batch, optimizer, scheduler, dtype, config.max_grad_norm, _stage_loss)
            )
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        epoch += 1
    bar.close()
    return losses
