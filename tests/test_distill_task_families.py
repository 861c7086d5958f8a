"""``bertforge distill`` on every fine-tuning task and every family: a tiny teacher fine-tuned for the
task teaches a student (a smaller BERT checkpoint with the teacher's vocabulary for each BERT task;
a preset or the teacher cut to one layer for RoBERTa, ALBERT and DistilBERT; a DistilBERT preset for
a BERT teacher), through the intermediate stage and the prediction stage; the result is the
student family's task head, loads as a task model and predicts with finite scores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from _family_data import family_checkpoint, task_files
from _task_data import FAST, VOCAB, single_thread  # noqa: F401
from bertforge import BertConfig, BertForMaskedLM, auto
from bertforge.pipelines import load_task_model
from bertforge.pipelines.evaluation import run_on_file
from bertforge.tokenization import BertTokenizer
from bertforge.train.distill_config import DistillConfig
from bertforge.train.distill_task import WORK_DIR, distill
from bertforge.train.finetune import finetune
from bertforge.train.finetune_config import FinetuneConfig

TASKS = ("classification", "regression", "ner", "qa", "multiple-choice")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("distill-families")


@pytest.fixture(scope="module")
def data(root: Path) -> dict[str, tuple[Path, dict]]:
    return task_files(root)


@pytest.fixture(scope="module")
def small_bert(root: Path) -> Path:
    """A one-layer BERT of hidden 16 (2 heads) with the BERT teachers' WordPiece vocabulary."""
    torch.manual_seed(1)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=23, max_position_embeddings=64)  # fmt: skip
    BertForMaskedLM(config).save_pretrained(root / "small-bert")
    BertTokenizer({token: i for i, token in enumerate(VOCAB)}, model_max_length=64).save_pretrained(
        root / "small-bert"
    )
    return root / "small-bert"


_TEACHERS: dict[tuple[str, str], Path] = {}


def teacher(model_type: str, task: str, root: Path, data: dict) -> Path:
    """A tiny checkpoint of the family fine-tuned for one epoch on the task (cached per module)."""
    if (model_type, task) not in _TEACHERS:
        base = root / f"base-{model_type}"
        if not base.exists():
            family_checkpoint(model_type, base)
        path, options = data[task]
        out = root / f"teacher-{model_type}-{task}"
        finetune(
            FinetuneConfig(task=task, model=str(base), train=str(path), out=str(out), epochs=1,
                           **{**FAST, **options}),
            progress=False,
        )  # fmt: skip
        _TEACHERS[model_type, task] = out
    return _TEACHERS[model_type, task]


def _distil_and_check(
    teacher_dir: Path, student: str, task: str, data: dict, out: Path, student_type: str, **options
) -> None:
    path, file_options = data[task]
    result = distill(
        DistillConfig(task=task, model=student, teacher=str(teacher_dir), train=str(path), dev=str(path),
                      out=str(out), epochs=1, intermediate_epochs=1, **{**FAST, **file_options, **options}),
        progress=False,
    )  # fmt: skip
    assert result.run.best_value is not None and math.isfinite(result.run.best_value)
    assert result.teacher_metrics and all(math.isfinite(v) for v in result.intermediate[42])
    assert not (out / WORK_DIR).exists()
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert saved["model_type"] == student_type
    assert saved["architectures"] == [auto.model_class_for(student_type, task).__name__]
    model, detected = load_task_model(out)
    assert detected == task
    metrics, predictions, _ = run_on_file(out, path, limit=4)
    assert metrics is not None and len(predictions) == 4


@pytest.mark.parametrize("task", TASKS)
def test_every_task_distils_into_a_smaller_bert(task: str, root: Path, data: dict, small_bert: Path) -> None:
    taught_by = teacher("bert", task, root, data)
    _distil_and_check(taught_by, str(small_bert), task, data, root / f"student-bert-{task}", "bert")


@pytest.mark.parametrize(
    ("model_type", "task", "student", "student_type", "options"),
    [
        ("roberta", "qa", "roberta-tiny", "roberta", {}),
        ("albert", "ner", "albert-tiny", "albert", {}),
        ("distilbert", "multiple-choice", "", "distilbert", {"student_layers": [1]}),
        ("bert", "classification", "distilbert-tiny", "distilbert", {}),
    ],
)
def test_every_family_teaches_a_student_of_its_family(
    model_type: str, task: str, student: str, student_type: str, options: dict, root: Path, data: dict
) -> None:
    taught_by = teacher(model_type, task, root, data)
    out = root / f"student-{model_type}-{task}-{student or 'cut'}"
    _distil_and_check(taught_by, student, task, data, out, student_type, **options)
