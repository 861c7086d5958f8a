"""ONNX export: every family x base and head on tiny random models agrees with PyTorch within 1e-4
through onnxruntime, on padded batches of other sizes than the export example's; all-MiniLM-L6-v2
embeddings match PyTorch's; int8 quantisation writes its model and report; OnnxModel drives the
pipelines (classify, ner, qa) and the Embedder to PyTorch's answers; the CLI's errors are one line.

Exports are slow (seconds each, in the exporter's tracing), so each model is exported once.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="onnx is not installed (pip install bertforge[onnx])")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install bertforge[onnx])")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install bertforge[onnx])")

from _helpers import minilm_path  # noqa: E402
from _task_data import single_thread, trained  # noqa: E402, F401
from bertforge.auto import FAMILIES, AutoConfig, model_class_for  # noqa: E402
from bertforge.cli import main  # noqa: E402
from bertforge.embed import Embedder  # noqa: E402
from bertforge.errors import BertForgeError  # noqa: E402
from bertforge.export.onnx import OnnxModel, export_onnx  # noqa: E402
from bertforge.export.parity import LONG_TEXT, PAIRS, TEXTS  # noqa: E402
from bertforge.pipelines import classify, ner, qa  # noqa: E402
from bertforge.pipelines.common import load_tokenizer  # noqa: E402

TOL = 1e-4
CORPUS = [*TEXTS, *(t for p in PAIRS for t in p), "the colour is red . we saw this film today ."] * 3

# One layer keeps each export at a few seconds; depth is covered by all-MiniLM-L6-v2 (6 layers).
TINY_SIZES = {
    "bert": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 37},
    "roberta": {
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "intermediate_size": 37,
        "type_vocab_size": 1,
    },
    "albert": {
        "embedding_size": 16,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_hidden_groups": 1,
        "num_attention_heads": 4,
        "intermediate_size": 37,
    },
    "distilbert": {"dim": 32, "n_layers": 1, "n_heads": 4, "hidden_dim": 37},
}
POSITIONS = 64


def _distinct_kinds(model_type: str) -> list[str]:
    """Head kinds with their own class (RoBERTa's and DistilBERT's "pretraining" is their MLM class)."""
    seen: set[str] = set()
    kinds = []
    for kind, target in FAMILIES[model_type].heads.items():
        if target not in seen:
            seen.add(target)
            kinds.append(kind)
    return kinds


ALL_CASES = [(family, kind) for family in TINY_SIZES for kind in _distinct_kinds(family)]
# Each export costs 3-15 s inside torch's exporter, so the default run covers every head kind and
# every family once (8 of the 27 classes); BERTFORGE_EXHAUSTIVE=1 runs all 27.
ROTATION = {
    ("bert", "pretraining"), ("bert", "next-sentence"), ("bert", "multiple-choice"),
    ("roberta", "masked-lm"), ("roberta", "token-classification"),
    ("albert", "base"), ("albert", "question-answering"),
    ("distilbert", "sequence-classification"),
}  # fmt: skip
CASES = ALL_CASES if os.environ.get("BERTFORGE_EXHAUSTIVE") else [c for c in ALL_CASES if c in ROTATION]


@functools.cache
def _tokenizer_dir(family: str, root: Path) -> Path:
    from bertforge.tokenization import AlbertTokenizer, BertTokenizer, RobertaTokenizer

    directory = root / f"tok-{family}"
    if family == "roberta":
        tokenizer: Any = RobertaTokenizer.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1)
    elif family == "albert":
        tokenizer = AlbertTokenizer.train_from_iterator(CORPUS, vocab_size=120)
    else:
        tokenizer = BertTokenizer.train_from_iterator(CORPUS, vocab_size=200, min_frequency=1)
    tokenizer.model_max_length = POSITIONS
    tokenizer.save_pretrained(directory)
    return directory


def _checkpoint(root: Path, family: str, kind: str) -> Path:
    """A tiny random ``kind`` model of ``family`` with a trained tokenizer, saved as a checkpoint."""
    tokenizer = load_tokenizer(_tokenizer_dir(family, root))
    positions = POSITIONS + (tokenizer.pad_token_id + 1 if family == "roberta" else 0)
    config = AutoConfig.for_model(
        family,
        vocab_size=len(tokenizer),
        max_position_embeddings=positions,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_SIZES[family],
        **({"num_labels": 5} if kind == "token-classification" else {}),
    )
    torch.manual_seed(0)
    model = model_class_for(family, kind)(config)
    with torch.no_grad():  # random biases and LayerNorms: zeros and ones would hide a misplaced one
        for name, param in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name:
                param.add_(torch.randn_like(param) * 0.1)
    directory = root / f"{family}-{kind}"
    model.save_pretrained(directory)
    load_tokenizer(_tokenizer_dir(family, root)).save_pretrained(directory)
    return directory


def _random_batch(
    model: Any, seed: int, batch: int, lengths: list[int], choices: int | None
) -> dict[str, torch.Tensor]:
    """Random ids, right padding with the pad id, two segments where the family has them."""
    config = model.config
    gen = torch.Generator().manual_seed(seed)
    rows = batch * (choices or 1)
    width = max(lengths)
    pad = config.pad_token_id
    ids = torch.randint(5, config.vocab_size, (rows, width), generator=gen)
    mask = torch.zeros(rows, width, dtype=torch.long)
    types = torch.zeros(rows, width, dtype=torch.long)
    for r in range(rows):
        length = lengths[r % len(lengths)]
        ids[r, length:] = pad
        mask[r, :length] = 1
        if getattr(config, "type_vocab_size", 1) > 1:
            types[r, length // 2 : length] = 1
    out = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if choices:
        out = {k: v.view(batch, choices, width) for k, v in out.items()}
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


@pytest.mark.slow
@pytest.mark.parametrize(("family", "kind"), CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_every_family_and_head_exports_and_agrees_with_pytorch(root: Path, family: str, kind: str) -> None:
    checkpoint = _checkpoint(root, family, kind)
    out = root / f"onnx-{family}-{kind}"
    quantize = "int8" if family == "bert" and kind in ("base", "sequence-classification") else None
    report = export_onnx(checkpoint, out, quantize=quantize, threads=1, log=None)

    assert report.kind == kind and report.model_type == family
    assert max(report.parity_max_abs_diff.values()) <= TOL, report.parity_max_abs_diff
    expected_inputs = ["input_ids", "attention_mask"] + ([] if family == "distilbert" else ["token_type_ids"])
    assert report.inputs == expected_inputs
    saved = json.loads((out / "export_report.json").read_text())
    assert saved["parity_max_abs_diff"] == report.parity_max_abs_diff
    assert json.loads((out / "config.json").read_text())["architectures"] == [report.architecture]

    import onnx

    graph = onnx.load(str(out / "model.onnx"), load_external_data=False).graph
    assert [i.name for i in graph.input] == expected_inputs
    assert [o.name for o in graph.output] == report.outputs
    axes = [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    assert axes == (["batch", "choices", "sequence"] if kind == "multiple-choice" else ["batch", "sequence"])

    # Our own padded batches, through the OnnxModel wrapper, with other batch sizes and lengths.
    ours = OnnxModel.from_pretrained(out, threads=1)
    theirs = model_class_for(family, kind).from_pretrained(checkpoint).eval()
    choices = 4 if kind == "multiple-choice" else None
    for seed, (batch, lengths) in enumerate([(1, [5]), (4, [POSITIONS, 9, 2, 31]), (7, [3, 17, 40])]):
        inputs = _random_batch(theirs, seed, batch, lengths, choices)
        if family == "distilbert":
            inputs.pop("token_type_ids")
        with torch.inference_mode():
            expected = theirs(**inputs)
            got = ours(**inputs)
        assert type(got) is type(expected)
        fields = [n for n in report.outputs if n != "last_hidden_state" or kind == "base"]
        for name in fields:
            torch.testing.assert_close(getattr(got, name), getattr(expected, name), atol=TOL, rtol=0)
        if choices is None:
            with torch.inference_mode():
                hidden = theirs.base_model.sequence_output(**inputs)
            torch.testing.assert_close(ours.sequence_output(**inputs), hidden, atol=TOL, rtol=0)

    if quantize:
        q = report.quantized
        assert (out / "model.int8.onnx").is_file() and q["size_bytes"] < q["fp32_size_bytes"]
        assert saved["quantized"]["size_bytes"] == q["size_bytes"]
        if kind == "base":
            assert q["min_cosine_mean_pooled"] > 0.9
        else:
            assert q["argmax_agreement"]["logits"] >= 0.5
        int8 = OnnxModel.from_pretrained(out, quantized=True, threads=1)
        assert int8(**_random_batch(theirs, 0, 2, [7, 3], None)).to_tuple()[0].shape[0] == 2


# ----------------------------------------------------------------------------- all-MiniLM-L6-v2
@pytest.fixture(scope="module")
def minilm(root: Path) -> tuple[Path, Any]:
    out = root / "minilm"
    report = export_onnx(minilm_path(), out, threads=1, log=None)
    return out, report


SENTENCES = [
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "Two men pushed carts through the woods.",
    "The new movie is awesome, I would watch it again and recommend it to everyone I know.",
    "Ein Mann isst.",
    LONG_TEXT,
]


@pytest.mark.slow
def test_minilm_export_embeds_as_pytorch(minilm: tuple[Path, Any]) -> None:
    out, report = minilm
    assert report.parity_max_abs_diff["last_hidden_state"] <= TOL
    for name in ("vocab.txt", "tokenizer.json", "modules.json", "1_Pooling/config.json"):
        assert (out / name).is_file(), name
    # The sentence-transformers settings travel with the export (Embedder.from_pretrained reads
    # them from a PyTorch checkpoint; here they are read by hand: mean pooling, normalised, 256).
    max_length = json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"]
    onnx_model = OnnxModel.from_pretrained(out, threads=1)
    onnx_vectors = Embedder(
        onnx_model, load_tokenizer(out), pooling="mean", normalize=True, max_length=max_length, batch_size=4
    )(SENTENCES)
    torch_embedder = Embedder.from_pretrained(minilm_path(), batch_size=4)
    assert (torch_embedder.pooling, torch_embedder.normalize, torch_embedder.max_length) == (
        "mean",
        True,
        256,
    )
    torch_vectors = torch_embedder(SENTENCES)
    cosine = torch.nn.functional.cosine_similarity(onnx_vectors, torch_vectors)
    assert float(cosine.min()) >= 0.99999, cosine


# ------------------------------------------------------------------------------------ pipelines
@pytest.fixture(scope="module")
def exported_tasks(root: Path) -> dict[str, tuple[Path, Path]]:
    tasks = {}
    for task in ("classification", "ner", "qa"):
        _, checkpoint = trained(task)
        out = root / f"task-{task}"
        export_onnx(checkpoint, out, threads=1, log=None)
        tasks[task] = (checkpoint, out)
    return tasks


@pytest.mark.slow
def test_predict_and_evaluate_take_an_exported_directory(
    exported_tasks: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    from _task_data import workspace
    from bertforge.cli import main

    checkpoint, out = exported_tasks["classification"]
    dev = workspace() / "classification-dev.tsv"
    assert main(["evaluate", str(checkpoint), str(dev)]) == 0
    pytorch = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(out), str(dev)]) == 0
    onnx = json.loads(capsys.readouterr().out)
    assert onnx["accuracy"] == pytorch["accuracy"]
    assert main(["predict", str(out), str(dev), "--limit", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def _both(task: str, exported: dict[str, tuple[Path, Path]]) -> tuple[Any, Any, Any]:
    from bertforge.pipelines import load_task_model

    checkpoint, out = exported[task]
    model, detected = load_task_model(checkpoint)
    assert detected == task
    return model, OnnxModel.from_pretrained(out, threads=1), load_tokenizer(out)


@pytest.mark.slow
def test_classify_on_onnx_equals_pytorch(exported_tasks: dict[str, tuple[Path, Path]]) -> None:
    model, onnx_model, tokenizer = _both("classification", exported_tasks)
    texts = ["the movie was good", "a bad film", "it was very good and then bad " * 12, "we saw this"]
    ours = classify(onnx_model, tokenizer, texts, top_k=None)
    theirs = classify(model, tokenizer, texts, top_k=None)
    for a, b in zip(ours, theirs, strict=True):
        assert [s.label for s in a] == [s.label for s in b]
        np.testing.assert_allclose([s.score for s in a], [s.score for s in b], atol=1e-5)
    pairs = classify(onnx_model, tokenizer, ["good film", "bad"], ["the plot", "so bad"])
    assert [p[0].label for p in pairs] == [
        p[0].label for p in classify(model, tokenizer, ["good film", "bad"], ["the plot", "so bad"])
    ]


@pytest.mark.slow
def test_ner_on_onnx_equals_pytorch(exported_tasks: dict[str, tuple[Path, Path]]) -> None:
    model, onnx_model, tokenizer = _both("ner", exported_tasks)
    texts = ["john smith saw paris", "mary and bob went to london today", "the film " * 30 + "alice"]
    ours, theirs = ner(onnx_model, tokenizer, texts), ner(model, tokenizer, texts)
    assert [[(e.type, e.start, e.end) for e in row] for row in ours] == [
        [(e.type, e.start, e.end) for e in row] for row in theirs
    ]
    assert any(ours)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose([e.score for e in a], [e.score for e in b], atol=1e-5)


@pytest.mark.slow
def test_qa_on_onnx_equals_pytorch(exported_tasks: dict[str, tuple[Path, Path]]) -> None:
    model, onnx_model, tokenizer = _both("qa", exported_tasks)
    question = "what is the colour ?"
    contexts = [
        "we saw this film the colour is red and it was good .",
        "the plot " * 20 + "the colour is blue .",
    ]
    for context in contexts:
        ours, theirs = qa(onnx_model, tokenizer, question, context), qa(model, tokenizer, question, context)
        assert ours.answer.text == theirs.answer.text
        assert abs(ours.answer.score - theirs.answer.score) < 1e-5


# -------------------------------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_export_prints_parity_and_writes_the_directory(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = _checkpoint(root, "distilbert", "sequence-classification")
    out = root / "cli-out"
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "parity with PyTorch" in printed and "logits" in printed and "ok" in printed
    assert {"model.onnx", "config.json", "export_report.json", "tokenizer.json"} <= {
        p.name for p in out.iterdir()
    }


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_cli_errors_are_one_line(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = _checkpoint(root, "distilbert", "base")
    afile = root / "a-file"
    afile.write_text("x")
    err = _cli_error(["export", str(checkpoint), "--format", "tflite", "--out", str(root / "x")], capsys)
    assert "unknown --format 'tflite'" in err and "onnx" in err
    err = _cli_error(["export", str(checkpoint), "--out", str(afile)], capsys)
    assert "is a file" in err
    err = _cli_error(["export", str(checkpoint), "--out", str(root / "y"), "--quantize", "int4"], capsys)
    assert "unknown --quantize 'int4'" in err
    err = _cli_error(["export", str(checkpoint), "--out", str(root / "y"), "--head", "next-sentence"], capsys)
    assert "distilbert family has no next-sentence" in err
    err = _cli_error(["export", str(root / "missing"), "--out", str(root / "y")], capsys)
    assert "missing" in err


def test_cli_names_the_extra_when_onnxruntime_is_missing(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = _checkpoint(root, "distilbert", "base")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    err = _cli_error(["export", str(checkpoint), "--out", str(root / "z")], capsys)
    assert "pip install bertforge[onnx]" in err


def test_onnx_model_errors(root: Path) -> None:
    with pytest.raises(BertForgeError, match="has no model.onnx"):
        OnnxModel.from_pretrained(root)
