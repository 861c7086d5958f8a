"""The pretraining loop end to end on a tiny model: the CLI, checkpoints that transformers loads,
exact resume after a signal, a full disk, vocabulary mismatches, phases, budgets, LAMB and bf16."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published before it joined the standard library
    import tomli as tomllib
import torch

from _pretrain_helpers import make_dataset, tiny_overrides, tiny_recipe
from bertforge import BertForgeError, BertForMaskedLM, BertForPreTraining
from bertforge.cli import main
from bertforge.train import checkpointing
from bertforge.train.checkpointing import latest_checkpoint, list_checkpoints, load_trainer_state
from bertforge.train.logging import MetricsLogger, plot_metrics, read_metrics
from bertforge.train.pretrain import pretrain
from bertforge.train.recipe import config_from_dict


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, most of all on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_dataset(tmp_path_factory.mktemp("alice"))


def _losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(out / "metrics.jsonl") if r["event"] == "train"}


def _cli_args(overrides: dict[str, str]) -> list[str]:
    return [item for key, value in overrides.items() for item in (f"--{key}", value)]


def test_cli_pretrain_writes_checkpoints_that_bertforge_and_transformers_load(
    corpus: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transformers = pytest.importorskip("transformers")
    out = tmp_path / "run"
    overrides = tiny_overrides(*corpus, out)
    overrides.pop("output_dir")
    args = ["pretrain", *_cli_args(overrides), "--train.save_every", "1", "--train.keep_last", "2"]
    assert main([*args, "--train.tensorboard", "true", "--out", str(out)]) == 0
    assert "trained 3 steps (completed)" in capsys.readouterr().out

    records = read_metrics(out / "metrics.jsonl")
    train = [r for r in records if r["event"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 and r["tokens_per_s"] > 0 for r in train)
    (evaluation,) = [r for r in records if r["event"] == "eval"]
    assert {"eval_mlm_loss", "eval_perplexity", "eval_mlm_accuracy", "eval_nsp_accuracy"} <= set(evaluation)
    assert evaluation["eval_perplexity"] == pytest.approx(math.exp(evaluation["eval_mlm_loss"]))

    # keep_last=2 of the three saves; the newest is complete and self-contained.
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-000002", "checkpoint-000003"]
    assert not list(out.glob(".*tmp"))
    assert (out / "metrics.png").is_file() and list((out / "tensorboard").iterdir())
    resolved = config_from_dict(tomllib.loads((out / "resolved_config.toml").read_text()))
    assert resolved.train.max_steps == 3 and resolved.output_dir == str(out)

    ours = BertForPreTraining.from_pretrained(out / "model")
    theirs = transformers.BertForPreTraining.from_pretrained(out / "checkpoint-000003")
    assert ours.config.vocab_size == theirs.config.vocab_size == 300
    tokenizer = transformers.AutoTokenizer.from_pretrained(out / "checkpoint-000003")
    batch = tokenizer(["alice was beginning to get very tired"], return_tensors="pt")
    with torch.no_grad():
        expected = theirs(**batch).prediction_logits
        got = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).prediction_logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_resume_after_sigint_reproduces_the_uninterrupted_run(
    corpus: tuple[Path, Path], tmp_path: Path
) -> None:
    # Dropout stays on (0.1): the resumed run must restore the torch RNG too.
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background by a shell
    straight = pretrain(tiny_recipe(*corpus, tmp_path / "straight", train__max_steps=6), progress=False)
    assert straight.stopped == "completed" and straight.steps == 6

    config = tiny_recipe(*corpus, tmp_path / "resumed", train__max_steps=6)

    def interrupt(step: int) -> None:
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the real handler path

    first = pretrain(config, progress=False, on_step=interrupt)
    assert first.stopped == "signal" and first.steps == 3
    assert first.checkpoint == tmp_path / "resumed" / "checkpoint-000003"
    assert not (tmp_path / "resumed" / "model").exists()
    assert signal.getsignal(signal.SIGINT) == before  # handlers restored

    second = pretrain(config, progress=False, resume=True)
    assert second.stopped == "completed" and second.steps == 6
    assert _losses(tmp_path / "resumed") == _losses(tmp_path / "straight")
    assert second.eval == straight.eval
    a = BertForPreTraining.from_pretrained(tmp_path / "straight" / "model").state_dict()
    b = BertForPreTraining.from_pretrained(tmp_path / "resumed" / "model").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_saves_a_resumable_checkpoint(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    def terminate(step: int) -> None:
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    result = pretrain(tiny_recipe(*corpus, tmp_path, train__max_steps=5), progress=False, on_step=terminate)
    assert (result.stopped, result.steps) == ("signal", 2)
    state = load_trainer_state(latest_checkpoint(tmp_path))  # type: ignore[arg-type]
    assert state["step"] == 2 and state["position"] == 2 and state["epoch"] == 0
    assert set(state["rng"]) >= {"python", "numpy", "torch"}


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(
    corpus: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = torch.save
    calls = []

    def save(obj: object, path: object, *args: object, **kwargs: object) -> None:
        calls.append(path)
        if len(calls) == 2:  # model files already written: fail mid-checkpoint
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_save(obj, path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(checkpointing.torch, "save", save)
    config = tiny_recipe(*corpus, tmp_path, train__max_steps=4, train__save_every=2)
    with pytest.raises(BertForgeError) as caught:
        pretrain(config, progress=False)
    message = str(caught.value)
    assert "no space left on device while writing" in message and "checkpoint-000004" in message
    assert f"the previous checkpoint {tmp_path / 'checkpoint-000002'} is intact" in message
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-000002"
    assert not list(tmp_path.glob(".checkpoint-*"))
    assert load_trainer_state(tmp_path / "checkpoint-000002")["step"] == 2
    BertForPreTraining.from_pretrained(tmp_path / "checkpoint-000002")


def test_vocabulary_mismatch_between_dataset_and_tokenizer_or_checkpoint_is_a_clear_error(
    corpus: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset, tokenizer = corpus
    other_dataset, other_tokenizer = make_dataset(tmp_path / "other", vocab_size=250, lines=400)
    # A tokenizer that is not the dataset's:
    overrides = tiny_overrides(dataset, other_tokenizer, tmp_path / "run")
    assert main(["pretrain", *_cli_args(overrides)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bertforge: error: dataset") and "was built with a different vocabulary" in err
    assert err.count("\n") == 1
    # Resuming a run on a dataset built with another vocabulary:
    pretrain(tiny_recipe(dataset, tokenizer, tmp_path / "run", train__max_steps=1), progress=False)
    with pytest.raises(
        BertForgeError, match="cannot resume from .*checkpoint-000001: dataset .* different vocabulary"
    ):
        pretrain(tiny_recipe(other_dataset, other_tokenizer, tmp_path / "run"), progress=False, resume=True)


def test_cli_reports_a_bad_recipe_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[optim]\nlearning_rate = 1e-4\n")
    assert main(["pretrain", "--config", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "bertforge: error: unknown recipe key 'optim.learning_rate'; valid keys in [optim]: "
        "name, lr, weight_decay, betas, eps, max_grad_norm\n"
    )
    assert main(["pretrain", "--train.batch_size", "many"]) == 2
    assert "recipe key 'train.batch_size' must be an integer, got 'many'" in capsys.readouterr().err
    assert main(["pretrain"]) == 2
    assert "no dataset given; pass --data.dataset DIR" in capsys.readouterr().err


def test_two_phases_switch_sequence_length_and_resume_inside_the_second(
    corpus: tuple[Path, Path], tmp_path: Path
) -> None:
    phases = (
        '[{"fraction": 0.5, "max_seq_length": 16}, {"fraction": 0.5, "max_seq_length": 48, "batch_size": 2}]'
    )
    config = tiny_recipe(*corpus, tmp_path, train__max_steps=4, train__phases=phases, train__save_every=3)
    result = pretrain(config, progress=False)
    train = [r for r in read_metrics(result.metrics_path) if r["event"] == "train"]  # type: ignore[arg-type]
    assert [r["phase"] for r in train] == [0, 0, 1, 1]
    state = load_trainer_state(tmp_path / "checkpoint-000003")
    assert (state["phase"], state["position"], state["instances_per_batch"]) == (1, 1, 2)
    losses = _losses(tmp_path)
    pretrain(config, progress=False, resume=tmp_path / "checkpoint-000003")
    assert _losses(tmp_path) == losses


def test_time_budget_stops_the_run_and_drives_the_schedule(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    config = tiny_recipe(*corpus, tmp_path, train__max_steps="none", train__budget="1s", schedule__warmup=0.5)
    result = pretrain(config, progress=False)
    assert result.stopped == "budget" and result.steps >= 1
    assert latest_checkpoint(tmp_path) is not None and (tmp_path / "model" / "model.safetensors").is_file()
    lrs = [r["lr"] for r in read_metrics(result.metrics_path) if r["event"] == "train"]  # type: ignore[arg-type]
    assert lrs[0] < 1e-4  # warm-up starts from ~0 at elapsed 0, not from the peak


def test_mlm_objective_with_lamb_and_bf16_trains_a_masked_lm(
    corpus: tuple[Path, Path], tmp_path: Path
) -> None:
    config = tiny_recipe(
        *corpus, tmp_path, data__objective="mlm", optim__name="lamb", train__dtype="bf16", train__grad_accum=2
    )
    result = pretrain(config, progress=False)
    assert math.isfinite(result.train_loss)  # type: ignore[arg-type]
    assert "eval_nsp_accuracy" not in result.eval
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["architectures"] == ["BertForMaskedLM"] and saved["vocab_size"] == 300
    BertForMaskedLM.from_pretrained(tmp_path / "model")


def test_epochs_set_the_number_of_steps(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    from bertforge.data.dataset import TokenDataset
    from bertforge.tokenizer import BertTokenizer
    from bertforge.train.pretrain_data import build_pretraining_data

    config = tiny_recipe(*corpus, tmp_path, train__max_steps="none", train__epochs=0.02, train__batch_size=8)
    data = build_pretraining_data(
        TokenDataset.open(corpus[0]),
        config,
        config.phases()[0],
        BertTokenizer.from_pretrained(corpus[1]),
        seed=0,
    )
    expected = math.ceil(0.02 * (data.epoch_size(0) // 8))
    assert pretrain(config, progress=False).steps == expected


def test_metrics_logger_drops_records_after_the_resumed_step(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with MetricsLogger(path) as log:
        for step in (1, 2, 3):
            log.log({"event": "train", "step": step, "loss": float(step), "skip": None})
    with MetricsLogger(path, resume_step=2) as log:
        log.log({"event": "train", "step": 3, "loss": 30.0, "value": float("nan")})
    assert read_metrics(path) == [
        {"event": "train", "step": 1, "loss": 1.0},
        {"event": "train", "step": 2, "loss": 2.0},
        {"event": "train", "step": 3, "loss": 30.0, "value": "nan"},
    ]
    MetricsLogger(tmp_path / "off.jsonl", enabled=False).log({"step": 1})
    assert not (tmp_path / "off.jsonl").exists()


def test_plot_is_skipped_when_matplotlib_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [
        {"event": "train", "step": 1, "loss": 2.0, "lr": 1e-4},
        {"event": "eval", "step": 1, "eval_mlm_accuracy": 0.1},
    ]
    assert plot_metrics(records, tmp_path / "a.png") == tmp_path / "a.png"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert plot_metrics(records, tmp_path / "b.png") is None
    assert not (tmp_path / "b.png").exists()
