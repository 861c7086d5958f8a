"""Fine-tune a checkpoint of any family (BERT, RoBERTa, ALBERT, DistilBERT) on a task file:
classification, regression, NER, QA, multiple choice, or any task registered in
:mod:`bertforge.tasks.registry` (whose :class:`~bertforge.tasks.registry.TaskDefinition` says how to
read, label, encode, predict and score it; the model is that task's head of the checkpoint's family).

One run: read the training and dev files with the task's reader, build the label set from the
training data (a dev label outside it is an error, not a silent zero), encode (see
:mod:`bertforge.tasks.preprocess`), then train with AdamW and a warm-up + linear schedule
(:mod:`.optim`) over length-grouped batches (:mod:`bertforge.tasks.preprocess_batches`), evaluating
on the dev file after every epoch (or every ``eval_steps``) with the same pipelines as
``bertforge evaluate``. Whenever the task's main metric improves, the model is saved to ``out``,
which therefore always holds the best model as a normal checkpoint (config.json with id2label /
label2id / problem_type, model.safetensors, tokenizer files; each file written atomically), next to
``finetune_config.json`` (the resolved config) and ``metrics.jsonl`` (one line per evaluation, and a
train-loss line every 10 steps; ``metrics.png`` plots them when matplotlib is installed).

Training truncates pairs and single texts to ``max_seq_length`` (NER sentences and QA contexts are
windowed instead, see the preprocessing modules); evaluation reads a dev text longer than that in
overlapping windows, exactly as ``bertforge predict`` would, so the dev figure is the figure a user
of the saved model gets.

Resuming: at every epoch end (and every ``save_steps``) the run writes ``out/checkpoint-NNNNNN``
as pretraining does (model, optimizer, scheduler, RNG states, data position, best-so-far and the
evaluation history; atomic, with a verified manifest; the last ``keep_checkpoints`` kept).
``resume=True`` (``--resume``) continues from the newest complete one and computes the same losses
step for step as a run that never stopped; the checkpoints are removed when the run completes.

Other objectives plug in without a second loop: :func:`prepare_data` reads and encodes once
(:class:`TaskData`), and :func:`finetune` takes that data, the checkpoint to start from and the loss
of a batch (:data:`LossFunction`; default :func:`label_loss`, the model's own loss on the gold
labels). Task distillation (:mod:`.distill_task`) trains its student through here with a loss mixing
its teacher's soft targets and the gold labels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..auto import checkpoint_model_type, config_class_for, forward_kwargs, model_class_for
from ..errors import BertForgeError
from ..fileio import atomic_write_json
from ..ops import unpadded
from ..pipelines.common import (
    FINETUNE_CONFIG_FILE,
    InferenceSettings,
    autocast,
    check_vocabulary,
    load_tokenizer,
    position_limit,
    torch_device,
)
from ..pipelines.evaluation import check_known_labels, check_labelled, evaluate_examples, read_examples
from ..tasks.arguments import argument
from ..tasks.preprocess import Feature, label_maps
from ..tasks.preprocess_batches import collate, feature_length, training_batches
from ..tasks.registry import TaskDefinition, get_task
from . import checkpointing as ckpt
from .finetune_config import FinetuneConfig
from .logging import MetricsLogger, plot_metrics, progress_bar, read_metrics
from .optim import OptimConfig, ScheduleConfig, build_optimizer, build_scheduler

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
LOG_STEPS = 10  # a train-loss line in metrics.jsonl every this many steps


@dataclass
class FinetuneResult:
    """What a run produced: where the best model is, its dev metrics, and every evaluation."""

    out: Path
    main_metric: str
    best_value: float | None  # None without a dev file
    best_step: int
    best_metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    train_seconds: float = 0.0
    train_examples_per_second: float = 0.0
    skipped: list[str] = field(default_factory=list)


# Settings a resumed run must share with the run that wrote the checkpoint (the data and the schedule).
_RESUME_KEYS = (
    "task", "train", "train_limit", "max_seq_length", "epochs", "batch_size", "lr", "weight_decay",
    "warmup", "adam_eps", "max_grad_norm", "dropout", "seed", "group_by_length", "eval_steps",
)  # fmt: skip


def _check_resume_config(checkpoint: Path, saved: dict[str, Any], config: FinetuneConfig) -> None:
    # A subclass's own settings (a distillation's teacher, alpha ...) shape the run too.
    own = [f.name for f in dataclasses.fields(config) if f.name not in FinetuneConfig.__dataclass_fields__]
    differ = [k for k in (*_RESUME_KEYS, *own) if k in saved and saved[k] != getattr(config, k)]
    if differ:
        details = ", ".join(f"{k} {saved[k]!r} -> {getattr(config, k)!r}" for k in differ)
        raise BertForgeError(
            f"cannot resume from {checkpoint}: the run was started with other settings ({details}); "
            "resume with the same settings, or start afresh without --resume"
        )


def _plain(value: Any) -> Any:
    """Metrics as JSON types (numpy scalars become numbers), so trainer_state.pt loads weights-only."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _labels(
    task: TaskDefinition,
    config: FinetuneConfig,
    train: list[Any],
    dev: list[Any],
    fixed: list[str] | None = None,
) -> list[str] | None:
    """The label set from the training data, or ``fixed`` (a teacher's); a training or dev label
    outside it is an error naming the row, not a silent zero."""
    if fixed is not None:
        for examples, path in ((train, config.train), (dev, config.dev or "dev")):
            check_known_labels(
                task.name, examples, fixed, path, fix="use data labelled with the model's label set"
            )
        return fixed
    labels = task.label_set(train)
    if labels is not None and len(labels) == 1:
        raise BertForgeError(
            f"every training example in {config.train} has the label {labels[0]!r}; {task.name} needs "
            "at least two labels to learn from: check the file (and which column holds the labels)"
        )
    if labels is not None:
        check_known_labels(
            task.name,
            dev,
            labels,
            config.dev or "dev",
            problem="does not occur in the training data",
            fix="fix the label or add training examples with it",
        )
    return labels


