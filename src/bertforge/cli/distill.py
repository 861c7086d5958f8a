"""`bertforge distill`: a small student learns a fine-tuned teacher's task (parse, call the library, print)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..tasks.arguments import cli_arguments, flags_of
from ..tasks.registry import task_names
from .common import int_list
from .tasks import add_training_arguments, check_seed_flags, config_options, run_summary, seeds_summary


def cmd_distill(args: argparse.Namespace) -> None:
    with cli_arguments(args.cli_flags):  # messages name --flags, not Python arguments
        _distill(args)


def _distill(args: argparse.Namespace) -> None:
    from ..train.distill_config import DistillConfig
    from ..train.distill_plan import teacher_task
    from ..train.distill_task import distill

    check_seed_flags(args)
    options = config_options(args, DistillConfig)
    options.setdefault("task", teacher_task(args.teacher))
    options.setdefault("model", "")
    result = distill(DistillConfig(**options), progress=sys.stderr.isatty(), table=True)
    summary = seeds_summary(result.seeds) if result.seeds is not None else run_summary(result.run)
    summary["teacher_dev"] = result.teacher_metrics
    main, best = result.run.main_metric, result.run.best_value
    if best is not None and result.teacher_metrics.get(main):
        summary["retained"] = round(best / float(result.teacher_metrics[main]), 4)
    if result.intermediate:
        summary["intermediate_loss"] = {
            str(seed): {"first": losses[0], "last": losses[-1], "steps": len(losses)}
            for seed, losses in result.intermediate.items()
        }
    print(json.dumps(summary, ensure_ascii=False))


def add_distill_command(sub: Any) -> None:
    p = sub.add_parser(
        "distill",
        help="distil a fine-tuned teacher into a smaller student on the teacher's task",
        description="Train a small student (a preset, a smaller checkpoint with the teacher's vocabulary, "
        "or the teacher cut to --student-layers) on a task file with the loss alpha * the teacher's soft "
        "targets at --temperature T (KL x T^2; MSE for regression) + (1 - alpha) * the gold labels, "
        "optionally after TinyBERT's hidden-state and attention stage (--intermediate-epochs). --transfer "
        "adds unlabelled in-domain examples that learn the soft targets alone. Takes "
        "finetune's data and training flags; the best student on --dev is saved to --out as a normal "
        "checkpoint.",
    )
    p.add_argument(
        "--teacher",
        required=True,
        metavar="FINETUNED_DIR",
        help="fine-tuned checkpoint directory (any family, any task)",
    )
    p.add_argument(
        "--student",
        dest="model",
        metavar="PRESET_OR_DIR",
        help="preset (bert-mini, distilbert-L4-H256, ...) or checkpoint directory sharing the teacher's "
        "vocabulary; omit it with --student-layers to cut the teacher",
    )
    p.add_argument("--task", choices=task_names(), help="default: the teacher's")
    p.add_argument("--train", required=True, help="labelled training file, in the format finetune reads")
    p.add_argument(
        "--dev", help="dev file, evaluated every epoch (or --eval-steps); the best student is kept"
    )
    p.add_argument(
        "--transfer",
        action="append",
        metavar="FILE",
        help="unlabelled in-domain examples (repeatable) that learn the teacher's soft targets alone; in "
        "the task's format (labels, if any, ignored), or one a line with --transfer-format lines",
    )
    p.add_argument(
        "--transfer-format",
        choices=("task", "lines"),
        help="task: the task's file format (default); lines: plain text, one example a line (a text for "
        "classification/regression, a sentence of whitespace-split words for NER)",
    )
    p.add_argument("--out", required=True, help="output directory: the distilled checkpoint")
    p.add_argument("--alpha", type=float, help="weight of the soft targets, 1 - alpha on the labels (0.5)")
    p.add_argument("--temperature", type=float, help="softmax temperature of the soft targets (2)")
    p.add_argument(
        "--intermediate-epochs",
        type=float,
        help="epochs of the hidden-state and attention stage before the prediction stage (default 0)",
    )
    p.add_argument(
        "--student-layers",
        type=int_list,
        help="teacher layers (0-based) that start the student's, e.g. 0,2,4 (default: spread evenly "
        "when the student's layers are shaped like the teacher's)",
    )
    p.add_argument(
        "--layer-map",
        type=int_list,
        help="intermediate stage: the teacher layer (0-based) each student layer learns from "
        "(default uniform: 6 -> 3 layers is 1,3,5)",
    )
    p.add_argument(
        "--teacher-dtype",
        choices=("auto", "bf16", "fp32"),
        help="the teacher's precision (default auto: bf16 on AMX CPUs and GPUs)",
    )
    add_training_arguments(p)
    p.set_defaults(func=cmd_distill, cli_flags=flags_of(p))
