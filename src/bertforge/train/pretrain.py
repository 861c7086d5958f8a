"""The pretraining loop: a :class:`~.recipe.PretrainConfig` in, a trained checkpoint out.

One optimizer step = ``grad_accum`` micro-batches per process; each micro-batch's loss comes from
``model.pretraining_loss`` (MLM scored only at masked positions, + NSP/SOP). The learning rate
follows the step schedule, or, with ``train.budget``, the fraction of the wall-clock budget spent
(Cramming): the run then stops when the budget is spent, whatever the step count.

Exact resume: the data position (phase, epoch, global batch), optimizer, scheduler and all RNG
states are saved with every checkpoint, and masks are a pure function of (seed, epoch, instance),
so a run stopped at step k and resumed computes the same losses from step k on as one that never
stopped. SIGINT/SIGTERM finish the current step, save a checkpoint and return. After a SIGKILL or a
power cut, ``--resume`` takes the newest checkpoint whose manifest verifies (see
:mod:`.checkpointing`), after removing the temporary directories of the save that was cut short.
A run may resume on another number of processes when it keeps the sequences per optimizer step
(``batch_size`` x processes x ``grad_accum``): 2 processes x accumulation 1 continue as 1 process
x accumulation 2, on the same data.

``train.parallel = "fsdp"`` shards the model, gradients and optimizer state across the processes
(FSDP2, :mod:`.fsdp`) instead of replicating them (DDP); its checkpoints hold DCP shards instead of
``model.safetensors`` and ``trainer_state.pt``'s optimizer, and resume on any number of processes.

Output layout::

    OUT/resolved_config.toml     the run's full config (a valid recipe)
    OUT/metrics.jsonl            one JSON object per train-log / eval event
    OUT/metrics.png              loss / accuracy / lr curves (if matplotlib is installed)
    OUT/checkpoint-000100/       model + tokenizer files and trainer_state.pt (last train.keep_last)
    OUT/model/                   the final model + tokenizer (Hugging Face layout)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch
from torch import nn

from ..errors import BertForgeError
from . import checkpointing as ckpt
from . import distributed as dist_utils
from .logging import MetricsLogger, plot_metrics, progress_bar, read_metrics
from .optim import build_optimizer, build_scheduler, lr_at_progress, set_lr_multiplier
from .pretrain_config import PretrainConfig
from .pretrain_data import DataCursor, build_pretraining_data, eval_batches, tokenizer_path
from .recipe_dump import dump_toml
from .signals import StopFlag

if TYPE_CHECKING:
    from ..outputs import PreTrainingLossOutput

log = logging.getLogger(__name__)

MODEL_DIR = "model"
METRICS = "metrics.jsonl"


@dataclass
class PretrainResult:
    output_dir: Path
    model_dir: Path  # OUT/model: the final model and tokenizer
    checkpoint: Path | None  # the last checkpoint written
    steps: int
    stopped: str  # "completed" | "budget" | "signal"
    train_loss: float | None  # mean loss over the last logging window
    eval: dict[str, float] = field(default_factory=dict)
    tokens_per_second: float = 0.0  # non-padding tokens / training time (no eval or saving), all processes
    metrics_path: Path | None = None
    plot_path: Path | None = None
    rank: int = 0  # this process's rank under torchrun; only rank 0 reports


class PretrainingModel(Protocol):
    """Any family's pretraining model (BertForPreTraining, BertForMaskedLM, RobertaForMaskedLM,
    AlbertForPreTraining, DistilBertForMaskedLM, BertForPreTrainingSBO ...): it scores a
    pretraining batch with ``pretraining_loss``, whose arguments differ by objective (NSP/SOP
    labels, span boundaries)."""

    def pretraining_loss(self, *args: Any, **kwargs: Any) -> PreTrainingLossOutput: ...


class _LossModule(nn.Module):
    """``forward`` = ``pretraining_loss``, so DDP's forward hooks (gradient sync) and FSDP's
    (gathering the weights) run around it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, **batch: torch.Tensor) -> Any:
        return self.model.pretraining_loss(**batch, accuracy=False)  # type: ignore[operator]

    def evaluation_loss(self, **batch: torch.Tensor) -> Any:
        """The evaluation score (with accuracy); FSDP gathers the weights around it as around forward."""
        return self.model.pretraining_loss(**batch)  # type: ignore[operator]


