"""Sharded training (FSDP2, ``train.parallel = "fsdp"``): two gloo processes make DDP's updates, write
DCP-sharded checkpoints that resume on two processes and on one, and export a plain Hugging Face
model. One pair of processes runs every distributed case (module fixture), to keep the file fast."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from _pretrain_helpers import make_dataset, tiny_recipe
from bertforge.config import BertConfig
from bertforge.errors import BertForgeError
from bertforge.heads import BertForPreTraining
from bertforge.models.albert import AlbertForPreTraining
from bertforge.models.albert_config import AlbertConfig
from bertforge.models.distilbert import DistilBertForMaskedLM
from bertforge.models.distilbert_config import DistilBertConfig
from bertforge.train import checkpointing as ckpt
from bertforge.train.fsdp import encoder_blocks
from bertforge.train.logging import read_metrics
from bertforge.train.pretrain import pretrain

NO_DROPOUT = {"model__hidden_dropout_prob": 0.0, "model__attention_probs_dropout_prob": 0.0}
REFUSAL = "refusal.txt"  # what the sharded run said when asked to resume a DDP checkpoint


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _recipe(root: Path, out: str, **extra: object) -> object:
    """3 steps of 2 micro-batches of 4 sequences per process (accumulation skips a reduction)."""
    settings = {"train__save_every": 2, "train__grad_accum": 2, **NO_DROPOUT, **extra}
    return tiny_recipe(root / "alice" / "data", root / "alice" / "tokenizer", root / out, **settings)


def _worker(rank: int, port: int, root: str) -> None:
    """Both ranks: a DDP run, the same run sharded, a sharded resume from its step 2, and the
    refusal to resume a DDP checkpoint sharded. The process group outlives the runs."""
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    dist.init_process_group("gloo")
    try:
        base = Path(root)
        pretrain(_recipe(base, "ddp"), progress=False)  # type: ignore[arg-type]
        pretrain(_recipe(base, "fsdp", train__parallel="fsdp"), progress=False)  # type: ignore[arg-type]
        resumed = _recipe(base, "fsdp-resumed-on-2", train__parallel="fsdp")
        pretrain(resumed, resume=base / "fsdp" / "checkpoint-000002", progress=False)  # type: ignore[arg-type]
        with pytest.raises(BertForgeError) as refused:
            pretrain(_recipe(base, "refused", train__parallel="fsdp"), resume=base / "ddp", progress=False)  # type: ignore[arg-type]
        if rank == 0:
            (base / REFUSAL).write_text(str(refused.value), encoding="utf-8")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fsdp")
    make_dataset(root / "alice")
    mp.spawn(_worker, args=(_free_port(), str(root)), nprocs=2, join=True)
    return root


def _losses(run: Path) -> dict[int, float]:
    return {
        int(r["step"]): float(r["loss"])  # type: ignore[arg-type]
        for r in read_metrics(run / "metrics.jsonl")
        if r["event"] == "train"
    }


def _eval(run: Path) -> dict[str, object]:
    (last,) = [r for r in read_metrics(run / "metrics.jsonl") if r["event"] == "eval"]
    return {k: v for k, v in last.items() if k.startswith("eval_")}


def _assert_same_weights(got_dir: Path, expected_dir: Path) -> None:
    expected = load_file(expected_dir / "model.safetensors")
    got = load_file(got_dir / "model.safetensors")
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=2e-6, rtol=1e-5, msg=key)


def test_two_sharded_processes_match_ddp_losses_and_weights(runs: Path) -> None:
    ddp, fsdp = _losses(runs / "ddp"), _losses(runs / "fsdp")
    assert list(fsdp) == [1, 2, 3]
    assert list(fsdp.values()) == pytest.approx(list(ddp.values()), rel=1e-5)
    # Evaluation gathers the sharded weights on every process and scores the same.
    assert _eval(runs / "fsdp") == pytest.approx(_eval(runs / "ddp"), rel=1e-5)
    # The final model is whole, in the Hugging Face layout, and DDP's weights.
    _assert_same_weights(runs / "fsdp" / "model", runs / "ddp" / "model")
    model = BertForPreTraining.from_pretrained(runs / "fsdp" / "model")
    assert model.config.num_hidden_layers == 2
    # ... and the comparison is not vacuous: training moved the weights.
    ddp_step2 = load_file(runs / "ddp" / "checkpoint-000002" / "model.safetensors")
    final = load_file(runs / "fsdp" / "model" / "model.safetensors")
    assert any(not torch.equal(ddp_step2[k], final[k]) for k in final)


def test_sharded_checkpoint_holds_dcp_shards_of_model_and_optimizer(runs: Path) -> None:
    checkpoint = runs / "fsdp" / "checkpoint-000002"
    assert ckpt.verify_checkpoint(checkpoint) is None
    assert ckpt.is_sharded(checkpoint) and not ckpt.is_sharded(runs / "ddp" / "checkpoint-000002")
    shards = sorted(p.name for p in (checkpoint / ckpt.SHARDED_STATE).iterdir())
    assert shards == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    assert not (checkpoint / "model.safetensors").exists()
    state = ckpt.load_trainer_state(checkpoint)
    assert "optimizer" not in state and state["instances_per_step"] == 16
    assert (checkpoint / "config.json").is_file() and (checkpoint / "vocab.txt").is_file()


def test_sharded_checkpoint_resumes_on_two_processes_and_on_one(runs: Path) -> None:
    uninterrupted = _losses(runs / "fsdp")
    assert _losses(runs / "fsdp-resumed-on-2") == pytest.approx({3: uninterrupted[3]}, rel=1e-5)
    _assert_same_weights(runs / "fsdp-resumed-on-2" / "model", runs / "fsdp" / "model")

    # One process, unsharded, with accumulation 4: the same 16 sequences per optimizer step.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = _recipe(runs, "fsdp-resumed-on-1", train__parallel="fsdp", train__grad_accum=4)
        pretrain(one, resume=runs / "fsdp" / "checkpoint-000002", progress=False)  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(threads)
    assert _losses(runs / "fsdp-resumed-on-1") == pytest.approx({3: uninterrupted[3]}, rel=1e-5)
    _assert_same_weights(runs / "fsdp-resumed-on-1" / "model", runs / "fsdp" / "model")
    # With one process its own checkpoint is still sharded (DCP), so the run can spread out again.
    assert ckpt.is_sharded(runs / "fsdp-resumed-on-1" / "checkpoint-000003")


def test_resume_on_another_process_count_needs_the_same_sequences_per_step(runs: Path) -> None:
    # Saved with 2 processes x batch 4 x accumulation 2; here 1 process x 4 x 2.
    half = _recipe(runs, "half", train__parallel="fsdp")
    with pytest.raises(
        BertForgeError, match=r"16 sequences per optimizer step, this run has 8.*grad_accum 4"
    ):
        pretrain(half, resume=runs / "fsdp" / "checkpoint-000002", progress=False)  # type: ignore[arg-type]


def test_sharded_run_refuses_to_resume_an_unsharded_checkpoint(runs: Path) -> None:
    message = (runs / REFUSAL).read_text(encoding="utf-8")
    assert "unsharded" in message and "--train.parallel ddp" in message


def test_damaged_shard_makes_the_checkpoint_incomplete(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(runs / "fsdp", out)
    shard = out / "checkpoint-000003" / ckpt.SHARDED_STATE / "__1_0.distcp"
    shard.write_bytes(shard.read_bytes()[:-10])
    assert "dcp/__1_0.distcp has" in (ckpt.verify_checkpoint(out / "checkpoint-000003") or "")
    assert ckpt.latest_checkpoint(out) == out / "checkpoint-000002"
    (out / "checkpoint-000002" / ckpt.SHARDED_STATE / ".metadata").unlink()
    assert "dcp/.metadata is missing" in (ckpt.verify_checkpoint(out / "checkpoint-000002") or "")


def test_encoder_blocks_are_each_familys_repeated_layers() -> None:
    bert = BertForPreTraining(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=3,
                                         num_attention_heads=4, intermediate_size=37))  # fmt: skip
    assert encoder_blocks(bert) == list(bert.bert.encoder.layer)
    albert = AlbertForPreTraining(AlbertConfig(vocab_size=99, embedding_size=16, hidden_size=32,
                                               num_hidden_layers=4, num_attention_heads=4,
                                               intermediate_size=37))  # fmt: skip
    assert encoder_blocks(albert) == list(albert.albert.encoder.albert_layer_groups)  # shared: 1 group
    distil = DistilBertForMaskedLM(DistilBertConfig(vocab_size=99, dim=32, n_layers=2, n_heads=4,
                                                    hidden_dim=37))  # fmt: skip
    assert encoder_blocks(distil) == list(distil.distilbert.transformer.layer)
