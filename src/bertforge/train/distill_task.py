"""Task distillation (``bertforge distill``): a small student learns the task of a fine-tuned teacher.

A run is a fine-tuning run (:class:`~.distill_config.DistillConfig` is a :class:`~.finetune_config.FinetuneConfig`:
the same files, columns, windows, schedule and seeds; its ``model`` is the student) in up to two
stages, as TinyBERT (Jiao et al., 2020) distils a task:

1. ``intermediate_epochs`` > 0: the student's hidden states and attention maps follow the teacher's
   along a layer mapping (uniform by default), :func:`~.distill_stages.intermediate_stage`;
2. the prediction stage: bertforge's fine-tuning loop (:func:`~.finetune.finetune`, evaluation on dev
   and the best model kept included) with the loss ``alpha`` * the teacher's soft targets at
   temperature T (KL × T²; MSE to its prediction for regression; per real token for tagging; start
   and end distributions for QA) + (1 - ``alpha``) * the gold labels (:class:`~.distill_stages.PredictionLoss`).

Transfer data (``transfer``: files of unlabelled in-domain examples, :mod:`.distill_transfer`)
extends the training features: the teacher labels them with its soft targets, and their batches
learn those alone (weight 1), while labelled batches keep the mix above; the intermediate stage
reads them too. An epoch covers the labelled and the transfer features.

The teacher's prediction-layer outputs (for the transfer data too) are computed once, under
inference mode and in bf16 where the device runs it fast (``teacher_dtype="auto"``,
:func:`~.distributed.use_bf16`), and cached in a numpy memmap in ``OUT/.distill-work/`` for every
epoch and every seed; the work area is removed when the run completes. The data is encoded once,
with the teacher's tokenizer, which the student must share.

The student (``model``; checked and built by :mod:`.distill_plan`):

* a preset (``bert-mini``, ``distilbert-L4-H256``, ``roberta-tiny`` ...) of the teacher's family (or
  DistilBERT for a BERT teacher and back), with the teacher's vocabulary. When its layers are shaped
  like the teacher's it starts from the teacher's embeddings, layers (``student_layers``, else spread
  evenly) and task head (:func:`~.distill.init_student_from_teacher`); otherwise from random weights;
* a checkpoint directory (a smaller pretrained model) whose tokenizer is the teacher's: its weights;
* ``""`` with ``student_layers``: the teacher itself cut to those layers.

Everything a user can get wrong (a teacher without a task head, a task its head cannot do, a student
with another vocabulary, layer lists out of range) is checked before anything is written to ``out``.
The result in ``out`` is a normal fine-tuned checkpoint (``finetune_config.json`` records the
distillation settings too) that evaluate, predict, serve and export take.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..pipelines.common import InferenceSettings
from ..pipelines.evaluation import evaluate_examples
from . import checkpointing as ckpt
from .distill_config import DistillConfig
from .distill_plan import DistillPlan, build_student, plan_distillation
from .distill_stages import PredictionLoss, intermediate_stage, teacher_outputs
from .distill_transfer import read_transfer, with_transfer
from .distributed import use_bf16
from .finetune import FinetuneResult, TaskData, check_output_dir, finetune, prepare_data, seed_everything
from .finetune_config import FinetuneConfig

logger = logging.getLogger(__name__)

WORK_DIR = ".distill-work"  # OUT/.distill-work: the teacher's outputs and the student's starting weights


@dataclass
class DistillResult:
    """The student's run (the best seed's with seeds), the teacher's dev metrics, and the loss of
    every intermediate-stage step (per seed)."""

    run: FinetuneResult
    teacher_metrics: dict[str, Any]
    intermediate: dict[int, list[float]] = field(default_factory=dict)
    seeds: Any = None  # SeedsResult with seeds


def _teacher_dtype(config: DistillConfig) -> torch.dtype | None:
    return torch.bfloat16 if use_bf16(config.teacher_dtype, torch.device(config.device)) else None


def _train_student(
    config: DistillConfig,
    progress: bool,
    plan: DistillPlan,
    data: TaskData,
    cache_dir: Path,
    intermediate: dict[int, list[float]],
) -> FinetuneResult:
    """One student (one seed): build it, run the intermediate stage, then the prediction stage."""
    out = Path(config.out)
    work = out / WORK_DIR
    teacher_dtype = _teacher_dtype(config)
    resuming = bool(config.resume) and ckpt.resolve_resume(config.resume, out) is not None
    labelled = len(data.features) - data.unlabelled
    outputs = teacher_outputs(
        plan.teacher, config.teacher, data.features, plan.kind, cache_dir,
        pad_token_id=data.tokenizer.pad_token_id, batch_size=config.eval_batch_size, dtype=teacher_dtype,
    )  # fmt: skip
    init = None
    if not resuming:  # a resumed run takes the student from its checkpoint
        seed_everything(config.seed)
        student = build_student(config, plan, data.labels).to(config.device)
        if config.intermediate_epochs:
            intermediate[config.seed] = intermediate_stage(
                student, plan.teacher, data.features, data.tokenizer.pad_token_id, config,
                epochs=config.intermediate_epochs, layer_map=plan.layer_map,
                teacher_dtype=teacher_dtype, progress=progress, labelled=labelled,
            )  # fmt: skip
        init = work / "student"
        student.save_pretrained(init)
    loss = PredictionLoss(outputs, config.alpha, config.temperature, labelled)
    run = finetune(config, progress, data=data, init=init, loss=loss)
    shutil.rmtree(work, ignore_errors=True)
    return run


def distill(config: DistillConfig, progress: bool = True, *, table: bool = False) -> DistillResult:
    """Distil ``config.teacher`` into the student ``config.model`` on ``config.task``; the best
    student (by the task's main metric on dev) ends up in ``config.out`` as a normal checkpoint.
    With ``config.seeds`` one student per seed, as :func:`~.seeds.finetune_seeds` runs them
    (``table=True`` prints their table)."""
    config = config.resolved()
    plan = plan_distillation(config)
    data = prepare_data(config, labels=plan.labels, tokenizer=plan.tokenizer)
    if config.transfer:
        # no label column: a transfer file need not have one, and labels it has are dropped unused
        options = {k: getattr(config, k) for k in ("text_column", "pair_column", "on_error")}
        examples = read_transfer(plan.task, config.transfer, config.transfer_format, options)
        data = with_transfer(data, config, examples)
        logger.info(
            "transfer data: %d examples -> %d features, after %d labelled features",
            len(examples), data.unlabelled, len(data.features) - data.unlabelled,
        )  # fmt: skip
    out = Path(config.out)
    check_output_dir(out)
    settings = InferenceSettings(
        max_length=config.max_seq_length or plan.task.max_length,
        stride=getattr(config, plan.task.stride_setting),
        max_query_length=config.max_query_length,
        batch_size=config.eval_batch_size,
        dtype=_teacher_dtype(config),
    )
    teacher_metrics = (
        evaluate_examples(plan.task.name, plan.teacher, data.tokenizer, data.dev, settings)[0]
        if data.dev
        else {}
    )
    logger.info("teacher %s on dev: %s", config.teacher, teacher_metrics)
    cache_dir = out / WORK_DIR / "teacher"
    intermediate: dict[int, list[float]] = {}
    if config.seeds is None:
        run = _train_student(config, progress, plan, data, cache_dir, intermediate)
        result = DistillResult(run, teacher_metrics, intermediate)
    else:
        from .seeds import finetune_seeds

        def run_seed(seed_config: FinetuneConfig, seed_progress: bool) -> FinetuneResult:
            assert isinstance(seed_config, DistillConfig)
            return _train_student(seed_config, seed_progress, plan, data, cache_dir, intermediate)

        runs = finetune_seeds(config, progress=progress, table=table, run=run_seed)
        result = DistillResult(runs.best, teacher_metrics, intermediate, runs)
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    return result
