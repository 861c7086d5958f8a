"""int8: onnxruntime dynamic int8 quantisation of an exported model (``bertforge export --quantize
int8``) and of a checkpoint (``bertforge quantize CHECKPOINT --out DIR``), with how far its outputs
move from PyTorch's on the export's parity batches.

Dynamic quantisation stores the weights of the MatMul (every Linear layer) and Gather (the embedding
tables) nodes as int8 with a scale per output channel, and quantises activations to uint8 on the
fly, per tensor; nothing needs calibration data. Agreement is reported as the max abs difference per
output, and, for heads, the rate at which the int8 model's argmax equals PyTorch's (per row, per
real token for tagging and MLM); for the base model, the smallest cosine between the int8 and
PyTorch mean-pooled embeddings.

Why onnxruntime and not PyTorch (2026-11-29, torch 2.13 CPU): ``torch.ao.quantization.quantize_dynamic``
warns that its quantised tensors are deprecated; torchao (0.18, the maintained successor) targets GPUs,
and its int8 dynamic-activation Linear ran all-MiniLM-L6-v2 at batch 1 about 10x *slower* than fp32
in eager mode on this CPU, and saves through pickled tensor subclasses rather than safetensors.
onnxruntime's dynamic int8 is a maintained part of a runtime bertforge already exports to, runs
VNNI/AMX integer kernels on CPUs, and stores the int8 weights in the ``.onnx`` file itself, so the
result reloads without quantising again (:class:`~bertforge.export.runtime.OnnxModel`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BertForgeError
from .parity import argmax_agreement, cosine_rows, max_abs_diff, mean_pooled, min_cosine
from .runtime import MODEL_FILE, QUANTIZED_FILE, REPORT_FILE, is_onnx_export, make_session

# config.json of a quantised directory says so (transformers' key for a quantised model's settings).
QUANTIZATION_KEY = "quantization_config"
METHOD = "onnxruntime.quantization.quantize_dynamic, weight_type=QInt8, per_channel=True"


def quantize_int8(
    source: Path,
    target: Path,
    kind: str,
    batches: list[dict[str, np.ndarray]],
    references: list[dict[str, np.ndarray]],
    threads: int | None = None,
) -> dict[str, Any]:
    """Write ``target`` (int8) from ``source`` (fp32 ONNX); the agreement figures, for the report."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger("root"), logging.getLogger()
    levels = [q.level for q in quiet]
    try:
        for q in quiet:
            q.setLevel(logging.ERROR)  # the quantiser advises pre-processing through the root logger
        # Per-channel weight scales: all-MiniLM-L6-v2's min cosine to PyTorch 0.977 (per tensor: 0.910).
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)
    session = make_session(target, threads)
    worst: dict[str, float] = {}
    agree: dict[str, list[int]] = {}
    pooled: list[float] = []
    cosines: list[np.ndarray] = []
    for batch, reference in zip(batches, references, strict=True):
        names = list(reference)
        got = dict(zip(names, session.run(names, batch), strict=True))
        for name, diff in max_abs_diff(got, reference).items():
            worst[name] = max(worst.get(name, 0.0), diff)
        mask = batch["attention_mask"]
        if kind == "base":
            ours, theirs = (
                mean_pooled(got["last_hidden_state"], mask),
                mean_pooled(reference["last_hidden_state"], mask),
            )
            pooled.append(min_cosine(ours, theirs))
            cosines.append(cosine_rows(ours, theirs))
            continue
        for name in names:
            if name in ("last_hidden_state", "pooler_output"):
                continue
            same, total = argmax_agreement(name, got[name], reference[name], mask)
            counts = agree.setdefault(name, [0, 0])
            counts[0] += same
            counts[1] += total
    size = target.stat().st_size
    fp32 = source.stat().st_size
    result: dict[str, Any] = {
        "file": target.name,
        "method": METHOD,
        "size_bytes": size,
        "fp32_size_bytes": fp32,
        "size_ratio": fp32 / size,
        "max_abs_diff": worst,
    }
    if kind == "base":
        result["min_cosine_mean_pooled"] = min(pooled)
        result["mean_cosine_mean_pooled"] = float(np.concatenate(cosines).mean())
    else:
        result["argmax_agreement"] = {k: same / max(total, 1) for k, (same, total) in agree.items()}
        result["argmax_counts"] = {k: v for k, v in agree.items()}
    return result


