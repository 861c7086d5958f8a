"""Multi-seed fine-tuning (``--seeds``): one run per seed, summary.json with mean ± sample std of every
dev metric, the best seed's model in OUT (and only there unless keep_all), atomic writes, a failed
seed named; binary classification's positive-class F1, the same in finetune and evaluate."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from safetensors.torch import load_file

from _task_data import FAST, single_thread, workspace, write_sentiment  # noqa: F401
from bertforge import BertForgeError
from bertforge.cli import main
from bertforge.pipelines.evaluation import run_on_file
from bertforge.train import seeds as seeds_module
from bertforge.train.finetune import finetune
from bertforge.train.finetune_config import FinetuneConfig
from bertforge.train.seeds import finetune_seeds, format_table, mean_std, parse_seeds

MODEL_FILES = {"config.json", "model.safetensors", "vocab.txt"}


@pytest.fixture(scope="module")
def data() -> Path:
    root = workspace()
    write_sentiment(root / "seeds-train.tsv", 96, seed=11)
    write_sentiment(root / "seeds-dev.tsv", 40, seed=12)
    return root


def config(data: Path, out: Path, **options) -> FinetuneConfig:
    files = {"train": str(data / "seeds-train.tsv"), "dev": str(data / "seeds-dev.tsv")}
    return FinetuneConfig(
        task="classification", model=str(data / "tiny"), out=str(out), epochs=1,
        **{**FAST, **files, **options},
    )  # fmt: skip


@pytest.fixture(scope="module")
def three_seeds(data: Path, tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("seeds") / "out"
    return finetune_seeds(config(data, out), [3, 1, 2], progress=False), out


def test_one_run_per_seed_with_its_metrics_and_a_summary(three_seeds) -> None:
    result, out = three_seeds
    assert result.seeds == [3, 1, 2] and len(result.runs) == 3
    for seed in (3, 1, 2):
        records = [
            json.loads(line) for line in (out / f"seed-{seed}" / "metrics.jsonl").read_text().splitlines()
        ]
        assert any(r["event"] == "eval" and "dev_accuracy" in r for r in records)
        assert json.loads((out / f"seed-{seed}" / "finetune_config.json").read_text())["seed"] == seed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [3, 1, 2] and summary["main_metric"] == "accuracy"
    assert {"accuracy", "macro_f1", "mcc", "f1"} <= set(summary["mean"])
    for name, mean in summary["mean"].items():
        values = [run["dev"][name] for run in summary["runs"]]
        assert mean == pytest.approx(statistics.mean(values))
        assert summary["std"][name] == pytest.approx(statistics.stdev(values))  # sample std, n - 1
    best = max(summary["runs"], key=lambda r: r["dev"]["accuracy"])  # max keeps the first on ties
    assert summary["best_seed"] == best["seed"] == result.best_seed
    assert not any(p.name.startswith(".") for p in out.rglob("*"))  # no temporary files left


def test_the_best_seeds_model_is_in_out_and_the_others_keep_metrics_only(three_seeds) -> None:
    result, out = three_seeds
    assert {p.name for p in out.iterdir()} >= MODEL_FILES
    for seed in result.seeds:
        names = {p.name for p in (out / f"seed-{seed}").iterdir()}
        assert not names & MODEL_FILES, (seed, names)
    # the kept model is the best seed's: evaluate gives its dev metrics, f1 included
    metrics, _, _ = run_on_file(out, workspace() / "seeds-dev.tsv")
    best = result.runs[result.seeds.index(result.best_seed)].best_metrics
    assert metrics == pytest.approx(best)
    assert result.best.out == out and result.best.best_value == best["accuracy"]


def test_a_seed_of_the_set_equals_the_single_run_with_that_seed(
    data: Path, three_seeds, tmp_path: Path
) -> None:
    result, out = three_seeds
    single = finetune(config(data, tmp_path / "single", seed=result.best_seed), progress=False)
    assert single.best_metrics == result.runs[result.seeds.index(result.best_seed)].best_metrics
    a, b = load_file(out / "model.safetensors"), load_file(tmp_path / "single" / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)


def test_table_shows_every_seed_and_mean_plus_minus_std(three_seeds) -> None:
    result, _ = three_seeds
    table = format_table(result.summary)
    assert "mean ± std" in table and "accuracy" in table and "f1" in table
    assert f"{result.best_seed}*" in table


def test_cli_seeds_keep_all_prints_table_and_json(data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code = main([
        "finetune", "--task", "classification", "--model", str(data / "tiny"),
        "--train", str(data / "seeds-train.tsv"), "--dev", str(data / "seeds-dev.tsv"), "--out", str(out),
        "--epochs", "1", "--batch-size", "16", "--lr", "2e-3", "--max-seq-length", "64",
        "--seeds", "0,1", "--keep-all",
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    printed = json.loads(captured.out.strip().splitlines()[-1])
    assert printed["seeds"] == [0, 1] and printed["summary"] == str(out / "summary.json")
    assert "mean ± std" in captured.err
    for seed in (0, 1):  # --keep-all: every seed's directory is a checkpoint too
        assert {p.name for p in (out / f"seed-{seed}").iterdir()} >= MODEL_FILES
    assert {p.name for p in out.iterdir()} >= MODEL_FILES


def test_finetune_with_config_seeds_runs_the_set(data: Path, tmp_path: Path) -> None:
    result = finetune(config(data, tmp_path / "out", seeds=[5, 6]), progress=False)
    assert result.out == tmp_path / "out"
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["seeds"] == [5, 6]


def test_a_failed_seed_is_an_error_naming_it_and_no_summary_is_written(
    data: Path, tmp_path: Path, monkeypatch
) -> None:
    real = finetune

    def failing(run_config, progress=True):
        if run_config.seed == 8:
            raise BertForgeError("disk on fire")
        return real(run_config, progress=progress)

    monkeypatch.setattr("bertforge.train.finetune.finetune", failing)
    with pytest.raises(BertForgeError, match=r"seed 8 \(2 of 2\) failed: disk on fire"):
        finetune_seeds(config(data, tmp_path / "out"), [7, 8], progress=False)
    assert not (tmp_path / "out" / "summary.json").exists()
    assert seeds_module.SUMMARY_FILE == "summary.json"


def test_seed_lists_and_their_errors(data: Path, tmp_path: Path, capsys) -> None:
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3-5, 9") == [3, 4, 5, 9]
    with pytest.raises(BertForgeError, match="repeats seed"):
        parse_seeds("1,1")
    with pytest.raises(BertForgeError, match="not an integer"):
        parse_seeds("1,x")
    with pytest.raises(BertForgeError, match=r"seeds= needs a dev file \(dev=\)"):
        finetune_seeds(config(data, tmp_path / "o", dev=None), [0, 1], progress=False)
    assert mean_std([1.0]) == (1.0, None) and mean_std([1.0, 3.0]) == (2.0, pytest.approx(2**0.5))
    base = ["finetune", "--task", "classification", "--model", str(data / "tiny"),
            "--train", str(data / "seeds-train.tsv"), "--out", str(tmp_path / "o")]  # fmt: skip
    assert main([*base, "--seeds", "0,1"]) == 2
    assert "--seeds needs a dev file (--dev)" in capsys.readouterr().err  # CLI words: flags
    assert main([*base, "--seeds", "0,1", "--seed", "3"]) == 2
    assert "--seed or --seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--seeds", "1,1"])
    assert "repeats seed" in capsys.readouterr().err


# ------------------------------------------------------------------ positive-class F1 (binary)
def test_binary_f1_is_the_positive_class_and_finetune_and_evaluate_agree(data: Path, tmp_path: Path) -> None:
    for name in ("train", "dev"):  # labels named negative/positive: the positive class is "positive"
        text = (
            (data / f"seeds-{name}.tsv")
            .read_text()
            .replace("\t0\n", "\tnegative\n")
            .replace("\t1\n", "\tpositive\n")
        )
        (tmp_path / f"{name}.tsv").write_text(text)
    run = finetune(
        config(data, tmp_path / "out", train=str(tmp_path / "train.tsv"), dev=str(tmp_path / "dev.tsv")),
        progress=False,
    )
    assert {"accuracy", "macro_f1", "mcc", "f1"} <= set(run.best_metrics)
    metrics, predictions, _ = run_on_file(tmp_path / "out", tmp_path / "dev.tsv")
    assert metrics == pytest.approx(run.best_metrics)
    from bertforge.tasks.metrics import f1

    gold = [line.rsplit("\t", 1)[1] for line in (tmp_path / "dev.tsv").read_text().splitlines()[1:]]
    assert metrics["f1"] == pytest.approx(f1([p["label"] for p in predictions], gold, pos_label="positive"))


def test_positive_label_is_the_models_label_id_1() -> None:
    from bertforge.tasks.metrics import positive_label, task_metrics

    assert positive_label(["0", "1"]) == "1" and positive_label(["negative", "positive"]) == "positive"
    assert positive_label(["a", "b", "c"]) is None
    assert positive_label(None, ["yes", "no", "yes"]) == "yes"  # sorted: no, yes
    assert positive_label(None, ["1", "1"]) == "1" and positive_label(None, ["a"]) is None
    # the model's label set decides even when the dev set holds one class only
    scores = task_metrics("classification", ["no", "no"], ["no", "no"], labels=["no", "yes"])
    assert scores["f1"] == 0.0 and scores["accuracy"] == 1.0
