"""Activation checkpointing (``gradient_checkpointing_enable``): every family's training step gives
the same loss and gradients as without, dropout included, while keeping far fewer tensors for the
backward; and ``finetune --gradient-checkpointing`` turns it on."""

from __future__ import annotations

import pytest
import torch

import bertforge
from _helpers import TINY, assert_close, padded_batch

CONFIGS = {
    "bert": lambda: bertforge.BertConfig(**TINY, hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2),
    "albert": lambda: bertforge.AlbertConfig(
        **TINY,
        embedding_size=16,
        num_hidden_groups=2,
        hidden_dropout_prob=0.2,
        attention_probs_dropout_prob=0.2,
    ),
    "distilbert": lambda: bertforge.DistilBertConfig(
        vocab_size=TINY["vocab_size"],
        dim=32,
        n_layers=2,
        n_heads=4,
        hidden_dim=37,
        dropout=0.2,
        attention_dropout=0.2,
    ),
}
PREFIX = {"bert": "Bert", "albert": "Albert", "distilbert": "DistilBert"}


def step(
    model: torch.nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    """Loss, gradients and the number of tensors kept for the backward, under seed 3."""
    kept = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal kept
        kept += 1
        return tensor

    model.zero_grad()
    torch.manual_seed(3)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, kept


@pytest.mark.parametrize("family", CONFIGS)
def test_checkpointed_steps_equal_plain_ones_with_dropout_and_keep_fewer_tensors(family):
    torch.manual_seed(0)
    model = getattr(bertforge, PREFIX[family] + "ForTokenClassification")(CONFIGS[family]()).train()
    batch = padded_batch()
    if family == "distilbert":
        batch.pop("token_type_ids")
    batch["labels"] = torch.randint(0, 2, batch["input_ids"].shape).masked_fill(
        batch["attention_mask"] == 0, -100
    )
    loss, grads, kept = step(model, batch)
    assert not model.is_gradient_checkpointing
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    checkpointed_loss, checkpointed_grads, checkpointed_kept = step(model, batch)
    assert_close(checkpointed_loss, loss, atol=1e-6)
    assert checkpointed_grads.keys() == grads.keys()
    for name, grad in grads.items():
        assert_close(checkpointed_grads[name], grad, atol=1e-6)
    assert checkpointed_kept < kept / 2
    model.gradient_checkpointing_disable()
    assert step(model, batch)[2] == kept


def test_checkpointing_is_off_in_eval_and_without_gradients(monkeypatch):
    model = bertforge.BertModel(bertforge.BertConfig(**TINY))
    model.gradient_checkpointing_enable()
    calls: list[int] = []
    real = torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(
        torch.utils.checkpoint, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    batch = padded_batch()
    model.eval()(**batch)
    with torch.no_grad():
        model.train()(**batch)
    assert not calls
    model.train()(**batch)
    assert len(calls) == TINY["num_hidden_layers"]


def test_finetune_flag_reaches_the_config():
    from bertforge.cli import build_parser
    from bertforge.cli.tasks import config_options
    from bertforge.train.finetune_config import FinetuneConfig

    args = build_parser().parse_args(
        [
            "finetune",
            "--task",
            "classification",
            "--model",
            "m",
            "--train",
            "t.tsv",
            "--out",
            "o",
            "--gradient-checkpointing",
        ]
    )
    assert config_options(args, FinetuneConfig)["gradient_checkpointing"] is True
