"""Data parallelism: two gloo processes with grad_accum=1 make the same updates as one process with
grad_accum=2 (micro-batch i of a step goes to rank i; DDP averages what accumulation averages)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from _pretrain_helpers import make_dataset, tiny_recipe
from bertforge.train.checkpointing import list_checkpoints
from bertforge.train.logging import read_metrics
from bertforge.train.pretrain import pretrain

NO_DROPOUT = {"model__hidden_dropout_prob": 0.0, "model__attention_probs_dropout_prob": 0.0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, dataset: str, tokenizer: str, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    config = tiny_recipe(Path(dataset), Path(tokenizer), Path(out), train__save_every=2, **NO_DROPOUT)
    result = pretrain(config, progress=False)
    assert result.steps == 3


def test_two_gloo_processes_match_one_process_with_gradient_accumulation(tmp_path: Path) -> None:
    dataset, tokenizer = make_dataset(tmp_path / "alice")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = pretrain(
            tiny_recipe(dataset, tokenizer, tmp_path / "single", train__grad_accum=2, **NO_DROPOUT),
            progress=False,
        )
    finally:
        torch.set_num_threads(threads)
    mp.spawn(
        _worker,
        args=(2, _free_port(), str(dataset), str(tokenizer), str(tmp_path / "ddp")),
        nprocs=2,
        join=True,
    )

    expected = load_file(single.model_dir / "model.safetensors")
    got = load_file(tmp_path / "ddp" / "model" / "model.safetensors")
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=2e-6, rtol=1e-5, msg=key)
    # ... and the comparison is not vacuous: step 3 changed the weights.
    step2 = load_file(tmp_path / "ddp" / "checkpoint-000002" / "model.safetensors")
    assert any(not torch.equal(step2[k], got[k]) for k in got)

    losses = [r["loss"] for r in read_metrics(single.metrics_path) if r["event"] == "train"]  # type: ignore[arg-type]
    ddp_losses = [
        r["loss"] for r in read_metrics(tmp_path / "ddp" / "metrics.jsonl") if r["event"] == "train"
    ]
    assert ddp_losses == pytest.approx(losses, rel=1e-5)
    # Rank 0 alone wrote: checkpoints at 2 and 3, one metrics line per step.
    assert [p.name for p in list_checkpoints(tmp_path / "ddp")] == ["checkpoint-000002", "checkpoint-000003"]
    assert len(ddp_losses) == 3