@dataclass
class TaskData:
    """A run's examples, label set, tokenizer and training features, read and encoded once; several
    seeds share them, and a distillation scores the features with its teacher before training."""

    task: TaskDefinition
    train: list[Any]
    dev: list[Any]
    skipped: list[str]
    tokenizer: Any
    labels: list[str] | None  # in id order; None for tasks without a label set (QA, regression ...)
    extra: dict[str, Any]  # entries for the model config's ``extra`` (QA: version_2_with_negative)
    features: list[Feature]
    max_seq_length: int  # what the features were encoded with (``fit`` may have shortened it)
    # The last ``unlabelled`` features carry no labels (a distillation's transfer data): batches never
    # mix them with labelled ones, and only a loss that needs no labels (the teacher's) can train on them.
    unlabelled: int = 0


def _checkpoint_family(path: str | Path) -> str:
    """The model_type of the checkpoint directory ``path`` (``--model``)."""
    if not Path(path).is_dir():
        problem = "is a file, not a checkpoint directory" if Path(path).exists() else "does not exist"
        raise BertForgeError(
            f"{argument('model', str(path))} {problem}; pass a directory holding config.json, the "
            "weights and the tokenizer"
        )
    return checkpoint_model_type(path)


def _fit_to_positions(config: FinetuneConfig, model_config: Any, explicit: bool) -> FinetuneConfig:
    """``config`` with a max_seq_length the model's position table holds: a length asked for that
    is longer is an error; the task's default is cut to the table (a short-position model)."""
    limit = position_limit(model_config)
    assert config.max_seq_length is not None
    if config.max_seq_length <= limit:
        return config
    if explicit:
        raise BertForgeError(
            f"{argument('max_seq_length', config.max_seq_length)} is longer than the {limit} positions "
            f"of {config.model}; pass {argument('max_seq_length', limit)} or less"
        )
    logger.info("max_seq_length: the model has %d positions; using %d", limit, limit)
    return replace(config, max_seq_length=limit)


