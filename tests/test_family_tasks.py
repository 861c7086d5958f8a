"""Every fine-tuning task on every family: a tiny RoBERTa (byte-level BPE), ALBERT (Unigram) and
DistilBERT (WordPiece, no segment ids) checkpoint, each with its own kind of tokenizer trained on
the synthetic task text, fine-tunes for classification, regression, NER, QA and multiple choice;
the result is the family's task head (config.json says so), transformers' Auto class loads it with
equal outputs, and ``bertforge predict`` runs on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from _family_data import FAMILIES, family_checkpoint, task_files
from _task_data import FAST, single_thread  # noqa: F401  (autouse fixture: one thread for tiny models)
from bertforge import auto
from bertforge.cli import main as cli_main
from bertforge.tokenization import load_tokenizer
from bertforge.train.finetune import finetune
from bertforge.train.finetune_config import FinetuneConfig


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {family: family_checkpoint(family, root / family) for family in FAMILIES}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    return task_files(tmp_path_factory.mktemp("task-data"))


TRANSFORMERS_AUTO = {
    "classification": "AutoModelForSequenceClassification",
    "regression": "AutoModelForSequenceClassification",
    "ner": "AutoModelForTokenClassification",
    "qa": "AutoModelForQuestionAnswering",
    "multiple-choice": "AutoModelForMultipleChoice",
}


@pytest.mark.parametrize("task", list(TRANSFORMERS_AUTO))
@pytest.mark.parametrize("model_type", FAMILIES)
def test_every_task_fine_tunes_on_every_family(
    model_type: str, task: str, checkpoints: dict[str, Path], data: dict, tmp_path: Path
) -> None:
    import transformers

    path, options = data[task]
    out = tmp_path / "out"
    config = FinetuneConfig(
        task=task, model=str(checkpoints[model_type]), train=str(path), dev=str(path), out=str(out),
        epochs=1, **{**FAST, **options},
    )  # fmt: skip
    result = finetune(config, progress=False)
    assert result.steps > 0 and result.best_value is not None
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert saved["model_type"] == model_type
    head = auto.model_class_for(model_type, task)
    assert saved["architectures"] == [head.__name__]

    # transformers reads the fine-tuned checkpoint with the same outputs
    ours = auto.model_class_for(model_type, task).from_pretrained(out).eval()
    theirs = getattr(transformers, TRANSFORMERS_AUTO[task]).from_pretrained(out).eval()
    tokenizer = load_tokenizer(out)
    batch = tokenizer(["john is in paris", "the colour is red ."], padding=True, return_tensors="pt")
    if task == "multiple-choice":
        batch = {k: v[None] for k, v in batch.items()}  # (1, 2 choices, T)
    batch = auto.forward_kwargs(ours, batch)
    with torch.inference_mode():
        a, b = ours(**batch), theirs(**batch)
    for name in ("logits", "start_logits", "end_logits"):
        if getattr(a, name, None) is not None:
            torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=1e-5, rtol=0)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_predict_and_evaluate_run_on_a_fine_tuned_family_ner_model(
    model_type: str, checkpoints: dict[str, Path], data: dict, tmp_path: Path, capsys
) -> None:
    path, _ = data["ner"]
    out = tmp_path / "ner"
    code = cli_main([
        "finetune", "--task", "ner", "--model", str(checkpoints[model_type]), "--train", str(path),
        "--dev", str(path), "--out", str(out), "--epochs", "1", "--batch-size", "16", "--max-seq-length", "64",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert cli_main(["evaluate", str(out), str(path)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"precision", "recall", "f1"} <= set(metrics)
    assert cli_main(["predict", str(out), str(path), "--limit", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
