"""``bertforge export CHECKPOINT --format onnx``: a checkpoint of any family and head to ONNX.

How (torch 2.13): ``torch.export.export`` (non-strict) traces the model with dynamic batch and
sequence axes (and choices for multiple choice), then ``torch.onnx.export`` (the dynamo exporter,
opset 18 by default) converts the program, with onnxscript's optimiser. The TorchScript exporter
(``dynamo=False``) was tried and rejected: its graph of these models disagreed with PyTorch by ~2 on
the hidden states. The graph keeps the attention mask always (``ops.key_padding_mask`` drops an
all-ones mask only in eager mode, a branch on tensor values that a graph cannot hold).

The graph's inputs are named as the PyTorch forward's (``input_ids``, ``attention_mask``,
``token_type_ids`` where the family takes it: not DistilBERT) and its outputs after the output
fields (``last_hidden_state``, ``pooler_output``, ``logits``, ``start_logits`` ...). Head models also
output the encoder's ``last_hidden_state`` (multiple choice excepted), so an exported classifier can
embed too.

After export, onnxruntime runs the graph on varied real texts (batch 1, mixed lengths padded, pairs,
a text cut at the window) against PyTorch: the max abs difference per output is printed and the
export fails above 1e-4. ``quantize="int8"`` adds ``model.int8.onnx`` (onnxruntime dynamic int8) with
its size and agreement. config.json (architectures = the exported class), the tokenizer files and
sentence-transformers' settings are copied beside the model; ``export_report.json`` holds the figures.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..auto import HEAD_KINDS, checkpoint_head_kind, checkpoint_model_type, model_class_for
from ..config import config_path, read_config_json
from ..errors import BertForgeError
from ..fileio import atomic_write_json
from .parity import example_inputs, max_abs_diff, parity_batches
from .runtime import (
    INPUT_NAMES,
    MODEL_FILE,
    ONNX_EXTRA,
    QUANTIZED_FILE,
    REPORT_FILE,
    OnnxModel,
    exported_kind,
    is_onnx_export,
    make_session,
)

__all__ = ["FORMATS", "TOLERANCE", "ExportReport", "OnnxModel", "export_onnx", "is_onnx_export"]

logger = logging.getLogger(__name__)

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)
TOLERANCE = 1e-4  # fp32 parity, max abs difference per output
DEFAULT_OPSET = 18
PARITY_MAX_LENGTH = 128
# Not model outputs: the loss (no labels are given) and the per-layer tuples (not exported).
_SKIPPED_FIELDS = ("loss", "hidden_states", "attentions")
# Copied beside the model when the checkpoint has them: tokenizer files of every family, the
# settings the pipelines read (fine-tuning windows), and sentence-transformers' pooling settings.
COPIED_FILES = (
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "finetune_config.json",
    "sentence_bert_config.json",
    "modules.json",
    "config_sentence_transformers.json",
)
COPIED_DIRS = ("1_Pooling", "2_Normalize")


@dataclass
class ExportReport:
    """What ``export_report.json`` holds."""

    checkpoint: str
    model_type: str
    kind: str
    architecture: str
    opset: int
    inputs: list[str]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    export_seconds: float
    tolerance: float
    parity_max_abs_diff: dict[str, float]
    parity_batches: list[list[int]]
    size_bytes: int
    quantized: dict[str, Any] | None = None
    torch_version: str = field(default_factory=lambda: torch.__version__)
    onnxruntime_version: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def require_onnx() -> None:
    """Raise a one-line error naming the extra when onnx, onnxscript or onnxruntime is missing."""
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            raise BertForgeError(f"{module} is not installed; {ONNX_EXTRA}") from None


class _Graph(nn.Module):
    """The model as a function of tensors to a tuple of tensors, in the graph's output order."""

    def __init__(self, model: nn.Module, fields: list[str], hidden: bool) -> None:
        super().__init__()
        self.model = model
        self.fields = fields
        self.hidden = hidden  # also output the encoder's last hidden state (hidden_states[-1])

    def outputs(self, **inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(**inputs, output_hidden_states=self.hidden) if self.hidden else self.model(**inputs)
        tensors = [getattr(out, name) for name in self.fields]
        if self.hidden:
            tensors.append(out.hidden_states[-1])
        return tuple(tensors)


class _GraphWithTypes(_Graph):
    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        return self.outputs(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)


class _GraphWithoutTypes(_Graph):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.outputs(input_ids=input_ids, attention_mask=attention_mask)


def _output_fields(model: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[list[str], bool]:
    """The tensor fields the model returns, and whether to add the encoder's last hidden state."""
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    fields = [
        name
        for name in out.__dataclass_fields__
        if name not in _SKIPPED_FIELDS and isinstance(getattr(out, name), torch.Tensor)
    ]
    hidden = (
        "last_hidden_state" not in fields
        and out.hidden_states is not None
        and out.hidden_states[-1].dim() == 3
        and out.hidden_states[-1].shape[0] == inputs["input_ids"].shape[0]  # not multiple choice (B*C rows)
    )
    return fields, hidden


def _copy_beside(checkpoint: Path, out: Path, architecture: str) -> list[str]:
    """config.json (architectures = the exported class) and the tokenizer/settings files."""
    config = read_config_json(config_path(checkpoint))
    config["architectures"] = [architecture]
    atomic_write_json(out / "config.json", config)
    copied = ["config.json"]
    for name in COPIED_FILES:
        if (checkpoint / name).is_file():
            shutil.copyfile(checkpoint / name, out / name)
            copied.append(name)
    for name in COPIED_DIRS:
        if (checkpoint / name).is_dir():
            shutil.copytree(checkpoint / name, out / name, dirs_exist_ok=True)
            copied.append(name + "/")
    return copied


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BertForgeError(f"--out {out} is a file; pass a directory (it is created if missing)")
    out.mkdir(parents=True, exist_ok=True)


def resolve_kind(checkpoint: Path, model_type: str, head: str | None) -> str:
    """The head kind to export: ``head`` when given, else the checkpoint's (config.json
    architectures), else the base model."""
    if head is not None:
        if head not in HEAD_KINDS:
            raise BertForgeError(f"unknown head {head!r}; choose from {', '.join(HEAD_KINDS)}")
        model_class_for(model_type, head)  # the family has it, or a message listing those it has
        return head
    return exported_kind(model_type, checkpoint_head_kind(checkpoint))


def _size(path: Path) -> int:
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.is_file() else 0)


def export_onnx(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    head: str | None = None,
    opset: int = DEFAULT_OPSET,
    quantize: str | None = None,
    threads: int | None = None,
    log: Callable[[str], None] | None = print,
) -> ExportReport:
    """Export ``checkpoint`` to ``out/model.onnx`` and check it against PyTorch (see the module doc).

    ``head``: a :data:`bertforge.auto.HEAD_KINDS` value (default: the checkpoint's architecture).
    ``quantize="int8"`` also writes ``model.int8.onnx``. ``log`` receives the printed lines (None:
    silent). Raises BertForgeError when the ONNX model disagrees with PyTorch by more than 1e-4.
    """
    require_onnx()
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise BertForgeError(f"unknown quantization {quantize!r}; choose from {', '.join(QUANTIZATIONS)}")
    if not 14 <= opset <= 23:
        raise BertForgeError(f"--opset {opset} is not supported; use an opset from 14 to 23 (default 18)")
    say = log or (lambda _line: None)
    checkpoint, out = Path(checkpoint), Path(out)
    if not checkpoint.is_dir():
        raise BertForgeError(f"checkpoint {checkpoint} is not a directory; pass a saved checkpoint")
    model_type = checkpoint_model_type(checkpoint)
    kind = resolve_kind(checkpoint, model_type, head)
    _check_out(out)

    from ..pipelines.common import load_tokenizer

    cls = model_class_for(model_type, kind)
    model = cls.from_pretrained(checkpoint, dtype=torch.float32).eval()
    tokenizer = load_tokenizer(checkpoint)
    multiple_choice = kind == "multiple-choice"
    max_length = min(PARITY_MAX_LENGTH, int(model.config.max_sequence_length))
    inputs = [n for n in INPUT_NAMES if n in _forward_names(cls)]
    example = {
        k: torch.from_numpy(v) for k, v in example_inputs(tokenizer, multiple_choice, max_length).items()
    }
    example = {k: example[k] for k in inputs}
    fields, hidden = _output_fields(model, example)
    outputs = fields + (["last_hidden_state"] if hidden else [])
    graph = (_GraphWithTypes if "token_type_ids" in inputs else _GraphWithoutTypes)(model, fields, hidden)

    axes = {0: "batch", 1: "choices", 2: "sequence"} if multiple_choice else {0: "batch", 1: "sequence"}
    say(f"exporting {cls.__name__} ({model_type} {kind}) from {checkpoint} to ONNX opset {opset} ...")
    started = time.perf_counter()
    path = out / MODEL_FILE
    _export(graph, example, inputs, outputs, axes, int(model.config.max_sequence_length), opset, path, model)
    seconds = time.perf_counter() - started
    say(f"wrote {path} ({_size(path) / 1e6:.1f} MB) in {seconds:.1f}s")
    copied = _copy_beside(checkpoint, out, cls.__name__)
    say(f"copied {', '.join(copied)}")

    # ------------------------------------------------------------- parity with PyTorch, onnxruntime
    import onnxruntime

    batches = [{k: b[k] for k in inputs} for b in parity_batches(tokenizer, multiple_choice, max_length)]
    references = [_torch_outputs(graph, batch, outputs) for batch in batches]
    session = make_session(path, threads)
    diffs = _worst(session, batches, references)
    report = ExportReport(
        checkpoint=str(checkpoint),
        model_type=model_type,
        kind=kind,
        architecture=cls.__name__,
        opset=opset,
        inputs=inputs,
        outputs=outputs,
        dynamic_axes={name: dict(axes) for name in inputs},
        export_seconds=round(seconds, 2),
        tolerance=TOLERANCE,
        parity_max_abs_diff=diffs,
        parity_batches=[list(b["input_ids"].shape) for b in batches],
        size_bytes=_size(path),
        onnxruntime_version=onnxruntime.__version__,
    )
    shapes = ", ".join("x".join(map(str, s)) for s in report.parity_batches)
    say(f"parity with PyTorch on {len(batches)} batches ({shapes}), max abs difference per output:")
    for name, diff in diffs.items():
        say(f"  {name:<24} {diff:.2e}  {'ok' if diff <= TOLERANCE else 'FAIL'}")
    failed = {k: v for k, v in diffs.items() if not v <= TOLERANCE}  # NaN fails too
    if failed:
        atomic_write_json(out / REPORT_FILE, report.to_json())
        worst = ", ".join(f"{k} {v:.2e}" for k, v in failed.items())
        raise BertForgeError(
            f"the ONNX model disagrees with PyTorch beyond {TOLERANCE:g} ({worst}); the graph in {path} "
            f"is not usable; report it with {out / REPORT_FILE}"
        )

    if quantize == "int8":
        from .quantize import quantize_int8

        report.quantized = quantize_int8(path, out / QUANTIZED_FILE, kind, batches, references, threads)
        q = report.quantized
        say(
            f"int8: wrote {out / QUANTIZED_FILE}: {q['size_bytes'] / 1e6:.1f} MB vs fp32 "
            f"{report.size_bytes / 1e6:.1f} MB ({q['size_ratio']:.2f}x)"
        )
        for name, diff in q["max_abs_diff"].items():
            say(f"  {name:<24} max abs diff {diff:.3g}")
        for name, rate in q.get("argmax_agreement", {}).items():
            say(f"  {name:<24} argmax agreement {rate:.2%}")
        if "min_cosine_mean_pooled" in q:
            say(f"  mean-pooled embeddings  min cosine {q['min_cosine_mean_pooled']:.5f}")
    atomic_write_json(out / REPORT_FILE, report.to_json())
    say(f"wrote {out / REPORT_FILE}")
    return report


def _forward_names(cls: type[nn.Module]) -> set[str]:
    import inspect

    return set(inspect.signature(cls.forward).parameters)


def _export(
    graph: nn.Module,
    example: dict[str, torch.Tensor],
    inputs: list[str],
    outputs: list[str],
    axes: dict[int, str],
    max_sequence: int,
    opset: int,
    path: Path,
    model: nn.Module,
) -> None:
    dims = {
        "batch": torch.export.Dim("batch", max=1 << 20),
        "choices": torch.export.Dim("choices", max=1 << 10),
        "sequence": torch.export.Dim("sequence", max=max_sequence),
    }
    dynamic = {name: {axis: dims[label] for axis, label in axes.items()} for name in inputs}
    args = tuple(example[name] for name in inputs)
    # The exporter logs and warns at length about what it tries; keep the console to our lines.
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [q.level for q in quiet]
    try:
        for q in quiet:
            q.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.export.export(graph, args, dynamic_shapes=dynamic, strict=False)
            onnx_program = torch.onnx.export(
                program,
                args,
                dynamo=True,
                input_names=inputs,
                output_names=outputs,
                opset_version=opset,
                optimize=True,
                verbose=False,
                report=False,
            )
            assert onnx_program is not None, "torch.onnx.export(dynamo=True) returns an ONNXProgram"
            # Name the symbolic axes as in the report ("batch", "sequence"), not "s18", "s41".
            names: dict[Any, str] = {}
            for value in onnx_program.model.graph.inputs:
                shape = value.shape
                assert shape is not None, f"exported input {value.name} has no shape"
                for axis, label in axes.items():
                    if not isinstance(shape[axis], int):
                        names[shape[axis]] = label
            onnx_program.rename_axes(names)
            # One file below protobuf's 2 GB limit; larger models put their weights in model.onnx.data.
            big = sum(p.numel() * p.element_size() for p in model.parameters()) > 1_800_000_000
            onnx_program.save(str(path), external_data=big)
    except BertForgeError:
        raise
    except Exception as exc:  # the exporter raises many types; name the model and the cause
        raise BertForgeError(
            f"torch.onnx.export failed for {type(model).__name__}: {type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        ) from exc
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)


def _torch_outputs(
    graph: nn.Module, batch: dict[str, np.ndarray], outputs: list[str]
) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        tensors = graph(**{k: torch.from_numpy(v) for k, v in batch.items()})
    return {name: t.float().numpy() for name, t in zip(outputs, tensors, strict=True)}


def _worst(
    session: Any, batches: list[dict[str, np.ndarray]], references: list[dict[str, np.ndarray]]
) -> dict[str, float]:
    worst: dict[str, float] = {}
    for batch, reference in zip(batches, references, strict=True):
        names = list(reference)
        got = dict(zip(names, session.run(names, batch), strict=True))
        for name, diff in max_abs_diff(got, reference).items():
            worst[name] = max(worst.get(name, 0.0), diff) if not np.isnan(diff) else float("nan")
    return worst
