"""Transfer data for task distillation (``bertforge distill --transfer FILE``): unlabelled examples
reach the loss with the teacher's soft targets only (a hand check); training batches never mix them
with labelled ones; read in the task's format (labels ignored) or one a line; a tiny teacher with
transfer data teaches a tiny student a synthetic task that the labelled set alone does not; a
missing or empty transfer file is one line on stderr, with nothing written."""

from __future__ import annotations

import math
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _task_data import FAST, filler, single_thread, trained, workspace, write_names, write_sentiment  # noqa: F401
from bertforge.cli import main
from bertforge.errors import BertForgeError
from bertforge.tasks.preprocess_batches import length_grouped_batches, random_batches, training_batches
from bertforge.tasks.registry import get_task
from bertforge.train.distill_config import DistillConfig
from bertforge.train.distill_stages import PredictionLoss, TeacherOutputs
from bertforge.train.distill_task import distill
from bertforge.train.distill_transfer import read_transfer
from test_distill_task import _small_student


# ------------------------------------------------------------------------ the loss, by hand
def _softmax(row: list[float]) -> list[float]:
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def _kl_by_hand(student: list[list[float]], teacher: list[list[float]], temperature: float) -> float:
    """KL(p_teacher || p_student) at T, summed over classes, averaged over rows, times T^2."""
    kl = 0.0
    for s_row, t_row in zip(student, teacher, strict=True):
        p_s = _softmax([v / temperature for v in s_row])
        p_t = _softmax([v / temperature for v in t_row])
        kl += sum(t * (math.log(t) - math.log(s)) for s, t in zip(p_s, p_t, strict=True))
    return kl / len(student) * temperature**2


class _Fixed(torch.nn.Module):
    """A "model" whose logits are given; it records whether it was handed labels."""

    def __init__(self, logits: list[list[float]]) -> None:
        super().__init__()
        self.logits, self.got_labels = logits, None

    def forward(self, input_ids, attention_mask=None, labels=None):  # type: ignore[no-untyped-def]
        self.got_labels = labels is not None
        logits = torch.tensor(self.logits, requires_grad=True)
        return SimpleNamespace(
            logits=logits, loss=F.cross_entropy(logits, labels) if labels is not None else None
        )


def test_transfer_batches_learn_the_soft_targets_alone_and_labelled_batches_the_mix() -> None:
    student = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    teacher = [[0.5, 2.5, -1.0], [1.0, 0.0, 2.0], [2.0, -1.0, 0.0], [-0.5, 0.5, 1.5]]
    alpha, temperature = 0.3, 2.0
    # features 0 and 1 are labelled, 2 and 3 transfer data
    outputs = TeacherOutputs(np.array(teacher, dtype=np.float32), np.arange(5), "classes")
    loss = PredictionLoss(outputs, alpha, temperature, labelled=2)

    def batch(indices: list[int], labels: list[int] | None) -> dict[str, torch.Tensor]:
        rows = {
            "input_ids": torch.zeros(2, 3, dtype=torch.long),
            "attention_mask": torch.ones(2, 3, dtype=torch.long),
        }
        if labels is not None:
            rows["labels"] = torch.tensor(labels)
        return {**rows, "feature_index": torch.tensor(indices)}

    model = _Fixed(student)
    transfer = loss(model, batch([2, 3], None))
    # the soft-target term alone, at weight 1 (not alpha), and no labels handed to the model
    assert transfer.item() == pytest.approx(_kl_by_hand(student, teacher[2:], temperature), rel=1e-6)
    assert model.got_labels is False
    labelled = loss(model, batch([0, 1], [1, 0]))
    hard = -sum(math.log(_softmax(row)[y]) for row, y in zip(student, [1, 0], strict=True)) / 2
    expected = alpha * _kl_by_hand(student, teacher[:2], temperature) + (1 - alpha) * hard
    assert labelled.item() == pytest.approx(expected, rel=1e-6)
    assert model.got_labels is True
    with pytest.raises(AssertionError, match="mixes labelled and transfer"):
        loss(model, batch([1, 2], [1, 0]))


# ---------------------------------------------------------------------------------- batching
@pytest.mark.parametrize("grouped", [True, False])
def test_training_batches_never_mix_transfer_features_into_labelled_batches(grouped: bool) -> None:
    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(250)]
    plain = training_batches(lengths, 16, seed=3, epoch=1, group_by_length=grouped)
    assert plain == (
        length_grouped_batches(lengths, 16, 3, 1) if grouped else random_batches(250, 16, 3, 1)
    )  # without transfer data: exactly the order fine-tuning always had
    split = training_batches(lengths, 16, seed=3, epoch=1, group_by_length=grouped, labelled=70)
    assert sorted(i for b in split for i in b) == list(range(250))
    assert all(max(b) < 70 or min(b) >= 70 for b in split)
    assert len(split) == math.ceil(70 / 16) + math.ceil(180 / 16)
    kinds = [min(b) >= 70 for b in split]
    assert kinds != sorted(kinds) and kinds != sorted(kinds, reverse=True)  # interleaved, not in two runs
    assert split != training_batches(lengths, 16, seed=3, epoch=2, group_by_length=grouped, labelled=70)