def prepare_data(
    config: FinetuneConfig,
    *,
    labels: list[str] | None = None,
    tokenizer: Any = None,
    fit: Callable[[FinetuneConfig], FinetuneConfig] | None = None,
) -> TaskData:
    """Read, check and encode the training and dev files of a (resolved) run.

    ``labels`` fixes the label set (a teacher's, in id order) instead of taking it from the
    training data; ``tokenizer`` replaces the one of ``config.tokenizer`` / ``config.model``;
    ``fit`` checks the model against the config once the files are read (so a broken task file is
    reported before a wrong checkpoint) and returns the config to encode with."""
    task = get_task(config.task)
    assert config.max_seq_length is not None, "pass config.resolved()"
    read_options: dict[str, Any] = {
        "text_column": config.text_column,
        "pair_column": config.pair_column,
        "label_column": config.label_column,
        "on_error": config.on_error,
    }
    # A table read without labels usually has them under a column name the readers do not guess.
    unlabelled = (
        "fine-tuning needs labelled files (for a table, name its label column with "
        f"{argument('label_column')})"
    )
    train, skipped = read_examples(config.task, config.train, **read_options)
    dev: list[Any] = []
    if config.dev is not None:
        dev, dev_skipped = read_examples(config.task, config.dev, **read_options)
        skipped += dev_skipped
        check_labelled(config.task, dev, config.dev, unlabelled)
    train = train[: config.train_limit] if config.train_limit else train
    dev = dev[: config.dev_limit] if config.dev_limit else dev
    check_labelled(config.task, train, config.train, unlabelled)
    for message in skipped:
        logger.warning("skipped %s", message)
    if fit is not None:
        config = fit(config)
    assert config.max_seq_length is not None
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config.tokenizer or config.model)
    labels = _labels(task, config, train, dev, labels)
    extra = task.config_extra(train, config)
    label2id = label_maps(labels)[1] if labels is not None else None
    features = task.encode(train, tokenizer, label2id, config)
    if not features:
        raise BertForgeError(f"{config.train} gave no training features; check the file")
    return TaskData(task, train, dev, skipped, tokenizer, labels, extra, features, config.max_seq_length)


# Config fields that hold dropout, by family (BERT/RoBERTa/ALBERT; DistilBERT).
_DROPOUT_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout")


def model_overrides(
    task: TaskDefinition, config: FinetuneConfig, labels: list[str] | None, model_type: str
) -> dict[str, Any]:
    overrides = dict(task.config_overrides(labels))
    if config.dropout is not None:
        fields = set(getattr(config_class_for(model_type), "__dataclass_fields__", {}))
        overrides.update({name: config.dropout for name in _DROPOUT_FIELDS if name in fields})
    return overrides


_MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids", "labels", "start_positions", "end_positions")


