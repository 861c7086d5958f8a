"""Task distillation (``bertforge distill``): the prediction-stage loss against hand computations; a
tiny student taught by a fine-tuned tiny teacher learns a synthetic task that the same student,
trained alone for the same steps on the same labels, does not; the result is a checkpoint that
evaluate and predict take; the intermediate stage lowers its loss; a student cut from the teacher's
layers starts as those layers; the teacher's outputs are cached once; bad input is one line on
stderr with nothing written. Every task and family: test_distill_task_families.py."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from _task_data import FAST, VOCAB, single_thread, trained, workspace, write_sentiment  # noqa: F401
from bertforge import BertConfig, BertForMaskedLM, BertForSequenceClassification
from bertforge.cli import main
from bertforge.errors import BertForgeError
from bertforge.tokenizer import BertTokenizer
from bertforge.train import distill_stages
from bertforge.train.distill_config import DistillConfig
from bertforge.train.distill_losses import attention_kl_loss, hidden_mse_loss, soft_target_loss
from bertforge.train.distill_plan import build_student, plan_distillation
from bertforge.train.distill_stages import PredictionLoss, TeacherOutputs, soft_loss, teacher_outputs
from bertforge.train.distill_task import WORK_DIR, distill
from bertforge.train.finetune import finetune
from bertforge.train.finetune_config import FinetuneConfig


# ------------------------------------------------------------------------ the loss, by hand
def _softmax(row: list[float]) -> list[float]:
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def test_soft_targets_plus_hard_labels_match_a_hand_computation() -> None:
    student = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    teacher = [[0.5, 2.5, -1.0], [1.0, 0.0, 2.0]]
    labels, alpha, temperature = [1, 0], 0.3, 2.0
    # KL(p_teacher || p_student) at T, summed over classes, averaged over rows, times T^2
    kl = 0.0
    for s_row, t_row in zip(student, teacher, strict=True):
        p_s = _softmax([v / temperature for v in s_row])
        p_t = _softmax([v / temperature for v in t_row])
        kl += sum(t * (math.log(t) - math.log(s)) for s, t in zip(p_s, p_t, strict=True))
    soft = kl / 2 * temperature**2
    hard = -sum(math.log(_softmax(row)[y]) for row, y in zip(student, labels, strict=True)) / 2
    expected = alpha * soft + (1 - alpha) * hard

    class Fixed(torch.nn.Module):  # a "model" whose logits are the student's
        def forward(self, input_ids, attention_mask=None, labels=None):  # type: ignore[no-untyped-def]
            logits = torch.tensor(student, requires_grad=True)
            return SimpleNamespace(logits=logits, loss=F.cross_entropy(logits, labels))

    outputs = TeacherOutputs(np.array(teacher, dtype=np.float32), np.array([0, 1, 2]), "classes")
    batch = {
        "input_ids": torch.zeros(2, 3, dtype=torch.long),
        "attention_mask": torch.ones(2, 3, dtype=torch.long),
        "labels": torch.tensor(labels),
        "feature_index": torch.tensor([0, 1]),
    }
    loss = PredictionLoss(outputs, alpha, temperature)(Fixed(), batch)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert soft_target_loss(
        torch.tensor(student), torch.tensor(teacher), temperature
    ).item() == pytest.approx(soft, rel=1e-6)


def test_regression_distils_to_the_teacher_value_by_squared_error() -> None:
    output = SimpleNamespace(logits=torch.tensor([[0.5], [2.0]]))
    loss = soft_loss("value", output, torch.tensor([[1.5], [1.0]]), torch.ones(2, 4), temperature=3.0)
    assert loss.item() == pytest.approx(((0.5 - 1.5) ** 2 + (2.0 - 1.0) ** 2) / 2)


def test_tagging_and_qa_soft_targets_ignore_padding() -> None:
    gen = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    logits, taught = torch.randn(2, 4, 3, generator=gen), torch.randn(6, 3, generator=gen)
    real = logits[mask.bool()]
    expected = soft_target_loss(real, taught, 2.0)
    logits[1, 2:] = 1e3  # whatever sits at padded positions
    assert soft_loss("tokens", SimpleNamespace(logits=logits), taught, mask, 2.0) == pytest.approx(
        expected.item()
    )

    rows = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    outputs = TeacherOutputs(rows, np.array([0, 4, 6]), "span")
    teacher = outputs.batch([0, 1], torch.device("cpu"))  # (2, 4, 2): row 1 padded
    start, end = torch.randn(2, 4, generator=gen), torch.randn(2, 4, generator=gen)
    loss = soft_loss("span", SimpleNamespace(start_logits=start, end_logits=end), teacher, mask, 1.0)
    by_row = [
        (soft_target_loss(start[i, :n][None], torch.from_numpy(rows[o : o + n, 0])[None])
         + soft_target_loss(end[i, :n][None], torch.from_numpy(rows[o : o + n, 1])[None])) / 2
        for i, (o, n) in enumerate(((0, 4), (4, 2)))
    ]  # fmt: skip
    assert loss.item() == pytest.approx(float(sum(by_row)) / 2, rel=1e-5)


def test_intermediate_losses_are_zero_on_the_teacher_and_skip_padding() -> None:
    gen = torch.Generator().manual_seed(1)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    hidden = torch.randn(2, 3, 8, generator=gen)
    other = hidden.clone()
    other[1, 2] += 5.0  # a padded position
    assert hidden_mse_loss(hidden, other, mask).item() == 0.0
    attention = torch.randn(2, 4, 3, 3, generator=gen).softmax(-1)
    assert attention_kl_loss(attention, attention, mask).item() == pytest.approx(0.0, abs=1e-6)
    # two heads against four: compared after averaging over heads
    two = attention.reshape(2, 2, 2, 3, 3).mean(2)
    assert attention_kl_loss(two, attention, mask).item() == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------ a student that learns more
def _small_student(directory: Path, vocab: list[str] = VOCAB, seed: int = 3) -> Path:
    """A random one-layer BERT (hidden 32) with the teacher's kind of vocabulary."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=64)  # fmt: skip
    BertForMaskedLM(config).save_pretrained(directory)
    BertTokenizer({token: i for i, token in enumerate(vocab)}, model_max_length=64).save_pretrained(directory)
    return directory


