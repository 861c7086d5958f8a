"""Optimizers and schedules: BERT's weight-decay exclusions, LAMB against a hand computation,
and the schedule shapes as pure functions."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from _helpers import tiny_config
from bertforge import BertForgeError, BertForPreTraining
from bertforge.train.optim import (
    Lamb,
    OptimConfig,
    ScheduleConfig,
    build_optimizer,
    build_scheduler,
    clip_gradients,
    lr_at_progress,
    lr_multiplier,
    parameter_groups,
    set_lr_multiplier,
)


def test_parameter_groups_exclude_biases_and_layernorm_and_list_each_parameter_once() -> None:
    model = BertForPreTraining(tiny_config())
    decay, no_decay = parameter_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    decay_names = {names[id(p)] for p in decay["params"]}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(n.endswith("bias") or "LayerNorm" in n for n in no_decay_names)
    assert not any(n.endswith("bias") or "LayerNorm" in n for n in decay_names)
    assert "bert.embeddings.LayerNorm.weight" in no_decay_names
    assert "bert.embeddings.word_embeddings.weight" in decay_names
    # The tied decoder weight is the word embedding: one entry, not two.
    all_ids = [id(p) for g in (decay, no_decay) for p in g["params"]]
    assert len(all_ids) == len(set(all_ids)) == len(list(model.parameters()))


def test_parameter_groups_find_layernorm_by_type_and_skip_frozen_parameters() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    model[0].weight.requires_grad_(False)
    decay, no_decay = parameter_groups(model, 0.1)
    assert decay["params"] == []
    assert {id(p) for p in no_decay["params"]} == {id(model[0].bias), id(model[1].weight), id(model[1].bias)}


def test_build_optimizer_makes_fused_adamw_or_lamb() -> None:
    model = nn.Linear(3, 2)
    adamw = build_optimizer(model, OptimConfig(lr=3e-4, betas=[0.9, 0.98]))  # type: ignore[arg-type]
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.defaults["fused"] is True and adamw.defaults["betas"] == (0.9, 0.98)
    assert isinstance(build_optimizer(model, OptimConfig(name="lamb")), Lamb)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "sgd"}, "unknown optimizer 'sgd'; choose from adamw, lamb"),
        ({"lr": 0}, "optim.lr must be > 0"),
        ({"betas": (0.9,)}, "optim.betas must be two numbers"),
        ({"max_grad_norm": -1}, "optim.max_grad_norm must be >= 0"),
    ],
)
def test_optim_config_rejects_bad_values(kwargs: dict, fragment: str) -> None:
    with pytest.raises(BertForgeError, match=fragment):
        OptimConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"decay": "step"}, "unknown schedule decay 'step'; choose from linear, cosine, constant"),
        ({"warmup": -0.1}, "schedule.warmup must be >= 0"),
        ({"warmup": 2.5}, "neither a fraction < 1 nor a whole number"),
        ({"min_lr_ratio": 2}, "min_lr_ratio must be in"),
    ],
)
def test_schedule_config_rejects_bad_values(kwargs: dict, fragment: str) -> None:
    with pytest.raises(BertForgeError, match=fragment):
        ScheduleConfig(**kwargs)


def _reference_lamb(w: torch.Tensor, grads: list[torch.Tensor], lr: float, wd: float) -> torch.Tensor:
    b1, b2, eps = 0.9, 0.999, 1e-6
    m = torch.zeros_like(w)
    v = torch.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        u = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps) + wd * w
        w = w - lr * (w.norm() / u.norm()) * u
    return w


def test_lamb_matches_the_paper_update_with_trust_ratio() -> None:
    torch.manual_seed(0)
    w0 = torch.randn(5, 3)
    grads = [torch.randn(5, 3) for _ in range(3)]
    param = nn.Parameter(w0.clone())
    optimizer = Lamb([param], lr=0.05, weight_decay=0.01)
    for g in grads:
        param.grad = g.clone()
        optimizer.step()
    torch.testing.assert_close(param.detach(), _reference_lamb(w0, grads, 0.05, 0.01))


def test_lamb_uses_trust_ratio_one_for_a_zero_tensor() -> None:
    param = nn.Parameter(torch.zeros(4))
    optimizer = Lamb([param], lr=0.1)
    param.grad = torch.tensor([1.0, -1.0, 2.0, 0.0])
    optimizer.step()
    # First Adam step: m̂/sqrt(v̂) = sign(g), trust ratio 1 because ||w|| = 0.
    torch.testing.assert_close(param.detach(), -0.1 * torch.sign(param.grad), atol=1e-5, rtol=0)


def test_lamb_state_dict_round_trip_continues_identically() -> None:
    torch.manual_seed(1)
    grads = [torch.randn(6) for _ in range(4)]
    straight = nn.Parameter(torch.ones(6))
    opt = Lamb([straight], lr=0.01, weight_decay=0.1)
    for g in grads:
        straight.grad = g.clone()
        opt.step()

    resumed = nn.Parameter(torch.ones(6))
    first = Lamb([resumed], lr=0.01, weight_decay=0.1)
    for g in grads[:2]:
        resumed.grad = g.clone()
        first.step()
    second = Lamb([resumed], lr=0.01, weight_decay=0.1)
    second.load_state_dict(first.state_dict())
    for g in grads[2:]:
        resumed.grad = g.clone()
        second.step()
    torch.testing.assert_close(resumed.detach(), straight.detach(), rtol=0, atol=0)


def test_linear_schedule_warms_up_then_decays_to_the_floor() -> None:
    config = ScheduleConfig(warmup=4, decay="linear", min_lr_ratio=0.0)
    values = [lr_multiplier(s, 12, config) for s in range(12)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]
    assert values[4:] == pytest.approx([1 - k / 8 for k in range(8)])
    assert values[0] > 0  # the first update is not wasted


def test_warmup_fraction_counts_steps_of_the_total() -> None:
    config = ScheduleConfig(warmup=0.1)
    assert lr_multiplier(9, 100, config) == 1.0
    assert lr_multiplier(4, 100, config) == 0.5


def test_cosine_and_constant_schedules_and_min_lr_ratio() -> None:
    cosine = ScheduleConfig(warmup=0, decay="cosine", min_lr_ratio=0.1)
    assert lr_multiplier(0, 10, cosine) == pytest.approx(1.0)
    assert lr_multiplier(5, 10, cosine) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_multiplier(10, 10, cosine) == pytest.approx(0.1)
    constant = ScheduleConfig(warmup=2, decay="constant")
    assert [lr_multiplier(s, 10, constant) for s in range(4)] == [0.5, 1.0, 1.0, 1.0]


def test_lr_at_progress_stretches_the_schedule_over_a_budget() -> None:
    config = ScheduleConfig(warmup=0.2, decay="linear")
    assert lr_at_progress(0.1, config) == pytest.approx(0.5)
    assert lr_at_progress(0.2, config) == pytest.approx(1.0)
    assert lr_at_progress(0.6, config) == pytest.approx(0.5)
    assert lr_at_progress(1.5, config) == pytest.approx(0.0)
    with pytest.raises(BertForgeError, match="give a fraction of the budget"):
        lr_at_progress(0.5, ScheduleConfig(warmup=100))


def test_build_scheduler_follows_lr_multiplier_and_set_lr_multiplier_scales_base_lr() -> None:
    model = nn.Linear(2, 2)
    optimizer = build_optimizer(model, OptimConfig(lr=0.1))
    config = ScheduleConfig(warmup=2, decay="cosine")
    scheduler = build_scheduler(optimizer, config, total_steps=6)
    seen = []
    for _ in range(6):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.1 * lr_multiplier(s, 6, config) for s in range(6)])
    set_lr_multiplier(optimizer, 0.5)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.05, 0.05])


def test_clip_gradients_returns_the_norm_before_clipping() -> None:
    layer = nn.Linear(2, 1, bias=False)
    layer.weight.grad = torch.tensor([[3.0, 4.0]])
    assert clip_gradients(layer, 1.0) == pytest.approx(5.0)
    torch.testing.assert_close(layer.weight.grad, torch.tensor([[0.6, 0.8]]))
    layer.weight.grad = torch.tensor([[3.0, 4.0]])
    assert clip_gradients(layer, 0.0) == pytest.approx(5.0)
    torch.testing.assert_close(layer.weight.grad, torch.tensor([[3.0, 4.0]]))