# ----------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: list[dict[str, torch.Tensor]],
    device: torch.device,
    bf16: bool,
    loss: Callable[..., PreTrainingLossOutput] | None = None,
) -> dict:
    """MLM loss (token-weighted), perplexity, MLM accuracy and NSP/SOP loss and accuracy.

    ``loss`` scores a batch (default ``model.pretraining_loss``); a sharded run passes its root
    module's ``evaluation_loss``, which gathers the weights (every process then evaluates)."""
    score: Any = loss or model.pretraining_loss
    was_training = model.training
    model.eval()
    totals = torch.zeros(
        5, dtype=torch.float64
    )  # mlm_loss*count, mlm_correct, mlm_count, nsp_loss*n, nsp_correct
    nsp_count = 0
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = score(**batch)
        totals[0] += out.mlm_loss.double().cpu() * out.mlm_count.cpu()
        totals[1] += out.mlm_correct.cpu()
        totals[2] += out.mlm_count.cpu()
        if out.nsp_loss is not None:
            totals[3] += out.nsp_loss.double().cpu() * out.nsp_count.cpu()
            totals[4] += out.nsp_correct.cpu()
            nsp_count += int(out.nsp_count)
    model.train(was_training)
    count = max(float(totals[2]), 1.0)
    mlm_loss = float(totals[0]) / count
    metrics = {
        "eval_mlm_loss": mlm_loss,
        "eval_perplexity": math.exp(min(mlm_loss, 50.0)),
        "eval_mlm_accuracy": float(totals[1]) / count,
    }
    if nsp_count:
        metrics["eval_nsp_loss"] = float(totals[3]) / nsp_count
        metrics["eval_nsp_accuracy"] = float(totals[4]) / nsp_count
    return metrics


# --------------------------------------------------------------------------------------- setup
def _phase_bounds(config: PretrainConfig, total_steps: int | None) -> list[float]:
    """Cumulative end of each phase, in steps (step schedule) or in progress (time budget)."""
    ends, acc = [], 0.0
    for phase in config.phases():
        acc += phase.fraction
        ends.append(acc if total_steps is None else round(acc * total_steps))
    ends[-1] = math.inf
    return ends


