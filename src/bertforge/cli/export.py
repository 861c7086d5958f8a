"""`bertforge export CHECKPOINT --format onnx --out DIR`: an exported model for onnxruntime."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..auto import HEAD_KINDS
from ..errors import BertForgeError
from .common import positive_int


def cmd_export(args: argparse.Namespace) -> None:
    from ..export.onnx import DEFAULT_OPSET, FORMATS, QUANTIZATIONS

    if args.format not in FORMATS:
        raise BertForgeError(f"unknown --format {args.format!r}; bertforge exports to: {', '.join(FORMATS)}")
    if args.quantize is not None and args.quantize not in QUANTIZATIONS:
        raise BertForgeError(f"unknown --quantize {args.quantize!r}; choose from {', '.join(QUANTIZATIONS)}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise BertForgeError(f"--out {out} is a file; pass a directory (it is created if missing)")
    from ..export.onnx import export_onnx

    export_onnx(
        args.checkpoint,
        out,
        head=args.head,
        opset=args.opset or DEFAULT_OPSET,
        quantize=args.quantize,
        threads=args.threads,
    )


def add_export_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "export",
        help="export a checkpoint to ONNX (checked against PyTorch; optional int8)",
        description="Export a checkpoint of any family (its base model or any head) to DIR/model.onnx "
        "with dynamic batch and sequence axes, check it against PyTorch with onnxruntime on varied "
        "texts (fails above 1e-4), and copy config.json and the tokenizer files beside it. "
        "--quantize int8 adds DIR/model.int8.onnx (onnxruntime dynamic int8) with its size and "
        "agreement. Load the result with bertforge.export.onnx.OnnxModel.from_pretrained(DIR). "
        "Needs the onnx extra: pip install bertforge[onnx].",
    )
    p.add_argument("checkpoint", help="checkpoint directory (config.json + weights + tokenizer)")
    p.add_argument("--format", default="onnx", help="export format: onnx (the only one; default)")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--quantize", help="also write an int8 model: int8")
    p.add_argument(
        "--head",
        metavar="KIND",
        help=f"model to export: {', '.join(HEAD_KINDS)} (default: the checkpoint's architecture)",
    )
    p.add_argument("--opset", type=positive_int, help="ONNX opset, 14-23 (default 18)")
    p.add_argument("--threads", type=positive_int, help="onnxruntime threads for the checks")
    p.set_defaults(func=cmd_export)