def model_inputs(model: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of a collated batch that the model's forward takes (labels included), on its device."""
    device = next(model.parameters()).device
    return forward_kwargs(model, {k: v.to(device) for k, v in batch.items() if k in _MODEL_KEYS})


# The loss of one collated batch (already on the model's device). The batch also holds
# ``feature_index`` (B,): which training features its rows are, for losses that look up per-feature
# targets (a teacher's cached outputs, :mod:`.distill_task`).
LossFunction = Callable[[Any, dict[str, torch.Tensor]], torch.Tensor]


def label_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Fine-tuning's objective: the model's own loss on the gold labels."""
    return model(**forward_kwargs(model, {k: v for k, v in batch.items() if k in _MODEL_KEYS})).loss  # type: ignore[no-any-return]


def training_step(
    model: Any,
    batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    dtype: torch.dtype | None = None,
    max_grad_norm: float = 1.0,
    loss: LossFunction | None = None,
) -> float:
    """One optimisation step on a collated batch (autocast to ``dtype``, clipping every parameter of
    ``model``); ``loss`` defaults to :func:`label_loss`. Returns the loss."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    # Unpadded where the loss reads real tokens only (labels at padding are ignored, [CLS] is real);
    # a head whose loss reads the padding (QA's span loss) says so and runs padded.
    packed = contextlib.nullcontext() if getattr(model, "loss_reads_padding", False) else unpadded()
    with autocast(dtype, device), packed:
        value = (loss or label_loss)(model, batch)
    value.backward()
    if max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(value.detach())


def check_output_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BertForgeError(
            f"{argument('out', str(out))} is a file; pass a directory for the fine-tuned checkpoint"
        )


def finetune(
    config: FinetuneConfig,
    progress: bool = True,
    *,
    data: TaskData | None = None,
    init: str | Path | None = None,
    loss: LossFunction | None = None,
) -> FinetuneResult:
    """Run one fine-tuning job; the best model (by the task's main metric on dev) ends up in ``config.out``.

    With ``config.seeds``, one job per seed (:func:`bertforge.train.seeds.finetune_seeds`, which
    returns every run and their mean ± std); this returns the best seed's result, ``out`` being
    ``config.out`` where its model is kept.

    What a caller that trains otherwise (distillation, :mod:`.distill_task`) can replace: ``data``
    (already read and encoded, :func:`prepare_data`), ``init`` (the checkpoint whose weights start
    the run, instead of ``config.model``) and ``loss`` (instead of :func:`label_loss`)."""
    if config.seeds is not None:
        from .seeds import finetune_seeds

        return finetune_seeds(config, progress=progress).best  # type: ignore[no-any-return]
    explicit_length = config.max_seq_length is not None
    config = config.resolved()
    seed_everything(config.seed)
    out = Path(config.out)
    check_output_dir(out)
    device = torch_device(config.device)
    resume_from, state = None, None
    if config.resume:
        ckpt.clean_temporaries(out)  # what a killed save left behind (bertforge's own names only)
        resume_from = ckpt.resolve_resume(config.resume, out)
    # The task files first, then the checkpoint (a wrong --model reported as such): every setting
    # that must fit it is checked before any weights are loaded or anything is written.
    start_from = resume_from or init or config.model
    model_configs: list[Any] = []  # read once, by the first fit_to_model

    def fit_to_model(config: FinetuneConfig) -> FinetuneConfig:
        if not model_configs:
            family = _checkpoint_family(start_from)
            model_configs.append(config_class_for(family).from_pretrained(start_from))
        return _fit_to_positions(config, model_configs[0], explicit_length)

    if data is None:
        data = prepare_data(config, fit=fit_to_model)
    config = replace(fit_to_model(config), max_seq_length=data.max_seq_length)
    model_type, model_config = checkpoint_model_type(start_from), model_configs[0]
    assert config.max_seq_length is not None
    check_vocabulary(data.tokenizer, model_config, config.tokenizer or start_from)
    task, tokenizer, labels, dev, features = data.task, data.tokenizer, data.labels, data.dev, data.features
    version_2 = bool(data.extra.get("version_2_with_negative", config.version_2 or False))
    if resume_from is not None:  # checked before anything is written
        state = ckpt.load_trainer_state(resume_from)
        _check_resume_config(resume_from, state["config"], config)
    # The task's head in the checkpoint's own family: --model may be any BERT/RoBERTa/ALBERT/DistilBERT.
    model = model_class_for(model_type, task.head).from_pretrained(
        start_from, ignore_mismatched_sizes=True, **model_overrides(task, config, labels, model_type)
    )
    if data.extra:
        model.config = model.config.replace(extra={**model.config.extra, **data.extra})
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.to(device)
    lengths = [feature_length(f) for f in features]
    assert not data.unlabelled or loss is not None, "unlabelled features need a loss without labels"
    labelled = len(features) - data.unlabelled

    def epoch_batches(epoch: int) -> list[list[int]]:
        return training_batches(
            lengths, config.batch_size, config.seed, epoch, config.group_by_length, labelled
        )

    steps_per_epoch = len(epoch_batches(0))
    total_steps = max(1, math.ceil(steps_per_epoch * config.epochs))
    optimizer = build_optimizer(
        model,
        OptimConfig(
            lr=config.lr,
            weight_decay=config.weight_decay,
            eps=config.adam_eps,
            max_grad_norm=config.max_grad_norm,
        ),
    )
    scheduler = build_scheduler(optimizer, ScheduleConfig(warmup=config.warmup, decay="linear"), total_steps)
    settings = InferenceSettings(
        max_length=config.max_seq_length,
        stride=getattr(config, task.stride_setting),
        max_query_length=config.max_query_length,
        batch_size=config.eval_batch_size,
        dtype=torch.bfloat16 if config.bf16 else None,
    )
    logger.info(
        "fine-tuning %s (%s parameters) on %d examples -> %d features, %d steps; config %s",
        type(model).__name__,
        f"{model.num_parameters():,}",
        len(data.train),
        len(features),
        total_steps,
        config.to_dict(),
    )
    out.mkdir(parents=True, exist_ok=True)
    ckpt.clean_temporaries(out)
    atomic_write_json(
        out / FINETUNE_CONFIG_FILE, {**config.to_dict(), "labels": labels, "version_2": version_2}
    )
    main = task.main_metric
    result = FinetuneResult(out, main, None, 0, {}, skipped=data.skipped)
    saved_tokenizer = False
    # Data position and counters; a resumed run takes them from the checkpoint.
    step, epoch, position, running, seen, train_time, elapsed_before = 0, 0, 0, [], 0, 0.0, 0.0
    stop = False
    if resume_from is not None:
        assert state is not None
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, position = int(state["step"]), int(state["epoch"]), int(state["position"])
        running, seen, stop = list(state["running"]), int(state["seen"]), bool(state["stop"])
        train_time, elapsed_before = float(state["train_time"]), float(state["elapsed"])
        result.best_value, result.best_step = state["best_value"], int(state["best_step"])
        result.best_metrics, result.history = state["best_metrics"], list(state["history"])
        saved_tokenizer = bool(state["saved_tokenizer"])
        ckpt.set_rng_state(state["rng"])
        logger.info("resumed from %s at step %d", resume_from, step)
    metrics_log = MetricsLogger(out / METRICS_FILE, resume_step=step if resume_from is not None else None)

    def save_checkpoint() -> None:
        state = {
            "step": step, "epoch": epoch, "position": position, "running": running, "seen": seen,
            "stop": stop, "train_time": train_time, "elapsed": time.perf_counter() - start,
            "best_value": result.best_value, "best_step": result.best_step,
            "best_metrics": _plain(result.best_metrics), "history": _plain(result.history),
            "saved_tokenizer": saved_tokenizer, "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": ckpt.rng_state(), "config": config.to_dict(),
        }  # fmt: skip
        ckpt.save_checkpoint(
            out, step, model=model, tokenizer=tokenizer, trainer_state=state,
            keep_last=config.keep_checkpoints,
        )  # fmt: skip

    def save() -> None:
        nonlocal saved_tokenizer
        model.save_pretrained(out)
        if not saved_tokenizer:
            tokenizer.save_pretrained(out)
            saved_tokenizer = True

    def evaluate(step: int, epoch: float, train_loss: float) -> bool:
        """Evaluate, log, keep the best; True when patience has run out."""
        record: dict[str, Any] = {
            "event": "eval",
            "step": step,
            "epoch": round(epoch, 4),
            "train_loss": train_loss,
        }
        record["lr"] = scheduler.get_last_lr()[0]
        if dev:
            metrics, _ = evaluate_examples(task.name, model, tokenizer, dev, settings)
            model.train()
            record.update({f"dev_{k}": v for k, v in metrics.items() if not isinstance(v, dict)})
            value = float(metrics[main])
            improved = result.best_value is None or value > result.best_value
            if improved:
                result.best_value, result.best_step, result.best_metrics = value, step, metrics
                save()
            record["best"] = improved
        record["elapsed"] = round(time.perf_counter() - start, 2)
        result.history.append(record)
        metrics_log.log(record)
        logger.info("evaluation at step %d: %s", step, record)
        if config.patience is None or not dev:
            return False
        since_best = sum(1 for r in result.history if r["step"] > result.best_step)
        return since_best >= config.patience

    bar = progress_bar(total_steps, initial=step, enabled=progress, desc=f"finetune {config.task}")
    model.train()
    start = time.perf_counter() - elapsed_before
    while step < total_steps and not stop:
        for indices in epoch_batches(epoch)[position:]:
            position += 1
            tick = time.perf_counter()
            batch = collate([features[i] for i in indices], tokenizer.pad_token_id)
            batch["feature_index"] = torch.tensor(indices)
            value = training_step(
                model, batch, optimizer, scheduler, settings.dtype, config.max_grad_norm, loss
            )
            train_time += time.perf_counter() - tick
            step += 1
            seen += len(indices)
            running.append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{running[-1]:.4f}")
            if step % LOG_STEPS == 0:
                metrics_log.log(
                    {"event": "train", "step": step, "loss": running[-1], "lr": scheduler.get_last_lr()[0]}
                )
            at_epoch_end = step % steps_per_epoch == 0 or step == total_steps
            due = step % config.eval_steps == 0 if config.eval_steps else at_epoch_end
            if due or step == total_steps:
                train_loss = float(np.mean(running)) if running else float("nan")
                running = []
                stop = evaluate(step, step / steps_per_epoch, train_loss)
            if stop or step >= total_steps:
                break
            if config.keep_checkpoints and (
                at_epoch_end or (config.save_steps and step % config.save_steps == 0)
            ):
                save_checkpoint()  # at an epoch's end, position == len(order): resumes at the next
        epoch += 1
        position = 0
    bar.close()
    if not dev:
        save()
    metrics_log.close()
    for done in ckpt.list_checkpoints(out):  # the run is complete: nothing left to resume
        ckpt.remove_checkpoint(done)
    if config.plot:
        plot_metrics(read_metrics(out / METRICS_FILE), out / "metrics.png", title=f"finetune {config.task}")
    result.steps = step
    result.train_seconds = train_time
    result.train_examples_per_second = seen / train_time if train_time else 0.0
    return result