# ----------------------------------------------------------------------------------------- loop
def pretrain(
    config: PretrainConfig,
    *,
    resume: bool | str | Path = False,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> PretrainResult:
    """Pretrain a BERT as ``config`` says; see the module docstring for what lands in ``output_dir``.

    ``resume``: True = continue from the newest checkpoint in ``output_dir`` (a fresh start if
    there is none), or a checkpoint / output directory path. ``on_step(step)`` is called after
    every optimizer step (notebooks, tests).
    """
    from ..auto import model_class_for
    from ..data.dataset import TokenDataset
    from ..pipelines.common import load_tokenizer

    if config.data.dataset is None:
        raise BertForgeError("no dataset given; pass --data.dataset DIR (built with `bertforge data build`)")
    env = dist_utils.setup(config.train.device)
    out_dir = Path(config.output_dir)
    train_cfg = config.train
    sharded = train_cfg.parallel == "fsdp" and env.distributed  # one process has nothing to shard
    try:
        tokenizer = load_tokenizer(tokenizer_path(config))
        train_set = TokenDataset.open(config.data.dataset, split="train")
        train_set.check_tokenizer(tokenizer)
        has_eval = "eval" in train_set.manifest.get("splits", {})
        eval_set: Any = TokenDataset.open(config.data.dataset, split="eval") if has_eval else []
        if env.is_main:  # what a killed save left behind (bertforge's own temporary names only)
            ckpt.clean_temporaries(out_dir)
        dist_utils.barrier(env)
        resume_from = ckpt.resolve_resume(resume, out_dir)
        if resume_from is not None and sharded and not ckpt.is_sharded(resume_from):
            raise BertForgeError(
                f"checkpoint {resume_from} holds a whole (unsharded) optimizer state, written with "
                'train.parallel "ddp"; resume it with --train.parallel ddp'
            )

        # Model: same seed on every rank (DDP also broadcasts rank 0's weights).
        torch.manual_seed(train_cfg.seed)
        model_type = config.model.family()
        # MLM alone needs no sentence head: BERT then trains its MLM model, as RoBERTa does.
        kind = "masked-lm" if config.data.objective == "mlm" else "pretraining"
        model_cls = model_class_for(model_type, kind)
        if config.data.span_boundary:  # SpanBERT: MLM + span-boundary objective on a BERT
            if model_type != "bert":
                raise BertForgeError(f"data.span_boundary (SpanBERT) trains a BERT, not a {model_type}")
            from ..models.spanbert import BertForPreTrainingSBO

            model_cls = BertForPreTrainingSBO
        # A pretraining kind: the registry's class has pretraining_loss.
        pretraining_cls = cast("type[PretrainingModel]", model_cls)
        if config.data.objective.startswith("mlm+") and not _has_sentence_head(pretraining_cls):
            raise BertForgeError(
                f"data.objective {config.data.objective!r} needs a sentence head, which the "
                f"{model_type} family does not pretrain with; use --data.objective mlm"
            )
        if resume_from is not None:
            ckpt.check_resume_vocabulary(resume_from, train_set)
            if ckpt.is_sharded(resume_from):
                # The weights are in the DCP shards, loaded into the wrapped model (_Trainer.load_state).
                model: Any = model_cls(model_cls.config_class.from_pretrained(resume_from))
            else:
                model = model_cls.from_pretrained(resume_from)
        elif config.model.init_from is not None:
            ckpt.check_resume_vocabulary(config.model.init_from, train_set, start="start from")
            model = model_cls.from_pretrained(config.model.init_from, **config.model.overrides())
        else:
            model_config = config.model.model_config(train_set.vocab_size, tokenizer.pad_token_id)
            model = model_cls(model_config)
        longest = max(p.max_seq_length for p in config.phases())
        if longest > model.config.max_sequence_length:
            raise BertForgeError(
                f"max_seq_length {longest} exceeds the {longest_kind(model.config)} "
                f"({model.config.max_sequence_length}); raise --model.max_position_embeddings"
            )
        model.to(env.device).train()  # from_pretrained returns eval mode, as in transformers
        bf16 = dist_utils.use_bf16(train_cfg.dtype, env.device)
        loss_module = None
        if config.distill.enabled:  # a teacher: train the student on the distillation loss
            from .distill import prepare_distillation

            fresh = resume_from is None and config.model.init_from is None
            loss_module = prepare_distillation(config.distill, model, env.device, bf16, init_student=fresh)
        trainer = _Trainer(
            config, env, model, tokenizer, train_set, eval_set, bf16, progress, on_step, loss_module
        )
        if resume_from is not None:
            trainer.load_state(ckpt.load_trainer_state(resume_from), resume_from)
            log.info("resumed from %s at step %d", resume_from, trainer.step)
        return trainer.run()
    finally:
        dist_utils.cleanup(env)


def longest_kind(config: Any) -> str:
    """How to name the model's length limit in an error message."""
    if config.max_sequence_length == config.max_position_embeddings:
        return "model's max_position_embeddings"
    return "longest input the model's max_position_embeddings allows"


def _has_sentence_head(model_cls: type[PretrainingModel]) -> bool:
    """Whether the pretraining model takes NSP/SOP labels (BERT, ALBERT) or not (RoBERTa, DistilBERT)."""
    import inspect

    return "next_sentence_label" in inspect.signature(model_cls.pretraining_loss).parameters


class _Trainer:
    """State of one run; :meth:`run` is the loop. Split out of :func:`pretrain` so each piece reads alone."""

    def __init__(
        self,
        config: PretrainConfig,
        env: dist_utils.DistEnv,
        model: nn.Module,
        tokenizer: Any,
        train_set: Any,
        eval_set: Any,
        bf16: bool,
        progress: bool,
        on_step: Callable[[int], None] | None,
        loss_module: nn.Module | None = None,  # default: the model's own pretraining_loss
    ) -> None:
        self.config, self.env, self.model, self.tokenizer = config, env, model, tokenizer
        self.train_set, self.eval_set, self.bf16 = train_set, eval_set, bf16
        self.progress, self.on_step = progress, on_step
        self.cfg = config.train
        self.out_dir = Path(config.output_dir)
        self.config_text = dump_toml(config)
        # "fsdp" writes sharded (DCP) checkpoints on any number of processes; it shards the model
        # only when there are several.
        self.sharded_checkpoints = self.cfg.parallel == "fsdp"
        self.sharded = self.sharded_checkpoints and env.distributed
        root = loss_module or _LossModule(model)
        if self.sharded:
            from . import fsdp

            self.loss_module = fsdp.shard(root, model, env, bf16)
        else:
            self.loss_module = dist_utils.wrap(root, env)
        self.optimizer = build_optimizer(model, config.optim)  # after sharding: it holds the shards
        self.budget = self.cfg.budget_seconds
        # Data position and counters (all saved in trainer_state.pt).
        self.step, self.phase, self.epoch, self.position = 0, 0, 0, 0
        self.elapsed_before = 0.0  # seconds trained before this session (budget accounting)
        self.resumed_step: int | None = None
        self.phases = config.phases()
        self.data = self._phase_data(0)
        self.total_steps = self._total_steps()
        self.scheduler = (
            build_scheduler(self.optimizer, config.schedule, self.total_steps)
            if self.budget is None and self.total_steps is not None
            else None
        )
        self.bounds = _phase_bounds(config, None if self.budget is not None else self.total_steps)
        self._eval_cache: dict[int, list[dict[str, torch.Tensor]]] = {}

    # ------------------------------------------------------------------------------ data
    def _batch_size(self, phase: int) -> int:
        return self.phases[phase].batch_size or self.cfg.batch_size

    def _phase_data(self, phase: int) -> Any:
        # Each phase draws its own instances (a new length), from its own seed.
        return build_pretraining_data(
            self.train_set,
            self.config,
            self.phases[phase],
            self.tokenizer,
            self.cfg.seed + phase,
        )

    def _eval_batches(self, phase: int) -> list[dict[str, torch.Tensor]]:
        if phase not in self._eval_cache:
            self._eval_cache[phase] = eval_batches(
                self.eval_set, self.config, self.phases[phase], self.tokenizer, self._batch_size(phase),
                self.cfg.eval_batches,
            )  # fmt: skip
        return self._eval_cache[phase]

    def _total_steps(self) -> int | None:
        if self.cfg.max_steps is not None:
            return self.cfg.max_steps
        if self.budget is not None:
            return None  # until the budget is spent
        per_epoch = self.data.epoch_size(0) // (
            self._batch_size(0) * self.env.world_size * self.cfg.grad_accum
        )
        return max(1, math.ceil(self.cfg.epochs * per_epoch))

    # ----------------------------------------------------------------------------- state
    def state_dict(self, elapsed: float) -> dict[str, Any]:
        per_batch = self._batch_size(self.phase) * self.env.world_size
        state = {
            "step": self.step,
            "phase": self.phase,
            "epoch": self.epoch,
            "position": self.position,  # in global micro-batches of instances_per_batch
            "instances_per_batch": per_batch,
            "instances_per_step": per_batch * self.cfg.grad_accum,
            "elapsed": elapsed,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": ckpt.rng_state(),
            "config": self.config.to_dict(),
        }
        if not self.sharded_checkpoints:  # else it is in the DCP shards, with the model
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state(self, state: dict[str, Any], checkpoint: Path) -> None:
        self.step, self.phase = int(state["step"]), int(state["phase"])
        self.epoch = int(state["epoch"])
        self.position = self._resumed_position(state)
        self.elapsed_before = float(state["elapsed"])
        if ckpt.is_sharded(checkpoint):
            from . import fsdp

            fsdp.load_sharded_state(checkpoint / ckpt.SHARDED_STATE, self.model, self.optimizer, self.env)
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.phase:
            self.data = self._phase_data(self.phase)
        self.resumed_step = self.step
        ckpt.set_rng_state(state["rng"])

    def _resumed_position(self, state: dict[str, Any]) -> int:
        """The checkpoint's data position in this run's global micro-batches. Another number of
        processes is fine when the sequences per optimizer step are the same: the steps then
        see the same sequences, cut into micro-batches differently."""
        saved_per_batch = int(state["instances_per_batch"])
        saved_accum = int(state["config"]["train"]["grad_accum"])  # checkpoints before instances_per_step
        saved_per_step = int(state.get("instances_per_step", saved_per_batch * saved_accum))
        per_batch = self._batch_size(self.phase) * self.env.world_size
        per_step = per_batch * self.cfg.grad_accum
        if saved_per_step != per_step:
            fix = (
                f"e.g. --train.grad_accum {saved_per_step // per_batch}"
                if saved_per_step % per_batch == 0
                else "change train.batch_size or train.grad_accum"
            )
            raise BertForgeError(
                f"the checkpoint was written with {saved_per_step} sequences per optimizer step, this "
                f"run has {per_step} (batch_size {self._batch_size(self.phase)} x {self.env.world_size} "
                f"processes x grad_accum {self.cfg.grad_accum}); keep the product to resume: {fix}"
            )
        sequences = int(state["position"]) * saved_per_batch
        if sequences % per_batch:
            raise BertForgeError(
                f"the checkpoint stopped {sequences} sequences into epoch {state['epoch']}, not a whole "
                f"number of this run's micro-batches of {per_batch} (batch_size x processes); resume "
                f"with batch_size x processes = {saved_per_batch}"
            )
        return sequences // per_batch

    def save(self, elapsed: float) -> Path | None:
        if self.sharded_checkpoints:  # every process writes its shards
            from . import fsdp

            return fsdp.save_sharded_checkpoint(
                self.out_dir, self.step, env=self.env, model=self.model, optimizer=self.optimizer,
                tokenizer=self.tokenizer, trainer_state=self.state_dict(elapsed),
                config_text=self.config_text, keep_last=self.cfg.keep_last,
            )  # fmt: skip
        path = None
        if self.env.is_main:
            path = ckpt.save_checkpoint(
                self.out_dir,
                self.step,
                model=self.model,
                tokenizer=self.tokenizer,
                trainer_state=self.state_dict(elapsed),
                config_text=self.config_text,
                keep_last=self.cfg.keep_last,
            )
        dist_utils.barrier(self.env)
        return path

    # ------------------------------------------------------------------------------ step
    def _train_step(self, cursor: DataCursor) -> torch.Tensor:
        """One optimizer step; returns [loss, mlm_loss, nsp_loss, tokens, distill_ce_loss,
        distill_cos_loss] summed over micro-batches / accum."""
        stats = torch.zeros(6, device=self.env.device)
        accum = self.cfg.grad_accum
        for i in range(accum):
            batch = {k: v.to(self.env.device, non_blocking=True) for k, v in cursor.next().items()}
            with (
                dist_utils.no_sync(self.loss_module, sync=i == accum - 1),
                torch.autocast(self.env.device.type, dtype=torch.bfloat16, enabled=self.bf16),
            ):
                out = self.loss_module(**batch)
                (out.loss / accum).backward()
            stats[0] += out.loss.detach().float() / accum
            stats[1] += out.mlm_loss.detach().float() / accum
            if out.nsp_loss is not None:
                stats[2] += out.nsp_loss.detach().float() / accum
            stats[3] += batch["attention_mask"].sum()
            for slot, name in ((4, "distill_ce_loss"), (5, "distill_cos_loss")):
                if (term := getattr(out, name, None)) is not None:
                    stats[slot] += term.detach().float() / accum
        if self.config.optim.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.max_grad_norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return stats

    def _set_lr(self, elapsed: float) -> None:
        if self.budget is not None:
            set_lr_multiplier(self.optimizer, lr_at_progress(elapsed / self.budget, self.config.schedule))

    def _phase_for(self, elapsed: float) -> int:
        where = elapsed / self.budget if self.budget is not None else self.step
        return next(i for i, end in enumerate(self.bounds) if where < end)

    # ------------------------------------------------------------------------------- run
    def run(self) -> PretrainResult:
        cfg, env = self.cfg, self.env
        n_params = sum(p.numel() for p in self.model.parameters())
        if env.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            from ..fileio import atomic_write_text

            atomic_write_text(self.out_dir / ckpt.RESOLVED_CONFIG, self.config_text)
        log.info(
            "pretraining %s (%s parameters) on %s x%d, %s, %s steps of %d sequences; config:\n%s",
            type(self.model).__name__, f"{n_params:,}", env.device, env.world_size,
            "bf16" if self.bf16 else "fp32", self.total_steps or "budgeted",
            self._batch_size(self.phase) * cfg.grad_accum * env.world_size, self.config_text,
        )  # fmt: skip
        metrics = MetricsLogger(
            self.out_dir / METRICS,
            resume_step=self.resumed_step,
            tensorboard_dir=self.out_dir / "tensorboard" if cfg.tensorboard else None,
            enabled=env.is_main,
        )
        bar = progress_bar(self.total_steps, initial=self.step, enabled=self.progress and env.is_main)
        cursor = DataCursor(
            self.data, self._batch_size(self.phase), env.rank, env.world_size, self.epoch, self.position
        )
        start = time.monotonic()
        window = torch.zeros(6, device=env.device)
        window_steps, window_start, session_tokens, train_seconds = 0, start, 0.0, 0.0
        last_loss: float | None = None
        eval_metrics: dict[str, float] = {}
        last_checkpoint: Path | None = None
        stopped = "completed"
        elapsed = self.elapsed_before
        with StopFlag() as stop, metrics:
            while self.total_steps is None or self.step < self.total_steps:
                phase = self._phase_for(elapsed)
                if phase != self.phase:
                    log.info("phase %d: max_seq_length %d", phase, self.phases[phase].max_seq_length)
                    self.phase, self.epoch, self.position = phase, 0, 0
                    self.data = self._phase_data(phase)
                    cursor = DataCursor(self.data, self._batch_size(phase), env.rank, env.world_size)
                self._set_lr(elapsed)
                lr = self.optimizer.param_groups[0]["lr"]
                window += self._train_step(cursor)
                self.step += 1
                window_steps += 1
                self.epoch, self.position = cursor.epoch, cursor.position
                # Ranks agree on stopping: a signal on any rank, and the slowest clock. (Single
                # process: no collective, no device sync.) NCCL reduces device tensors only.
                flags = torch.tensor([float(stop.reason is not None), time.monotonic() - start])
                if env.distributed:
                    flags = dist_utils.all_reduce_max(flags.to(env.device), env).cpu()
                elapsed = self.elapsed_before + float(flags[1])
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    stats = dist_utils.all_reduce_sum(window.clone(), env).cpu()
                    now = time.monotonic()
                    tokens_per_s = float(stats[3]) / max(now - window_start, 1e-9)
                    train_seconds += now - window_start
                    session_tokens += float(stats[3])
                    last_loss = float(stats[0]) / (window_steps * env.world_size)
                    record = {
                        "event": "train", "step": self.step, "epoch": self.epoch, "phase": self.phase,
                        "lr": lr, "loss": last_loss,
                        "mlm_loss": float(stats[1]) / (window_steps * env.world_size),
                        "nsp_loss": float(stats[2]) / (window_steps * env.world_size)
                        if self.config.data.objective != "mlm" else None,
                        "tokens_per_s": tokens_per_s, "elapsed_s": elapsed,
                    }  # fmt: skip
                    if self.config.distill.enabled:
                        windows = window_steps * env.world_size
                        record["distill_ce_loss"] = float(stats[4]) / windows
                        record["distill_cos_loss"] = float(stats[5]) / windows
                    metrics.log(record)
                    bar.set_postfix(loss=f"{last_loss:.4f}", tok_s=f"{tokens_per_s:,.0f}")
                    window.zero_()
                    window_steps, window_start = 0, now
                if self.on_step is not None:
                    self.on_step(self.step)
                if stop.reason is not None or flags[0] > 0:
                    stopped = "signal"
                    break
                if self.budget is not None and elapsed >= self.budget:
                    stopped = "budget"
                    break
                pause = time.monotonic()  # evaluation and saving do not count as training time
                if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step != self.total_steps:
                    eval_metrics = self._evaluate(metrics)
                if cfg.save_every and self.step % cfg.save_every == 0 and self.step != self.total_steps:
                    last_checkpoint = self.save(elapsed)
                paused = time.monotonic() - pause
                window_start += paused
            bar.close()
            if stopped != "signal" and self.step > (self.resumed_step or 0):
                eval_metrics = self._evaluate(metrics)
            last_checkpoint = self.save(elapsed) if self.step > 0 else last_checkpoint
            model_dir = self.out_dir / MODEL_DIR
            plot_path = None
            if stopped != "signal":
                self._export(model_dir)
            if env.is_main:
                metrics.close()
                plot_path = plot_metrics(
                    read_metrics(self.out_dir / METRICS), self.out_dir / "metrics.png", title="pretraining"
                )
        dist_utils.barrier(env)
        return PretrainResult(
            output_dir=self.out_dir,
            model_dir=model_dir,
            checkpoint=last_checkpoint,
            steps=self.step,
            stopped=stopped,
            train_loss=last_loss,
            eval=eval_metrics,
            tokens_per_second=session_tokens / max(train_seconds, 1e-9),
            metrics_path=self.out_dir / METRICS,
            plot_path=plot_path,
            rank=env.rank,
        )

    def _export(self, model_dir: Path) -> None:
        """The final model and tokenizer in the Hugging Face layout, written by rank 0 (a sharded
        model is first gathered whole on rank 0's CPU: every process takes part)."""
        full = None
        if self.sharded:
            from . import fsdp

            full = fsdp.full_state_dict(self.model)
        if self.env.is_main:
            ckpt.write_directory_atomically(
                model_dir,
                lambda tmp: ckpt.save_model_files(
                    tmp, self.model, self.tokenizer, self.config_text, state_dict=full
                ),
            )

    def _evaluate(self, metrics: MetricsLogger) -> dict[str, float]:
        result: dict[str, float] = {}
        # Sharded weights are gathered for every forward: all processes evaluate (the same batches).
        if self.env.is_main or self.sharded:
            batches = self._eval_batches(self.phase)
            if batches:
                loss = None
                if self.sharded:
                    from .fsdp import EVALUATION_METHOD

                    loss = getattr(self.loss_module, EVALUATION_METHOD)
                result = evaluate(self.model, batches, self.env.device, self.bf16, loss)
        if self.env.is_main and result:
            metrics.log({"event": "eval", "step": self.step, "epoch": self.epoch, **result})
            log.info("step %d eval: %s", self.step, ", ".join(f"{k} {v:.4f}" for k, v in result.items()))
        dist_utils.barrier(self.env)
        return result
