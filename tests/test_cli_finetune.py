"""``bertforge finetune``, ``evaluate`` and ``predict`` through the real CLI entry point: outputs,
and bad files (wrong column, unknown dev label, empty file, misplaced answer) reported on one line
with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _task_data import single_thread, trained, workspace, write_sentiment  # noqa: F401
from bertforge.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bertforge: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def files() -> Path:
    root = workspace() / "cli"
    root.mkdir(exist_ok=True)
    write_sentiment(root / "train.tsv", 48, seed=3)
    write_sentiment(root / "dev.tsv", 16, seed=4)
    return root


# ------------------------------------------------------------------------------------- success
def test_finetune_command_trains_saves_and_prints_a_summary(files: Path, capsys) -> None:
    out = files / "model"
    code, stdout, _ = run_cli(
        capsys, "finetune", "--task", "classification", "--model", workspace() / "tiny",
        "--train", files / "train.tsv", "--dev", files / "dev.tsv", "--out", out,
        "--epochs", "1", "--batch-size", "16", "--max-seq-length", "32", "--lr", "1e-3", "--seed", "3",
    )  # fmt: skip
    assert code == 0
    summary = json.loads(stdout)
    assert summary["main_metric"] == "accuracy" and summary["steps"] == 3
    assert 0.0 <= summary["best"] <= 1.0 and summary["dev"]["accuracy"] == summary["best"]
    saved = json.loads((out / "finetune_config.json").read_text())
    assert (saved["lr"], saved["seed"], saved["max_seq_length"], saved["epochs"]) == (1e-3, 3, 32, 1.0)
    assert (saved["warmup"], saved["weight_decay"], saved["batch_size"]) == (0.1, 0.01, 16)


def test_evaluate_prints_metrics_json_and_writes_the_output_file(tmp_path: Path, capsys) -> None:
    result, model = trained("classification")
    dev = workspace() / "classification-dev.tsv"
    code, stdout, _ = run_cli(capsys, "evaluate", model, dev, "--output", tmp_path / "m.json")
    assert code == 0
    metrics = json.loads(stdout)
    assert metrics["accuracy"] == pytest.approx(result.best_value)
    assert {"macro_f1", "mcc"} <= set(metrics)
    assert json.loads((tmp_path / "m.json").read_text()) == metrics


def test_predict_writes_one_json_line_per_example(tmp_path: Path, capsys) -> None:
    _, model = trained("ner")
    dev = workspace() / "ner-dev.conll"
    code, stdout, _ = run_cli(capsys, "predict", model, dev, "--limit", "5")
    assert code == 0
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert len(rows) == 5 and all(len(r["tags"]) == len(r["words"]) for r in rows)
    assert any(r["entities"] for r in rows)
    entity = next(r["entities"][0] for r in rows if r["entities"])
    assert {"type", "text", "start", "end", "score"} <= set(entity)


def test_predict_qa_gives_answers_with_spans(tmp_path: Path, capsys) -> None:
    _, model = trained("qa")
    code, _, err = run_cli(
        capsys,
        "predict",
        model,
        workspace() / "qa-dev.json",
        "--limit",
        "4",
        "--output",
        tmp_path / "p.jsonl",
    )
    assert code == 0 and "wrote 4 predictions" in err
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q0", "q1", "q2", "q3"]
    assert all(r["answer"] and r["end"] > r["start"] for r in rows)


# ---------------------------------------------------------------------------------------- errors
def finetune_args(files: Path, train: Path, dev: Path | None = None, task: str = "classification") -> list:
    args = ["finetune", "--task", task, "--model", workspace() / "tiny", "--train", train]
    args += ["--out", files / "never", "--epochs", "1"]
    return args + (["--dev", dev] if dev else [])


def test_wrong_column_is_one_line_naming_the_columns(files: Path, capsys) -> None:
    code, _, err = run_cli(capsys, *finetune_args(files, files / "train.tsv"), "--text-column", "review")
    assert_one_line_error(code, err, "review", "sentence")


def test_unknown_dev_label_is_one_line_naming_file_and_line(files: Path, tmp_path: Path, capsys) -> None:
    dev = tmp_path / "dev.tsv"
    dev.write_text("sentence\tlabel\ngood film\t1\nbad film\t7\n")
    code, _, err = run_cli(capsys, *finetune_args(files, files / "train.tsv", dev))
    assert_one_line_error(code, err, "dev.tsv:3", "'7'")


def test_empty_training_file_is_one_line(files: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    code, _, err = run_cli(capsys, *finetune_args(files, empty))
    assert_one_line_error(code, err, "empty.tsv")


def test_answer_that_does_not_match_its_context_is_one_line(files: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    qa = {"id": "x1", "question": "what ?", "answers": [{"text": "purple", "answer_start": 14}]}
    data = {"version": "1.1", "data": [{"paragraphs": [{"context": "the colour is blue", "qas": [qa]}]}]}
    bad.write_text(json.dumps(data))
    code, _, err = run_cli(capsys, *finetune_args(files, bad, task="qa"))
    assert_one_line_error(code, err, "x1")


def test_missing_file_and_unlabelled_checkpoint_are_one_line(files: Path, capsys) -> None:
    code, _, err = run_cli(capsys, *finetune_args(files, files / "nope.tsv"))
    assert_one_line_error(code, err, "nope.tsv")
    code, _, err = run_cli(capsys, "evaluate", workspace() / "tiny", files / "dev.tsv")
    assert_one_line_error(code, err, "--task")


@pytest.mark.parametrize(
    ("flags", "grouped"), [([], False), (["--group-by-length"], True), (["--no-group-by-length"], False)]
)
def test_batches_are_random_unless_grouping_by_length_is_asked_for(flags: list[str], grouped: bool) -> None:
    from bertforge.cli import build_parser
    from bertforge.cli.tasks import config_options
    from bertforge.train.finetune_config import FinetuneConfig

    base = ["finetune", "--task", "classification", "--model", "m", "--train", "t.tsv", "--out", "o"]
    options = config_options(build_parser().parse_args(base + flags), FinetuneConfig)
    config = FinetuneConfig(**options)
    assert config.group_by_length is grouped
