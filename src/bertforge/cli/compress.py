"""`bertforge quantize` and `bertforge prune`: smaller, faster models from a checkpoint."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..tasks.arguments import cli_arguments, flags_of
from ..tasks.registry import task_names
from .common import positive_int
from .tasks import _add_reader_arguments


def cmd_quantize(args: argparse.Namespace) -> None:
    from ..export.onnx import require_onnx
    from ..export.quantize import quantize_checkpoint

    require_onnx()  # the onnx extra missing: one line naming it
    quantize_checkpoint(args.checkpoint, args.out, threads=args.threads)


def cmd_prune(args: argparse.Namespace) -> None:
    with cli_arguments(args.cli_flags):  # messages name --flags, not Python arguments
        from ..train.prune import PruneConfig, prune_checkpoint

        options = {k: v for k, v in vars(args).items() if k in PruneConfig.__dataclass_fields__}
        result = prune_checkpoint(PruneConfig(**{k: v for k, v in options.items() if v is not None}))
    summary: dict[str, Any] = {
        "out": str(result.out),
        "main_metric": result.main_metric,
        "unpruned": result.unpruned_metric,
        "pruned": result.pruned_metric,
        "finetuned": result.finetuned_metric,
        "heads_pruned": result.heads_pruned,
        "heads_total": result.heads_total,
        "parameters": [result.parameters_before, result.parameters_after],
        "stopped": result.stopped,
    }
    print(json.dumps(summary, ensure_ascii=False))


def add_compress_commands(sub: Any) -> None:
    p = sub.add_parser(
        "quantize",
        help="int8 model for CPU inference (onnxruntime dynamic quantisation)",
        description="Export CHECKPOINT to ONNX (checked against PyTorch), quantise it with onnxruntime's "
        "dynamic int8 (int8 weights per output channel, activations quantised at run time) and write "
        "DIR/model.int8.onnx with config.json, the tokenizer and export_report.json (agreement with "
        "PyTorch). evaluate, predict, embed and serve --backend onnx take DIR as it is. Needs the onnx "
        "extra: pip install bertforge[onnx].",
    )
    p.add_argument("checkpoint", help="checkpoint directory (any family, any head; fp32)")
    p.add_argument("--out", required=True, help="output directory (written atomically)")
    p.add_argument("--threads", type=positive_int, help="onnxruntime threads for the checks")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser(
        "prune",
        help="remove the least important attention heads of a fine-tuned checkpoint",
        description="Score every attention head by the gradient of the dev loss with respect to a gate "
        "on it (Michel et al. 2019), remove the least important 10%% of the remaining heads, re-evaluate "
        "on --dev, and repeat until --target of the heads are gone or the task's main metric would fall "
        "below --min-metric-ratio of the unpruned model's (the last good state is kept). The heads are "
        "removed physically and listed in config.json as pruned_heads. BERT, RoBERTa and DistilBERT.",
    )
    p.add_argument("checkpoint", help="fine-tuned checkpoint directory (with a task head)")
    p.add_argument("--dev", required=True, help="labelled dev file, in the format finetune reads")
    p.add_argument("--out", required=True, help="output directory (written atomically)")
    p.add_argument("--target", type=float, help="share of all heads to remove, in (0, 1) (default 0.4)")
    p.add_argument(
        "--min-metric-ratio",
        type=float,
        help="stop before the dev metric falls below this share of the unpruned model's (default 0.9)",
    )
    p.add_argument("--task", choices=task_names(), help="default: from the checkpoint's config.json")
    _add_reader_arguments(p)
    p.add_argument("--dev-limit", type=positive_int, help="use only the first N dev examples")
    p.add_argument("--batch-size", type=positive_int, help="default 32")
    p.add_argument("--finetune-epochs", type=float, help="fine-tune the pruned model for N epochs on --train")
    p.add_argument("--train", help="training file for --finetune-epochs")
    p.add_argument("--lr", type=float, help="fine-tuning learning rate (default 5e-5)")
    p.add_argument("--seed", type=int, help="fine-tuning seed (default 42)")
    p.set_defaults(func=cmd_prune, cli_flags=flags_of(p))