def weights_size(checkpoint: Path) -> int:
    """Bytes of a PyTorch checkpoint's weight files (safetensors or .bin, sharded too)."""
    patterns = ("model*.safetensors", "pytorch_model*.bin")
    return sum(f.stat().st_size for pattern in patterns for f in checkpoint.glob(pattern))


def check_not_quantized(checkpoint: Path) -> None:
    """A one-line error for a directory that is already quantised or is an ONNX export."""
    from ..config import read_config_json

    config = checkpoint / "config.json"
    marked = config.is_file() and QUANTIZATION_KEY in read_config_json(config)
    if (checkpoint / QUANTIZED_FILE).is_file() or marked:
        raise BertForgeError(
            f"{checkpoint} is already quantised ({QUANTIZED_FILE}); quantising again would only add "
            "rounding error. Quantise the fp32 checkpoint it came from"
        )
    if is_onnx_export(checkpoint):
        raise BertForgeError(
            f"{checkpoint} is an ONNX export; quantise the PyTorch checkpoint it came from, or "
            f"re-export it with `bertforge export CHECKPOINT --quantize int8`"
        )


def quantize_checkpoint(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    threads: int | None = None,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Write ``out``: ``model.int8.onnx`` (onnxruntime dynamic int8 of ``checkpoint``'s model, its
    head included), config.json marked with ``quantization_config``, the tokenizer and fine-tuning
    settings, and ``export_report.json``. Every command that takes an exported directory (evaluate,
    predict, embed, serve --backend onnx) loads it without quantising again.

    The fp32 graph is exported and checked against PyTorch first (1e-4, see
    :func:`bertforge.export.onnx.export_onnx`), then quantised, then dropped. ``out`` is written
    atomically: on any failure nothing is left there. Returns the report's int8 section.
    """
    from ..config import read_config_json
    from ..fileio import atomic_directory, atomic_write_json
    from .onnx import export_onnx

    say = log or (lambda _line: None)
    checkpoint, out = Path(checkpoint), Path(out)
    if not checkpoint.is_dir():
        raise BertForgeError(f"checkpoint {checkpoint} is not a directory; pass a saved checkpoint")
    check_not_quantized(checkpoint)
    if out.exists() and not out.is_dir():
        raise BertForgeError(f"--out {out} is a file; pass a directory (it is created if missing)")
    if out.resolve() == checkpoint.resolve():
        raise BertForgeError(f"--out {out} is the checkpoint itself; write the int8 model elsewhere")
    quantized: dict[str, Any] = {}

    def write(tmp: Path) -> None:
        # Lines name the files where they will be once the directory is renamed into place.
        report = export_onnx(
            checkpoint,
            tmp,
            quantize="int8",
            threads=threads,
            log=lambda line: say(line.replace(str(tmp), str(out))),
        )
        assert report.quantized is not None
        quantized.update(report.quantized)
        for fp32 in (tmp / MODEL_FILE, tmp / f"{MODEL_FILE}.data"):
            fp32.unlink(missing_ok=True)  # the directory holds the int8 model only
        config = read_config_json(tmp / "config.json")
        config[QUANTIZATION_KEY] = {
            "quant_method": "onnxruntime_dynamic",
            "weights": "int8, a scale per output channel (MatMul and Gather)",
            "activations": "uint8, quantised per tensor at run time",
            "file": QUANTIZED_FILE,
        }
        atomic_write_json(tmp / "config.json", config)
        assert (tmp / REPORT_FILE).is_file()

    atomic_directory(out, write)
    size, fp32_size = quantized["size_bytes"], weights_size(checkpoint)
    fp32 = (
        f" (the checkpoint's fp32 weights: {fp32_size / 1e6:.1f} MB, {fp32_size / size:.2f}x)"
        if fp32_size
        else ""
    )
    say(f"wrote {out}: {QUANTIZED_FILE} is {size / 1e6:.1f} MB on disk{fp32}")
    quantized["checkpoint_weights_bytes"] = fp32_size
    return quantized
