"""``bertforge quantize``: an int8 directory that reloads without quantising again, stays close to fp32,
works with evaluate and predict, and refuses bad input in one line without writing anything."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

sys.path.insert(0, str(Path(__file__).parent))
from _task_data import single_thread, trained, workspace  # noqa: E402, F401
from bertforge.cli import main  # noqa: E402
from bertforge.export import quantize as quantize_module  # noqa: E402
from bertforge.export.runtime import MODEL_FILE, QUANTIZED_FILE, OnnxModel  # noqa: E402
from bertforge.pipelines.common import load_task_model, load_tokenizer  # noqa: E402

# int8 weights and activations against fp32 on the tiny classifier (logits about +-0.4): within 0.1
# (measured up to 0.06: 32-wide layers quantise coarsely), and the same class for every input.
LOGIT_TOLERANCE = 0.1


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> tuple[Path, Path, str]:
    """(fp32 checkpoint, int8 directory, what quantize printed): one export for the module."""
    _, checkpoint = trained("classification")
    out = tmp_path_factory.mktemp("int8") / "model"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["quantize", str(checkpoint), "--out", str(out), "--threads", "1"]) == 0
    return checkpoint, out, printed.getvalue()


def _dev() -> str:
    return str(workspace() / "classification-dev.tsv")


def test_quantized_directory_holds_the_int8_model_only_and_says_so(quantized):
    checkpoint, out, printed = quantized
    assert (out / QUANTIZED_FILE).is_file() and not (out / MODEL_FILE).exists()
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "onnxruntime_dynamic"
    assert config["architectures"] == ["BertForSequenceClassification"]
    for name in ("vocab.txt", "finetune_config.json", "export_report.json"):
        assert (out / name).is_file(), name
    size = (out / QUANTIZED_FILE).stat().st_size
    assert f"{QUANTIZED_FILE} is {size / 1e6:.1f} MB on disk" in printed
    assert not any(p.name.startswith(".model") for p in out.parent.iterdir())  # no temporary left


def test_quantized_model_reloads_without_quantising_and_stays_close_to_fp32(quantized, monkeypatch):
    checkpoint, out, _ = quantized

    def refuse(*args, **kwargs):
        raise AssertionError("loading must not quantise again")

    import onnxruntime.quantization

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", refuse)
    int8 = OnnxModel.from_pretrained(out)
    assert int8.path == out and int8.session._model_path.endswith(QUANTIZED_FILE)
    fp32, _ = load_task_model(checkpoint)
    tokenizer = load_tokenizer(checkpoint)
    texts = ["the movie was good", "a bad plot and a bad actor", "we saw this film today , it was good"]
    inputs = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = fp32(**inputs).logits
    got = int8(**inputs).logits
    assert (got - expected).abs().max() <= LOGIT_TOLERANCE
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


def test_evaluate_and_predict_take_the_quantized_directory(quantized, tmp_path, capsys):
    checkpoint, out, _ = quantized
    capsys.readouterr()
    assert main(["evaluate", str(checkpoint), _dev()]) == 0
    fp32 = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(out), _dev()]) == 0
    int8 = json.loads(capsys.readouterr().out)
    assert int8["accuracy"] >= fp32["accuracy"] - 0.02  # 80 dev rows: at most one more mistake
    predictions = tmp_path / "predictions.jsonl"
    assert main(["predict", str(out), _dev(), "--output", str(predictions)]) == 0
    assert len(predictions.read_text().splitlines()) == 80


def _fails_with(capsys, args: list[str], message: str, out: Path) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists() and not any(p.name.startswith(f".{out.name}") for p in out.parent.iterdir())


def test_quantizing_a_quantized_model_is_refused(quantized, tmp_path, capsys):
    _, out, _ = quantized
    target = tmp_path / "again"
    _fails_with(capsys, ["quantize", str(out), "--out", str(target)], "is already quantised", target)


def test_quantizing_an_onnx_export_is_refused(tmp_path, capsys):
    export = tmp_path / "export"
    export.mkdir()
    (export / MODEL_FILE).write_bytes(b"")
    (export / "config.json").write_text('{"model_type": "bert"}')
    target = tmp_path / "int8"
    _fails_with(capsys, ["quantize", str(export), "--out", str(target)], "is an ONNX export", target)


def test_quantizing_a_missing_checkpoint_is_refused(tmp_path, capsys):
    target = tmp_path / "int8"
    _fails_with(
        capsys, ["quantize", str(tmp_path / "nowhere"), "--out", str(target)], "is not a directory", target
    )


def test_a_failure_half_way_leaves_nothing_at_out(tmp_path, monkeypatch):
    _, checkpoint = trained("classification")

    def export_then_fail(checkpoint, out, **kwargs):
        (Path(out) / QUANTIZED_FILE).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    import bertforge.export.onnx

    monkeypatch.setattr(bertforge.export.onnx, "export_onnx", export_then_fail)
    target = tmp_path / "int8"
    with pytest.raises(OSError):
        quantize_module.quantize_checkpoint(checkpoint, target, log=None)
    assert list(tmp_path.iterdir()) == []


def test_serve_runs_the_quantized_directory_with_the_onnx_backend(quantized):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from bertforge.errors import BertForgeError
    from bertforge.serve.app import create_app
    from bertforge.serve.settings import ServeSettings

    _, out, _ = quantized
    with TestClient(create_app(out, ServeSettings(backend="onnx"))) as client:
        response = client.post("/classify", json={"inputs": "a good film"})
        assert response.status_code == 200, response.text
    with pytest.raises(BertForgeError, match="serve it with --backend onnx"):
        create_app(out, ServeSettings())