def _noisy_sentiment(path: Path, count: int, seed: int, flip: float) -> Path:
    """The sentiment task with a share of the labels flipped at random, as crowd labels are noisy."""
    write_sentiment(path, count, seed)
    rng = random.Random(seed)
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    flipped = []
    for row in rows:
        text, label = row.rsplit("\t", 1)
        flipped.append(f"{text}\t{1 - int(label) if rng.random() < flip else label}")
    path.write_text("\n".join([header, *flipped]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def teacher() -> Path:
    return trained("classification")[1]  # a tiny BERT fine-tuned on clean labels: dev accuracy 1.0


@pytest.fixture(scope="module")
def taught_and_alone(teacher: Path) -> tuple:
    """The same student, same noisy labels, same steps: distilled (alpha 0.8, T 2) and alone."""
    root = workspace()
    train = _noisy_sentiment(root / "noisy-train.tsv", 320, seed=21, flip=0.4)
    files = {"train": str(train), "dev": str(root / "classification-dev.tsv")}
    options = {**FAST, **files, "epochs": 4, "seed": 0}
    student = _small_student(root / "small-student")
    alone = finetune(
        FinetuneConfig(task="classification", model=str(student), out=str(root / "alone"), **options),
        progress=False,
    )
    taught = distill(
        DistillConfig(task="classification", model=str(student), teacher=str(teacher),
                      out=str(root / "distilled"), alpha=0.8, teacher_dtype="fp32", **options),
        progress=False,
    )  # fmt: skip
    return taught, alone, root / "distilled"


def test_a_distilled_student_learns_what_the_student_alone_does_not(taught_and_alone) -> None:
    # 40% of the training labels are wrong, so they barely say which word decides; the teacher,
    # fine-tuned on clean labels, knows, and its soft targets carry that to the student. Alone, the
    # student stays near chance for as many steps (2026-12: 0.475-0.525 against 0.988-1.0 taught,
    # over five data and student seeds).
    taught, alone, _ = taught_and_alone
    assert taught.teacher_metrics["accuracy"] == 1.0
    assert taught.run.steps == alone.steps == 80
    assert taught.run.best_value >= 0.9
    assert taught.run.best_value >= alone.best_value + 0.3


def test_the_distilled_student_is_a_checkpoint_evaluate_and_predict_take(taught_and_alone, capsys) -> None:
    taught, _, out = taught_and_alone
    dev = str(workspace() / "classification-dev.tsv")
    assert {"config.json", "model.safetensors", "vocab.txt", "finetune_config.json", "metrics.jsonl"} <= {
        p.name for p in out.iterdir()
    }
    assert not (out / WORK_DIR).exists()  # the teacher's cached outputs are gone
    saved = json.loads((out / "config.json").read_text())
    assert saved["architectures"] == ["BertForSequenceClassification"] and saved["num_hidden_layers"] == 1
    settings = json.loads((out / "finetune_config.json").read_text())
    assert settings["alpha"] == 0.8 and settings["temperature"] == 2.0 and settings["teacher"]
    capsys.readouterr()
    assert main(["evaluate", str(out), dev]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(taught.run.best_value)
    assert main(["predict", str(out), dev, "--limit", "4"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 4 and all(line["label"] in ("0", "1") for line in lines)


# -------------------------------------------------------------- intermediate stage, layers, cache
def test_intermediate_stage_lowers_its_loss_before_the_prediction_stage(
    teacher: Path, tmp_path: Path
) -> None:
    root = workspace()
    train = write_sentiment(root / "intermediate-train.tsv", 96, seed=31)
    result = distill(
        DistillConfig(task="classification", model=str(_small_student(tmp_path / "student")),
                      teacher=str(teacher), train=str(train), out=str(tmp_path / "out"),
                      intermediate_epochs=3, **{**FAST, "epochs": 1}),
        progress=False,
    )  # fmt: skip
    losses = result.intermediate[42]
    assert len(losses) == 18  # 3 epochs of 6 batches
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-6:]) < 0.7 * np.mean(losses[:6])
    assert result.run.steps == 6 and (tmp_path / "out" / "model.safetensors").is_file()


def test_a_student_cut_from_the_teacher_starts_as_the_chosen_layers(teacher: Path) -> None:
    config = DistillConfig(
        task="classification", model="", teacher=str(teacher), student_layers=[1],
        train=str(workspace() / "classification-train.tsv"), out=str(workspace() / "unused"),
    ).resolved()  # fmt: skip
    with pytest.raises(BertForgeError, match="max_seq_length=128 does not fit the teacher's 64 positions"):
        plan_distillation(config)
    config = dataclasses.replace(config, max_seq_length=64)
    plan = plan_distillation(config)
    student = build_student(config, plan, plan.labels)
    assert isinstance(student, BertForSequenceClassification) and student.config.num_hidden_layers == 1
    taught = load_file(teacher / "model.safetensors")
    learnt = student.state_dict()
    for name in ("bert.embeddings.word_embeddings.weight", "bert.pooler.dense.weight", "classifier.weight"):
        assert torch.equal(learnt[name], taught[name]), name
    for name in ("attention.self.query.weight", "output.dense.bias", "output.LayerNorm.weight"):
        assert torch.equal(learnt[f"bert.encoder.layer.0.{name}"], taught[f"bert.encoder.layer.1.{name}"])
    assert not (workspace() / "unused").exists()


def test_teacher_outputs_are_computed_once_and_recomputed_for_other_features(
    teacher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bertforge.pipelines.common import load_task_model

    model, _ = load_task_model(teacher)
    features = [{"input_ids": [2, 9, 10, 3]}, {"input_ids": [2, 11, 3]}]
    calls = []
    real = distill_stages.run_features
    monkeypatch.setattr(distill_stages, "run_features", lambda *a, **k: calls.append(1) or real(*a, **k))

    def outputs(feats: list) -> TeacherOutputs:
        return teacher_outputs(model, str(teacher), feats, "classes", tmp_path, pad_token_id=0,
                               batch_size=8, dtype=None)  # fmt: skip

    first = outputs(features)
    again = outputs(features)
    assert len(calls) == 1 and np.array_equal(first.rows, again.rows)
    with torch.inference_mode():
        direct = model(input_ids=torch.tensor([[2, 11, 3]])).logits[0].numpy()
    np.testing.assert_allclose(again.rows[1], direct, atol=1e-6)
    outputs([*features, {"input_ids": [2, 12, 3]}])
    assert len(calls) == 2


# --------------------------------------------------------------------------------- bad input
def _run(args: list[str], capsys) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    code = main(args)
    return code, capsys.readouterr().err


def _distill_args(teacher: Path, out: Path, *extra: str) -> list[str]:
    root = workspace()
    return ["distill", "--teacher", str(teacher), "--train", str(root / "classification-train.tsv"),
            "--out", str(out), "--max-seq-length", "64", *extra]  # fmt: skip


def test_a_teacher_without_a_task_head_is_refused_by_name(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code, err = _run(_distill_args(workspace() / "tiny", out, "--student", "bert-tiny"), capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "has no task head" in err and "BertForMaskedLM" in err and "bertforge finetune" in err
    assert not out.exists()


def test_a_student_with_another_vocabulary_is_refused(teacher: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    bigger = _small_student(tmp_path / "bigger", [*VOCAB, "extra"])
    code, err = _run(_distill_args(teacher, out, "--student", str(bigger)), capsys)
    assert code == 2 and "vocab_size 60" in err and "share the teacher's vocabulary" in err
    swapped = list(VOCAB)
    swapped[10], swapped[11] = swapped[11], swapped[10]
    code, err = _run(
        _distill_args(teacher, out, "--student", str(_small_student(tmp_path / "swapped", swapped))), capsys
    )
    assert code == 2 and "tokenizer differs" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_task_the_teacher_cannot_do_and_bad_layers_are_refused(
    teacher: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    code, err = _run(_distill_args(teacher, out, "--student", "bert-tiny", "--task", "ner"), capsys)
    assert code == 2 and "cannot teach ner" in err and "--task classification" in err
    code, err = _run(_distill_args(teacher, out, "--student-layers", "0,5"), capsys)
    assert code == 2 and "--student-layers 0,5 must name 2 of the teacher's layers (0..1)" in err
    code, err = _run(_distill_args(teacher, out, "--student", "bert-tiny", "--alpha", "1.5"), capsys)
    assert code == 2 and "--alpha 1.5 must be in [0, 1]" in err
    code, err = _run(_distill_args(teacher, out), capsys)
    assert code == 2 and "pass a student (--student PRESET_OR_DIR)" in err
    code, err = _run(_distill_args(teacher, teacher, "--student", "bert-tiny"), capsys)
    assert code == 2 and "is the teacher's directory" in err
    assert not out.exists()
    with pytest.raises(BertForgeError, match="student_layers"):
        DistillConfig(task="classification", model="", teacher=str(teacher), train="x", out="y")


def test_seeds_give_one_student_each_and_keep_the_best(teacher: Path, tmp_path: Path, capsys) -> None:
    root = workspace()
    out = tmp_path / "seeds"
    args = _distill_args(teacher, out, "--student-layers", "1", "--dev", str(root / "classification-dev.tsv"),
                         "--seeds", "1,2", "--epochs", "1", "--train-limit", "32", "--dev-limit", "16", "--batch-size", "16",
                         "--lr", "2e-3", "--intermediate-epochs", "1")  # fmt: skip
    code, err = _run(args, capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [1, 2] and (out / "model.safetensors").is_file()
    assert not (out / WORK_DIR).exists() and not any((out / f"seed-{s}" / WORK_DIR).exists() for s in (1, 2))


def test_an_interrupted_distillation_resumes_to_the_uninterrupted_result(
    teacher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from bertforge.train import finetune as finetune_module

    def args(out: Path, *extra: str) -> list[str]:
        return _distill_args(teacher, out, "--student-layers", "1", "--epochs", "2", "--train-limit", "48",
                             "--batch-size", "16", "--lr", "2e-3", *extra)  # fmt: skip

    code, err = _run(args(tmp_path / "straight"), capsys)
    assert code == 0, err
    real_step, calls = finetune_module.training_step, []

    def crashing_step(*a: object, **k: object) -> float:
        calls.append(1)
        if len(calls) == 4:  # just after the checkpoint at the end of epoch 1 (3 steps)
            raise KeyboardInterrupt
        return real_step(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(finetune_module, "training_step", crashing_step)
    out = tmp_path / "resumed"
    code, _ = _run(args(out), capsys)
    assert code == 130 and (out / WORK_DIR / "teacher").is_dir()
    monkeypatch.setattr(finetune_module, "training_step", real_step)
    code, err = _run(args(out, "--resume", "--alpha", "0.9"), capsys)
    assert code == 2 and "cannot resume" in err and "alpha 0.5 -> 0.9" in err
    code, err = _run(args(out, "--resume"), capsys)
    assert code == 0, err
    a, b = load_file(tmp_path / "straight" / "model.safetensors"), load_file(out / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (out / WORK_DIR).exists()
