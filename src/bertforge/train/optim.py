"""Optimizers and learning-rate schedules shared by pretraining and fine-tuning.

* :func:`parameter_groups` applies BERT's weight-decay exclusions: biases and LayerNorm weights are
  not decayed (Devlin et al. 2018, ``optimization.py``: ``exclude_from_weight_decay=["LayerNorm",
  "layer_norm", "bias"]``). LayerNorm is found by module type, so a renamed norm is still excluded.
* :func:`build_optimizer` makes AdamW (fused kernel where torch has one) or :class:`Lamb`.
* A schedule is linear warm-up, then linear / cosine decay or a constant. It is a pure function of
  the step (:func:`lr_multiplier`) or of the fraction of a wall-clock budget spent
  (:func:`lr_at_progress`, as Cramming stretches its schedule over a time budget), so it can be
  tested without an optimizer and resumed from a step count alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import BertForgeError

OPTIMIZERS = ("adamw", "lamb")
DECAYS = ("linear", "cosine", "constant")


@dataclass
class OptimConfig:
    name: str = "adamw"  # "adamw" | "lamb"
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-6
    max_grad_norm: float = 1.0  # 0 disables clipping

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise BertForgeError(f"unknown optimizer {self.name!r}; choose from {', '.join(OPTIMIZERS)}")
        # TOML gives a list; keep the declared tuple type.
        betas = tuple(float(b) for b in self.betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise BertForgeError(f"optim.betas must be two numbers in [0, 1), got {list(self.betas)}")
        self.betas = (betas[0], betas[1])
        if not self.lr > 0:
            raise BertForgeError(f"optim.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise BertForgeError(f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        if not self.eps > 0:
            raise BertForgeError(f"optim.eps must be > 0, got {self.eps}")
        if self.max_grad_norm < 0:
            raise BertForgeError(
                f"optim.max_grad_norm must be >= 0 (0 disables clipping), got {self.max_grad_norm}"
            )


@dataclass
class ScheduleConfig:
    warmup: float = 0.01  # fraction of total steps if < 1, else a step count
    decay: str = "linear"  # "linear" | "cosine" | "constant"
    min_lr_ratio: float = 0.0  # the decay ends at lr * min_lr_ratio

    def __post_init__(self) -> None:
        if self.decay not in DECAYS:
            raise BertForgeError(f"unknown schedule decay {self.decay!r}; choose from {', '.join(DECAYS)}")
        if self.warmup < 0:
            raise BertForgeError(
                f"schedule.warmup must be >= 0 (a fraction < 1 or a step count), got {self.warmup}"
            )
        if self.warmup >= 1 and self.warmup != int(self.warmup):
            raise BertForgeError(
                f"schedule.warmup {self.warmup} is neither a fraction < 1 nor a whole number of steps"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise BertForgeError(f"schedule.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


# ------------------------------------------------------------------------------------- optimizers
def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: decayed weights, and biases + LayerNorm parameters with weight_decay 0.

    Tied parameters (the MLM decoder shares the word embeddings) appear once, as in
    ``model.parameters()``; frozen parameters are left out.
    """
    no_decay_ids: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if isinstance(module, nn.LayerNorm) or name.endswith("bias"):
                no_decay_ids.add(id(param))
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for param in model.parameters():  # deduplicated by identity
        if not param.requires_grad:
            continue
        (no_decay if id(param) in no_decay_ids else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _fused_supported(params: Iterable[torch.Tensor]) -> bool:
    # torch >= 2.4 has fused AdamW kernels for CPU and CUDA floating-point tensors.
    return all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(model, config.weight_decay)
    if config.name == "lamb":
        return Lamb(groups, lr=config.lr, betas=config.betas, eps=config.eps)
    params = [p for g in groups for p in g["params"]]
    if _fused_supported(params):
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps, fused=True)
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps, foreach=True)


class Lamb(torch.optim.Optimizer):
    """LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes").

    Per parameter tensor: the bias-corrected Adam direction plus decoupled weight decay,
    ``u = m̂ / (sqrt(v̂) + eps) + wd * w``, scaled by the layer-wise trust ratio ``||w|| / ||u||``
    (1 when either norm is zero, so freshly zeroed biases still move). The trust ratio applies to
    every tensor, decayed or not, as in the paper and NVIDIA's reference implementation.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"Lamb lr must be > 0, got {lr}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.float()
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
                state["step"] += 1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                m_hat = exp_avg / (1 - beta1 ** state["step"])
                v_hat = exp_avg_sq / (1 - beta2 ** state["step"])
                weight = p.float()
                update = m_hat / (v_hat.sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(weight, alpha=group["weight_decay"])
                w_norm, u_norm = weight.norm(), update.norm()
                trust = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))
                p.add_((update * (-group["lr"] * trust)).to(p.dtype))
        return loss


def clip_gradients(model: nn.Module, max_norm: float) -> float:
    """Clip the global gradient norm to ``max_norm`` (0 disables); returns the norm before clipping."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return 0.0
    if max_norm > 0:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])))


# -------------------------------------------------------------------------------------- schedules
def warmup_steps(total_steps: int, config: ScheduleConfig) -> int:
    if config.warmup < 1:
        return int(round(config.warmup * total_steps))
    return int(config.warmup)


def _decay(progress: float, config: ScheduleConfig) -> float:
    """Multiplier after warm-up; ``progress`` in [0, 1] runs from the end of warm-up to the end."""
    progress = min(max(progress, 0.0), 1.0)
    floor = config.min_lr_ratio
    if config.decay == "constant":
        return 1.0
    if config.decay == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return floor + (1.0 - floor) * (1.0 - progress)


def lr_multiplier(step: int, total_steps: int, config: ScheduleConfig) -> float:
    """Learning-rate multiplier for optimizer step ``step`` (0-based) of ``total_steps``.

    Warm-up rises linearly to 1, reaching it on step ``W - 1`` (so the first update is not
    wasted at lr 0, unlike a ``step / W`` ramp); then the decay runs over the remaining steps.
    """
    warm = warmup_steps(total_steps, config)
    if step < warm:
        return (step + 1) / warm
    return _decay((step - warm) / max(1, total_steps - warm), config)


def lr_at_progress(progress: float, config: ScheduleConfig) -> float:
    """Learning-rate multiplier at ``progress`` = elapsed / budget in [0, 1] (a time-budgeted run).

    Warm-up must then be a fraction (of the budget); a step count has no meaning before the
    number of steps that fit in the budget is known.
    """
    if config.warmup >= 1:
        raise BertForgeError(
            f"schedule.warmup {config.warmup:g} is a step count; with a time budget give a fraction "
            "of the budget instead, e.g. schedule.warmup = 0.05"
        )
    progress = min(max(progress, 0.0), 1.0)
    if progress < config.warmup:
        return progress / config.warmup
    return _decay((progress - config.warmup) / max(1e-12, 1.0 - config.warmup), config)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: ScheduleConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A step-driven schedule: call ``scheduler.step()`` once after each ``optimizer.step()``."""
    if total_steps < 1:
        raise BertForgeError(f"the schedule needs at least one training step, got total_steps={total_steps}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_multiplier(step, total_steps, config))


def set_lr_multiplier(optimizer: torch.optim.Optimizer, multiplier: float) -> None:
    """Set every group's lr to its base lr times ``multiplier`` (for progress-driven schedules).

    The base lr is the group's ``initial_lr`` (set by any torch scheduler) or, failing that, its
    lr when first seen here.
    """
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"] * multiplier
