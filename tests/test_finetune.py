"""finetune(): a tiny BERT really learns synthetic classification, NER and QA tasks from files in
their real formats; the output directory is a checkpoint transformers loads with equal logits;
runs are reproducible per seed; the best model is kept; early stopping and label checks work."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported

import pytest
import torch
from safetensors.torch import load_file

from _task_data import FAST, single_thread, trained, workspace, write_choices, write_names, write_sentiment  # noqa: F401
from bertforge import BertForgeError
from bertforge.pipelines import load_task_model
from bertforge.pipelines.evaluation import run_on_file
from bertforge.tokenizer import BertTokenizer
from bertforge.train.finetune import finetune
from bertforge.train.finetune_config import FinetuneConfig


@pytest.fixture(scope="module")
def data() -> Path:
    root = workspace()
    write_sentiment(root / "train.tsv", 320, seed=1)
    write_sentiment(root / "dev.tsv", 80, seed=2)
    write_names(root / "dev.conll", 80, seed=2)
    return root


@pytest.fixture(scope="module")
def classifier() -> tuple:
    return trained("classification")


@pytest.fixture(scope="module")
def tagger() -> tuple:
    return trained("ner")


@pytest.fixture(scope="module")
def reader() -> tuple:
    return trained("qa")


# ------------------------------------------------------------------------------------ it learns
def test_classifier_learns_whether_a_sentence_says_good_or_bad(classifier) -> None:
    result, _ = classifier
    assert result.main_metric == "accuracy"
    assert result.best_value >= 0.95
    assert result.history[0]["dev_accuracy"] < result.best_value  # learnt, not given


def test_tagger_learns_the_person_and_place_names(tagger) -> None:
    result, _ = tagger
    assert result.main_metric == "f1" and result.best_value >= 0.95


def test_reader_learns_that_the_answer_follows_is(reader) -> None:
    result, _ = reader
    assert result.main_metric == "f1" and result.best_value >= 95.0


# ---------------------------------------------------------------------------------- the outputs
def test_output_is_a_checkpoint_with_labels_config_and_metrics(classifier) -> None:
    result, out = classifier
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "0", "1": "1"} and config["label2id"] == {"0": 0, "1": 1}
    assert config["problem_type"] == "single_label_classification"
    assert {"model.safetensors", "vocab.txt", "tokenizer.json", "finetune_config.json"} <= {
        p.name for p in out.iterdir()
    }
    resolved = json.loads((out / "finetune_config.json").read_text())
    assert resolved["max_seq_length"] == 64 and resolved["labels"] == ["0", "1"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [20, 40, 60, 80]  # 320 examples / 16, every epoch
    assert sum(r["best"] for r in evals) >= 1


def test_saved_model_is_the_best_one_not_the_last(classifier) -> None:
    result, out = classifier
    metrics, _, _ = run_on_file(out, out.parent / "classification-dev.tsv")
    assert metrics["accuracy"] == pytest.approx(result.best_value)


@pytest.mark.parametrize(
    ("fixture", "auto_class"),
    [
        ("classifier", "AutoModelForSequenceClassification"),
        ("tagger", "AutoModelForTokenClassification"),
        ("reader", "AutoModelForQuestionAnswering"),
    ],
)
def test_transformers_loads_the_output_with_equal_logits(fixture, auto_class, request) -> None:
    import transformers

    _, out = request.getfixturevalue(fixture)
    ours, _ = load_task_model(out)
    theirs = getattr(transformers, auto_class).from_pretrained(out).eval()
    tokenizer = BertTokenizer.from_pretrained(out)
    batch = tokenizer(
        ["the movie was good", "john smith saw paris", "the colour is red ."],
        padding=True,
        return_tensors="pt",
    )
    with torch.inference_mode():
        a, b = ours(**batch), theirs(**batch)
    for name in ("logits", "start_logits", "end_logits"):
        if getattr(a, name, None) is not None:
            torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=1e-5, rtol=0)
    assert theirs.config.id2label == ours.config.id2label


def test_regression_sets_problem_type_and_one_output(data: Path, tmp_path: Path) -> None:
    lines = ["sentence\tscore"] + [f"{'good ' * k}movie\t{k}.0" for k in range(1, 5)] * 8
    (tmp_path / "sts.tsv").write_text("\n".join(lines) + "\n")
    config = FinetuneConfig(
        task="regression", model=str(data / "tiny"), train=str(tmp_path / "sts.tsv"),
        dev=str(tmp_path / "sts.tsv"), out=str(tmp_path / "out"), label_column="score", epochs=1, **FAST,
    )  # fmt: skip
    result = finetune(config, progress=False)
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["problem_type"] == "regression" and len(saved["id2label"]) == 1
    assert load_file(tmp_path / "out" / "model.safetensors")["classifier.weight"].shape == (1, 32)
    assert result.main_metric == "pearson"


def test_multiple_choice_trains_one_score_per_ending_and_loads_in_transformers(
    data: Path, tmp_path: Path
) -> None:
    import transformers

    write_choices(tmp_path / "swag.csv", 32, seed=5)
    config = FinetuneConfig(
        task="multiple-choice", model=str(data / "tiny"), train=str(tmp_path / "swag.csv"),
        dev=str(tmp_path / "swag.csv"), out=str(tmp_path / "out"), epochs=1, **FAST,
    )  # fmt: skip
    result = finetune(config, progress=False)
    assert result.main_metric == "accuracy" and result.steps == 2
    ours, task = load_task_model(tmp_path / "out")
    theirs = transformers.AutoModelForMultipleChoice.from_pretrained(tmp_path / "out").eval()
    tokenizer = BertTokenizer.from_pretrained(tmp_path / "out")
    batch = tokenizer(["the colour is red ."] * 3, ["so it is red", "so it is blue", "so it is green ."],
                      padding=True, return_tensors="pt")  # fmt: skip
    batch = {k: v[None] for k, v in batch.items()}  # (1, 3, T)
    with torch.inference_mode():
        torch.testing.assert_close(ours(**batch).logits, theirs(**batch).logits, atol=1e-5, rtol=0)
    assert task == "multiple-choice"


# ------------------------------------------------------------------------------ run behaviour
def test_same_seed_gives_the_same_model(data: Path, tmp_path: Path) -> None:
    weights = []
    for name in ("a", "b"):
        config = FinetuneConfig(
            task="classification", model=str(data / "tiny"), train=str(data / "dev.tsv"),
            out=str(tmp_path / name), epochs=1, seed=7, **FAST,
        )  # fmt: skip
        finetune(config, progress=False)
        weights.append(load_file(tmp_path / name / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], atol=0, rtol=0)


def test_patience_stops_when_the_metric_stops_improving(data: Path, tmp_path: Path) -> None:
    config = FinetuneConfig(
        task="classification", model=str(data / "tiny"), train=str(data / "train.tsv"),
        dev=str(data / "dev.tsv"), out=str(tmp_path / "out"), epochs=10, eval_steps=2, patience=2,
        **{**FAST, "lr": 1e-12},
    )  # fmt: skip
    result = finetune(config, progress=False)
    assert len(result.history) == 3 and result.steps == 6  # best at the first evaluation, then 2 more


def test_dev_label_missing_from_training_data_is_an_error(data: Path, tmp_path: Path) -> None:
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\ngood movie\t1\nbad movie\tneutral\n")
    config = FinetuneConfig(
        task="classification", model=str(data / "tiny"), train=str(data / "train.tsv"),
        dev=str(tmp_path / "dev.tsv"), out=str(tmp_path / "out"), **FAST,
    )  # fmt: skip
    with pytest.raises(
        BertForgeError, match=r"dev.tsv:3: label 'neutral' does not occur in the training data"
    ):
        finetune(config, progress=False)


def test_bf16_autocast_trains_and_saves_float32_weights(data: Path, tmp_path: Path) -> None:
    config = FinetuneConfig(
        task="ner", model=str(data / "tiny"), train=str(data / "dev.conll"), out=str(tmp_path / "out"),
        epochs=1, bf16=True, **FAST,
    )  # fmt: skip
    result = finetune(config, progress=False)
    assert result.steps == 5
    assert load_file(tmp_path / "out" / "model.safetensors")["classifier.weight"].dtype == torch.float32


def test_default_max_seq_length_is_cut_to_a_model_with_fewer_positions(tmp_path: Path) -> None:
    # The tiny checkpoint has 64 positions, the classification default is 128: texts of ~160
    # tokens used to crash the first forward pass.
    long = " ".join(["the movie was good"] * 40)
    train = tmp_path / "long.tsv"
    train.write_text("sentence\tlabel\n" + f"{long}\t1\nbad\t0\n" * 2, encoding="utf-8")
    config = FinetuneConfig(
        task="classification", model=str(workspace() / "tiny"), train=str(train), out=str(tmp_path / "out"),
        epochs=1, batch_size=4, plot=False,
    )  # fmt: skip
    result = finetune(config, progress=False)
    assert result.steps == 1
    assert json.loads((tmp_path / "out" / "finetune_config.json").read_text())["max_seq_length"] == 64
    with pytest.raises(BertForgeError, match="max_seq_length=100 is longer than the 64 positions"):
        finetune(FinetuneConfig(**{**config.to_dict(), "max_seq_length": 100}), progress=False)


def test_config_rejects_unknown_task_and_bad_values() -> None:
    with pytest.raises(BertForgeError, match="unknown task 'sentiment'"):
        FinetuneConfig(task="sentiment", model="m", train="t", out="o")
    with pytest.raises(BertForgeError, match="batch_size"):
        FinetuneConfig(task="ner", model="m", train="t", out="o", batch_size=0)
