"""The task registry: every task defined once (tasks/registry.py) and used by finetune, evaluate and
predict; one metrics implementation with the same keys in finetune's metrics.jsonl and evaluate;
and the commands (info, fill-mask, embed, finetune, evaluate, predict) on a non-BERT checkpoint.

The non-BERT checkpoint is a tiny fake family registered into ``bertforge.auto.FAMILIES``
(:mod:`_fake_family`: no token_type_ids in forward, RoBERTa-style ``<s>``/``</s>``/``<mask>``
tokenizer); the same commands on real RoBERTa/DistilBERT checkpoints run when those classes exist.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pytest

import _fake_family
from _task_data import single_thread, workspace, write_sentiment  # noqa: F401
from bertforge import auto
from bertforge.cli import main
from bertforge.errors import BertForgeError
from bertforge.tasks import registry
from bertforge.tasks.metrics import MAIN_METRIC

SRC = Path(__file__).resolve().parents[1] / "src" / "bertforge"
BUILT_IN = ("classification", "regression", "ner", "qa", "multiple-choice")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------ defined once
def test_the_built_in_tasks_are_the_registry_and_agree_with_auto_and_metrics() -> None:
    assert registry.task_names()[: len(BUILT_IN)] == BUILT_IN
    for name in BUILT_IN:
        task = registry.get_task(name)
        assert task.head == auto.TASK_HEADS[name]
        assert task.main_metric == MAIN_METRIC[name]
    with pytest.raises(BertForgeError, match="unknown task 'pos'.*classification, regression, ner, qa"):
        registry.get_task("pos")


def test_no_task_list_or_task_name_chain_outside_the_registry() -> None:
    users = [
        SRC / "train" / "finetune.py",
        SRC / "train" / "finetune_config.py",
        SRC / "pipelines" / "evaluation.py",
        SRC / "pipelines" / "common.py",
        SRC / "cli" / "tasks.py",
    ]
    for path in users:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"task\s*(==|!=|in)\s*[(\"']", text), f"{path.name} compares task names"
        assert '"multiple-choice"' not in text, f"{path.name} spells out the task list"
        assert not re.search(r"BertFor[A-Z]", text), f"{path.name} names a BERT class"


def test_finetune_config_and_cli_take_the_registered_tasks_only(capsys) -> None:
    from bertforge.train.finetune_config import FinetuneConfig

    with pytest.raises(BertForgeError, match="unknown task 'pos'"):
        FinetuneConfig(task="pos", model="m", train="t", out="o")
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "m", "f", "--task", "pos"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "invalid choice: 'pos'" in err and "multiple-choice" in err


# ------------------------------------------------------------------ a registered task end to end
@pytest.fixture(scope="module")
def sentiment() -> Path:
    root = workspace() / "registry"
    root.mkdir(exist_ok=True)
    write_sentiment(root / "train.tsv", 32, seed=5)
    write_sentiment(root / "dev.tsv", 12, seed=6)
    return root


def test_a_registered_task_runs_through_finetune_evaluate_and_predict(
    sentiment: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    calls: Counter[str] = Counter()
    base = registry.CLASSIFICATION

    def counted(name: str, function):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    def hits(examples, predictions):  # type: ignore[no-untyped-def]
        right = sum(p["label"] == str(e.label) for e, p in zip(examples, predictions, strict=True))
        return {"hits": right / len(examples), "count": len(examples)}

    fake = dataclasses.replace(
        base,
        name="polarity",
        main_metric="hits",
        read=counted("read", base.read),
        encode=counted("encode", base.encode),
        predict=counted("predict", base.predict),
        metrics=counted("metrics", hits),
    )
    monkeypatch.setitem(registry.TASKS, "polarity", fake)
    out = tmp_path / "polarity"
    code, stdout, err = run_cli(
        capsys, "finetune", "--task", "polarity", "--model", workspace() / "tiny",
        "--train", sentiment / "train.tsv", "--dev", sentiment / "dev.tsv", "--out", out,
        "--epochs", "1", "--batch-size", "16", "--max-seq-length", "32",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["main_metric"] == "hits" and set(summary["dev"]) == {"hits", "count"}
    assert calls == {"read": 2, "encode": 1, "predict": 1, "metrics": 1}
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {k for k in evals[-1] if k.startswith("dev_")} == {"dev_hits", "dev_count"}

    code, stdout, err = run_cli(capsys, "evaluate", out, sentiment / "dev.tsv", "--task", "polarity")
    assert code == 0, err
    assert json.loads(stdout) == summary["dev"]
    code, stdout, _ = run_cli(capsys, "predict", out, sentiment / "dev.tsv", "--task", "polarity")
    assert code == 0 and len(stdout.splitlines()) == 12
    assert calls["read"] == 4 and calls["predict"] == 3 and calls["metrics"] == 2


# ------------------------------------------------------------------------- a non-BERT checkpoint
@pytest.fixture(scope="module")
def fake() -> Path:
    with _fake_family.registered():
        return _fake_family.write_fake_checkpoint(workspace() / "fakebert")


def test_windows_use_the_tokenizers_own_special_tokens() -> None:
    from bertforge.tasks.preprocess import encode_text_windows, encode_words, special_layout
    from bertforge.tasks.preprocess_qa import encode_qa

    tokenizer = _fake_family.roberta_style_tokenizer()
    layout = special_layout(tokenizer)
    assert not layout.token_type_ids and layout.pair_specials == 4 and layout.single_specials == 2
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<s>", "</s>", "paris", "is", "red")}
    (qa,) = encode_qa(["paris"], ["is red"], tokenizer, 32, 4, 8, answers=[(3, 6)])
    assert qa["input_ids"] == [ids[t] for t in ("<s>", "paris", "</s>", "</s>", "is", "red", "</s>")]
    assert "token_type_ids" not in qa and (qa["start_positions"], qa["end_positions"]) == (5, 5)
    assert qa["offsets"] == [None] * 4 + [(0, 2), (3, 6), None]
    (window,) = encode_text_windows(["paris is red"], tokenizer, 32, 4)
    assert window["input_ids"] == tokenizer("paris is red")["input_ids"]
    features, _ = encode_words([["paris", "is"]], tokenizer, 32, 4)
    assert features[0]["offset"] == 1 and features[0]["input_ids"][0] == ids["<s>"]


def test_unsupported_model_type_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 10}))
    for argv in (("info", tmp_path), ("fill-mask", tmp_path, "a [MASK]"), ("evaluate", tmp_path, tmp_path)):
        code, _, err = run_cli(capsys, *argv)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert "'gpt2'" in lines[0] and "bert" in lines[0] and lines[0].startswith("bertforge: error:")


def test_commands_on_a_non_bert_checkpoint(fake: Path, sentiment: Path, tmp_path: Path, capsys) -> None:
    with _fake_family.registered():
        code, stdout, err = run_cli(capsys, "info", fake, "--json")
        assert code == 0, err
        info = json.loads(stdout)
        model = _fake_family.FakeForMaskedLM.from_pretrained(fake)
        assert info["model_type"] == "fakebert" and info["architectures"] == ["FakeForMaskedLM"]
        assert info["parameters"]["total"] == model.num_parameters()
        assert {"embeddings", "encoder", "masked-LM head"} <= set(info["parameters"])

        # The tokenizer's own mask token; BERT's spelling is accepted too.
        code, stdout, err = run_cli(capsys, "fill-mask", fake, "the [MASK] sat", "--json", "--top-k", "2")
        assert code == 0, err
        (candidates,) = json.loads(stdout)
        assert len(candidates) == 2 and all(c["token"] in _fake_family.FAKE_VOCAB for c in candidates)

        texts = tmp_path / "texts.txt"
        texts.write_text("paris is red\ngood day\n")
        code, stdout, err = run_cli(capsys, "embed", fake, "--input", texts)
        assert code == 0, err
        assert [len(json.loads(line)["embedding"]) for line in stdout.splitlines()] == [32, 32]

        out = tmp_path / "classifier"
        code, stdout, err = run_cli(
            capsys, "finetune", "--task", "classification", "--model", fake,
            "--train", sentiment / "train.tsv", "--dev", sentiment / "dev.tsv", "--out", out,
            "--epochs", "1", "--batch-size", "16", "--max-seq-length", "32", "--dropout", "0.0",
        )  # fmt: skip
        assert code == 0, err
        summary = json.loads(stdout)
        saved = json.loads((out / "config.json").read_text())
        assert saved["model_type"] == "fakebert"
        assert saved["architectures"] == ["FakeForSequenceClassification"]
        assert saved["hidden_dropout_prob"] == 0.0

        code, stdout, err = run_cli(capsys, "evaluate", out, sentiment / "dev.tsv")  # task detected
        assert code == 0, err
        metrics = json.loads(stdout)
        # One metrics implementation: evaluate's keys are finetune's, and metrics.jsonl's with dev_.
        assert metrics == pytest.approx(summary["dev"]) and metrics["accuracy"] == summary["best"]
        assert {"accuracy", "macro_f1", "mcc"} <= set(metrics)
        evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert {k for k in evals[-1] if k.startswith("dev_")} == {f"dev_{k}" for k in metrics}

        code, stdout, err = run_cli(capsys, "predict", out, sentiment / "dev.tsv", "--limit", "3")
        assert code == 0, err
        predictions = [json.loads(line) for line in stdout.splitlines()]
        assert len(predictions) == 3 and all(p["label"] in ("0", "1") for p in predictions)


def _real_family_checkpoint(model_type: str, directory: Path) -> Path | None:
    """A tiny real RoBERTa/DistilBERT masked LM (None if the family module is missing)."""
    if importlib.util.find_spec(f"bertforge.models.{model_type}") is None:
        return None
    config_class = auto.config_class_for(model_type)
    config = config_class.from_preset(
        f"{model_type}-tiny", vocab_size=len(_fake_family.FAKE_VOCAB), pad_token_id=1
    )
    auto.AutoModelForMaskedLM.from_config(config).save_pretrained(directory)
    _fake_family.roberta_style_tokenizer().save_pretrained(str(directory))
    return directory


@pytest.mark.parametrize("model_type", ["roberta", "distilbert"])
def test_commands_on_a_real_family_checkpoint(
    model_type: str, sentiment: Path, tmp_path: Path, capsys
) -> None:
    with _fake_family.registered():
        ckpt = _real_family_checkpoint(model_type, tmp_path / model_type)
        if ckpt is None:
            pytest.skip(
                f"bertforge.models.{model_type} is not on this branch yet (the family branch adds it)"
            )
        for argv in (("info", ckpt, "--json"), ("fill-mask", ckpt, "the <mask> sat", "--json")):
            code, _, err = run_cli(capsys, *argv)
            assert code == 0, err
        out = tmp_path / "out"
        code, stdout, err = run_cli(
            capsys, "finetune", "--task", "classification", "--model", ckpt,
            "--train", sentiment / "train.tsv", "--dev", sentiment / "dev.tsv", "--out", out,
            "--epochs", "1", "--batch-size", "16", "--max-seq-length", "32",
        )  # fmt: skip
        assert code == 0, err
        assert json.loads((out / "config.json").read_text())["model_type"] == model_type
        code, stdout, err = run_cli(capsys, "evaluate", out, sentiment / "dev.tsv")
        assert code == 0, err
        code, stdout, err = run_cli(capsys, "predict", out, sentiment / "dev.tsv", "--limit", "2")
        assert code == 0 and len(stdout.splitlines()) == 2, err
