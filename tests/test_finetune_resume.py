"""Fine-tuning resumes exactly: checkpoints every epoch and every save_steps (atomic, verified),
a run cut short and resumed computes the same losses and the same final model as one that never
stopped; settings that would change the run are refused; a completed run leaves no checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from safetensors.torch import load_file

from _task_data import FAST, single_thread, workspace, write_sentiment  # noqa: F401
from bertforge import BertForgeError
from bertforge.cli import main
from bertforge.train import finetune as finetune_module
from bertforge.train.checkpointing import list_checkpoints, load_trainer_state, verify_checkpoint
from bertforge.train.finetune import finetune
from bertforge.train.finetune_config import FinetuneConfig
from bertforge.train.logging import read_metrics


@pytest.fixture(scope="module")
def data() -> Path:
    root = workspace()
    write_sentiment(root / "resume-train.tsv", 96, seed=3)
    write_sentiment(root / "resume-dev.tsv", 32, seed=4)
    return root


def _config(data: Path, out: Path, **extra: object) -> FinetuneConfig:
    return FinetuneConfig(
        task="classification", model=str(data / "tiny"), train=str(data / "resume-train.tsv"),
        dev=str(data / "resume-dev.tsv"), out=str(out),
        **{**FAST, "epochs": 3, "eval_steps": 4, "save_steps": 2, "batch_size": 8, "dropout": 0.2, **extra},
    )  # fmt: skip


def _curve(out: Path) -> list[tuple]:
    """Every logged loss and dev metric, without the wall-clock fields."""
    return [
        tuple(sorted((k, v) for k, v in r.items() if k != "elapsed"))
        for r in read_metrics(out / "metrics.jsonl")
    ]


class Crash(Exception):
    pass


def test_resume_after_a_crash_reproduces_the_uninterrupted_run(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = finetune(_config(data, tmp_path / "straight"), progress=False)
    assert straight.steps == 36 and not list_checkpoints(tmp_path / "straight")

    real_step, calls = finetune_module.training_step, []

    def crashing_step(*args: object, **kwargs: object) -> float:
        calls.append(1)
        if len(calls) == 19:  # after the checkpoint at step 18 (save_steps 2), mid-epoch 2
            raise Crash
        return real_step(*args, **kwargs)  # type: ignore[arg-type]

    out = tmp_path / "resumed"
    monkeypatch.setattr(finetune_module, "training_step", crashing_step)
    with pytest.raises(Crash):
        finetune(_config(data, out), progress=False)
    (checkpoint,) = list_checkpoints(out)  # keep_checkpoints=1
    assert checkpoint.name == "checkpoint-000018" and verify_checkpoint(checkpoint) is None
    state = load_trainer_state(checkpoint)
    assert (state["step"], state["epoch"], state["position"]) == (18, 1, 6)

    monkeypatch.setattr(finetune_module, "training_step", real_step)
    resumed = finetune(_config(data, out, resume=True), progress=False)
    assert resumed.steps == 36 and resumed.best_step == straight.best_step
    assert resumed.best_value == straight.best_value
    assert _curve(out) == _curve(tmp_path / "straight")
    a, b = load_file(tmp_path / "straight" / "model.safetensors"), load_file(out / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list_checkpoints(out) and not [p for p in out.iterdir() if p.name.startswith(".")]


def test_resume_at_an_epoch_end_and_from_the_cli(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    real_step, calls = finetune_module.training_step, []

    def crashing_step(*args: object, **kwargs: object) -> float:
        calls.append(1)
        if len(calls) == 13:  # just after the epoch-end checkpoint at step 12
            raise Crash
        return real_step(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(finetune_module, "training_step", crashing_step)
    with pytest.raises(Crash):
        finetune(_config(data, out, save_steps=None), progress=False)
    state = load_trainer_state(out / "checkpoint-000012")
    assert (state["step"], state["epoch"], state["position"]) == (12, 0, 12)
    monkeypatch.setattr(finetune_module, "training_step", real_step)

    # A setting that changes the run is refused, naming it.
    with pytest.raises(BertForgeError, match=r"cannot resume .* \(lr 0.002 -> 0.001\)"):
        finetune(_config(data, out, save_steps=None, resume=True, lr=1e-3), progress=False)

    straight = finetune(_config(data, tmp_path / "straight", save_steps=None), progress=False)
    args = [
        "finetune", "--task", "classification", "--model", str(data / "tiny"),
        "--train", str(data / "resume-train.tsv"), "--dev", str(data / "resume-dev.tsv"), "--out", str(out),
        "--epochs", "3", "--eval-steps", "4", "--lr", str(FAST["lr"]), "--batch-size", "8",
        "--max-seq-length", "64", "--warmup", "0.1", "--dropout", "0.2", "--resume",
    ]  # fmt: skip
    assert main(args) == 0
    assert _curve(out) == _curve(tmp_path / "straight")
    assert straight.steps == 36 and not list_checkpoints(out)


def test_keep_checkpoints_zero_writes_none(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = []
    monkeypatch.setattr(finetune_module.ckpt, "save_checkpoint", lambda *a, **k: saved.append(a))
    finetune(_config(data, tmp_path, keep_checkpoints=0, epochs=1), progress=False)
    assert saved == []
    with pytest.raises(BertForgeError, match="keep_checkpoints"):
        _config(data, tmp_path, keep_checkpoints=-1)