# ------------------------------------------------------------------------------------ reading
def test_transfer_files_are_read_without_their_labels_in_either_format(tmp_path: Path) -> None:
    ner = get_task("ner")
    labelled = write_names(tmp_path / "names.conll", 5, seed=4)
    words_only = tmp_path / "words.conll"
    words_only.write_text("John NN\nlives NN\n\nin NN\nParis NN\n".replace(" NN", ""), encoding="utf-8")
    lines = tmp_path / "lines.txt"
    lines.write_text("John Smith lives in Paris .\n\n  Mary  saw   Berlin\n", encoding="utf-8")
    examples = read_transfer(ner, [str(labelled), str(words_only)], "task", {})
    assert len(examples) == 7 and all(e.tags is None for e in examples)
    assert examples[5].words == ["John", "lives"]
    examples = read_transfer(ner, [str(lines)], "lines", {})
    assert [e.words for e in examples] == [
        ["John", "Smith", "lives", "in", "Paris", "."],
        ["Mary", "saw", "Berlin"],
    ]
    assert [e.line for e in examples] == [1, 3] and all(e.tags is None for e in examples)
    texts = read_transfer(
        get_task("classification"), [str(write_sentiment(tmp_path / "s.tsv", 4, 1))], "task", {}
    )
    assert len(texts) == 4 and all(e.label is None for e in texts)
    with pytest.raises(BertForgeError, match="qa has no one-example-a-line form.*transfer_format='task'"):
        read_transfer(get_task("qa"), [str(lines)], "lines", {})


# ------------------------------------------------------------------ a student that learns more
def _unlabelled_sentiment(path: Path, count: int, seed: int) -> Path:
    """Sentiment sentences without labels, one a line: the in-domain text a teacher can label."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        words = filler(rng)
        words.insert(rng.randint(0, len(words)), rng.choice(["good", "bad"]))
        sentences.append(" ".join(words))
    path.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    return path


def test_transfer_data_teaches_a_student_what_the_labelled_set_alone_does_not(tmp_path: Path) -> None:
    # 16 labelled sentences are too few for a random student to find the one word that decides,
    # even from the teacher's soft targets on them; 640 more sentences labelled by the teacher are
    # enough. Same student, same steps (123): 2026-11 over five seeds, 1.0 with transfer data against
    # 0.50-0.71 without.
    root = workspace()
    teacher = trained("classification")[1]
    train = write_sentiment(tmp_path / "few.tsv", 16, seed=100)
    transfer = _unlabelled_sentiment(tmp_path / "more.txt", 640, seed=200)
    student = _small_student(tmp_path / "student", seed=0)
    common = {**FAST, "seed": 0, "eval_steps": 41, "keep_checkpoints": 0}
    files = {"train": str(train), "dev": str(root / "classification-dev.tsv")}

    def run(out: str, **options: object) -> object:
        config = DistillConfig(task="classification", model=str(student), teacher=str(teacher),
                               out=str(tmp_path / out), teacher_dtype="fp32", **files, **common, **options)  # fmt: skip
        return distill(config, progress=False)

    taught = run("transfer", transfer=[str(transfer)], transfer_format="lines", epochs=3)
    alone = run("labelled-only", epochs=123)  # one batch an epoch: as many steps
    assert taught.run.steps == alone.run.steps == 123  # type: ignore[attr-defined]
    assert taught.run.best_value >= 0.9  # type: ignore[attr-defined]
    assert taught.run.best_value >= alone.run.best_value + 0.2  # type: ignore[attr-defined]


def test_a_tagging_teacher_distils_over_unlabelled_sentences(tmp_path: Path) -> None:
    teacher = trained("ner")[1]
    root = workspace()
    transfer = tmp_path / "sentences.txt"
    rng = random.Random(5)
    transfer.write_text("\n".join(" ".join(filler(rng, 2, 6) + ["john", "in", "paris"]) for _ in range(40)))
    result = distill(
        DistillConfig(task="ner", model="bert-tiny", teacher=str(teacher), train=str(root / "ner-train.conll"),
                      train_limit=24, out=str(tmp_path / "out"), transfer=str(transfer), transfer_format="lines",
                      teacher_dtype="fp32", **{**FAST, "epochs": 1}),
        progress=False,
    )  # fmt: skip
    assert result.run.steps == math.ceil(24 / 16) + math.ceil(40 / 16)
    assert (tmp_path / "out" / "model.safetensors").is_file()


# --------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("problem", ["missing", "empty"])
def test_a_missing_or_empty_transfer_file_is_one_line_naming_the_flag(
    problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    teacher = trained("classification")[1]
    transfer = tmp_path / "transfer.txt"
    if problem == "empty":
        transfer.write_text("\n  \n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["distill", "--teacher", str(teacher), "--student", "bert-tiny", "--max-seq-length", "64",
            "--train", str(workspace() / "classification-train.tsv"), "--out", str(out),
            "--transfer", str(transfer)]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"--transfer {transfer}" in err
    assert ("not found" if problem == "missing" else "is empty") in err
    assert not out.exists()
