"""`bertforge finetune`, `evaluate` and `predict`: parse the task options, call the library."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from ..tasks.arguments import cli_arguments, flags_of
from ..tasks.registry import task_names
from .common import output_file, positive_int, seed_list

# ----------------------------------------------------------------- finetune, evaluate, predict


def _column(text: str) -> str | int:
    """A column by name, or by 0-based index when the value is a number."""
    return int(text) if text.isdigit() else text


def _reader_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "text_column": args.text_column,
        "pair_column": args.pair_column,
        "label_column": args.label_column,
        "on_error": args.on_error,
    }


def _add_reader_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--text-column", type=_column, help="text column (name or 0-based index); default: guessed"
    )
    p.add_argument("--pair-column", type=_column, help="second-segment column for pair tasks")
    p.add_argument("--label-column", type=_column, help="label column; default: guessed (label, score, ...)")
    p.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="malformed rows: stop (default) or skip",
    )


def cmd_finetune(args: argparse.Namespace) -> None:
    with cli_arguments(args.cli_flags):  # messages name --flags, not Python arguments
        _finetune(args)


def config_options(args: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The parsed flags that are fields of ``config_class`` and were given (None: the default)."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    return {k: v for k, v in vars(args).items() if k in fields and v is not None}


def check_seed_flags(args: argparse.Namespace) -> None:
    from ..errors import BertForgeError

    if args.seeds is not None and args.seed is not None:
        raise BertForgeError("pass --seed or --seeds, not both")
    if args.keep_all and args.seeds is None:
        raise BertForgeError("--keep-all keeps every seed's model; it needs --seeds")


def seeds_summary(runs: Any) -> dict[str, Any]:
    """What finetune (and distill) print for a set of seeds; the skipped rows go to stderr."""
    for message in runs.runs[0].skipped:
        print(f"skipped {message}", file=sys.stderr)
    return {
        "out": str(runs.out),
        "summary": str(runs.out / "summary.json"),
        "main_metric": runs.main_metric,
        "seeds": runs.seeds,
        "best_seed": runs.best_seed,
        "mean": runs.mean,
        "std": runs.std,
    }


def run_summary(result: Any) -> dict[str, Any]:
    """What finetune (and distill) print for one run; the skipped rows go to stderr."""
    for message in result.skipped:
        print(f"skipped {message}", file=sys.stderr)
    return {
        "out": str(result.out),
        "main_metric": result.main_metric,
        "best": result.best_value,
        "best_step": result.best_step,
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 2),
        "train_examples_per_second": round(result.train_examples_per_second, 2),
        "dev": result.best_metrics,
    }


def _finetune(args: argparse.Namespace) -> None:
    from ..train.finetune import finetune
    from ..train.finetune_config import FinetuneConfig
    from ..train.seeds import finetune_seeds

    check_seed_flags(args)
    config = FinetuneConfig(**config_options(args, FinetuneConfig))
    if config.seeds is not None:
        runs = finetune_seeds(config, progress=sys.stderr.isatty(), table=True)
        print(json.dumps(seeds_summary(runs), ensure_ascii=False))
        return
    result = finetune(config, progress=sys.stderr.isatty())
    print(json.dumps(run_summary(result), ensure_ascii=False))


def _inference_overrides(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    return {
        "max_length": args.max_length,
        "stride": args.stride,
        "batch_size": args.batch_size,
        "dtype": torch.bfloat16 if args.bf16 else None,
    }


def cmd_evaluate(args: argparse.Namespace) -> None:
    with cli_arguments(args.cli_flags):
        _evaluate(args)


def _evaluate(args: argparse.Namespace) -> None:
    from ..fileio import atomic_write_json
    from ..pipelines.evaluation import run_on_file

    metrics, _, skipped = run_on_file(
        args.model,
        args.file,
        task=args.task,
        reader_options=_reader_options(args),
        limit=args.limit,
        **_inference_overrides(args),
    )
    for message in skipped:
        print(f"skipped {message}", file=sys.stderr)
    print(json.dumps(metrics, ensure_ascii=False))
    if args.output:
        atomic_write_json(args.output, metrics)


def cmd_predict(args: argparse.Namespace) -> None:
    with cli_arguments(args.cli_flags):
        _predict(args)


def _predict(args: argparse.Namespace) -> None:
    from ..fileio import atomic_open
    from ..pipelines.evaluation import run_on_file

    _, predictions, skipped = run_on_file(
        args.model,
        args.file,
        task=args.task,
        labelled=False,
        reader_options=_reader_options(args),
        limit=args.limit,
        **_inference_overrides(args),
    )
    for message in skipped:
        print(f"skipped {message}", file=sys.stderr)
    lines = (json.dumps(p, ensure_ascii=False) + "\n" for p in predictions)
    if args.output:
        with atomic_open(args.output, "w") as handle:
            handle.writelines(lines)
        print(f"wrote {len(predictions)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.writelines(lines)


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """The reading, encoding, optimisation and running flags of finetune; distill takes them too."""
    _add_reader_arguments(p)
    p.add_argument("--train-limit", type=positive_int, help="use only the first N training examples")
    p.add_argument("--dev-limit", type=positive_int, help="use only the first N dev examples")
    p.add_argument("--epochs", type=float, help="default 3")
    p.add_argument("--batch-size", type=positive_int, help="default 32")
    p.add_argument("--lr", type=float, help="peak learning rate (default 5e-5)")
    p.add_argument("--weight-decay", type=float, help="default 0.01 (not on biases and LayerNorm)")
    p.add_argument("--warmup", type=float, help="warm-up fraction (< 1) or steps (default 0.1)")
    p.add_argument("--max-grad-norm", type=float, help="gradient clipping (default 1.0; 0 disables)")
    p.add_argument("--dropout", type=float, help="hidden and attention dropout (default: the checkpoint's)")
    p.add_argument("--max-seq-length", type=positive_int, help="default 128 (384 for qa)")
    p.add_argument("--doc-stride", type=positive_int, help="qa: tokens shared by context windows (128)")
    p.add_argument("--max-query-length", type=positive_int, help="qa: question tokens kept (64)")
    p.add_argument("--window-stride", type=int, help="ner: tokens shared by windows of long sentences (32)")
    p.add_argument("--label-all-subwords", action="store_true", default=None, help="ner: tag every sub-word")
    p.add_argument("--seed", type=int, help="default 42")
    p.add_argument(
        "--seeds",
        type=seed_list,
        help="one run per seed, e.g. 0,1,2 (or 0-4): OUT/seed-N/metrics.jsonl, OUT/summary.json with "
        "mean ± std of every dev metric, the best seed's model in OUT",
    )
    p.add_argument(
        "--keep-all",
        action="store_true",
        default=None,
        help="with --seeds: keep every seed's model in OUT/seed-N/ (default: the best one only)",
    )
    p.add_argument(
        "--bf16", action="store_true", default=None, help="bfloat16 autocast (fast on AMX CPUs, GPUs)"
    )
    p.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        default=None,
        help="keep only each layer's input for the backward and recompute the rest: far less memory "
        "on long sequences for about a third more compute",
    )
    p.add_argument(
        "--group-by-length",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="batches of similar lengths (less padding, faster, but they cost accuracy on short "
        "fine-tunes) instead of random batches (the default)",
    )
    p.add_argument("--eval-steps", type=positive_int, help="evaluate every N steps (default: every epoch)")
    p.add_argument("--eval-batch-size", type=positive_int)
    p.add_argument("--patience", type=positive_int, help="stop after N evaluations without improvement")
    p.add_argument("--device", help="cpu (default) or cuda")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="PATH",
        help="continue an interrupted run from the newest complete checkpoint in --out (or PATH)",
    )
    p.add_argument(
        "--save-steps", type=positive_int, help="checkpoint every N steps too (default: each epoch end)"
    )
    p.add_argument(
        "--keep-checkpoints", type=int, help="checkpoints kept while training (default 1; 0: none)"
    )


def add_task_commands(sub: Any) -> None:
    choices = task_names()
    p = sub.add_parser(
        "finetune",
        help=f"fine-tune a checkpoint on a task file ({', '.join(choices)})",
        description="Fine-tune a BERT, RoBERTa, ALBERT or DistilBERT checkpoint with BERT's recipe (AdamW, 10%% warm-up + linear decay, "
        "3 epochs, batch 32, lr 5e-5, max length 128 / 384 for QA). The best model on --dev "
        "(by accuracy, pearson or F1) is saved to --out as a normal checkpoint.",
    )
    p.add_argument("--task", required=True, choices=choices)
    p.add_argument("--model", required=True, help="pretrained checkpoint directory (any supported family)")
    p.add_argument("--train", required=True, help="training file (CSV/TSV/JSONL, CoNLL, SQuAD JSON, SWAG)")
    p.add_argument("--dev", help="dev file, evaluated every epoch (or --eval-steps); the best model is kept")
    p.add_argument("--out", required=True, help="output directory: the fine-tuned checkpoint")
    p.add_argument("--tokenizer", help="tokenizer directory, if not the model directory")
    add_training_arguments(p)
    p.set_defaults(func=cmd_finetune, cli_flags=flags_of(p))

    for name, helptext in (
        ("evaluate", "metrics of a fine-tuned checkpoint on a labelled task file (JSON on stdout)"),
        ("predict", "predictions of a fine-tuned checkpoint on a task file (JSONL)"),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        p.add_argument("model", help="fine-tuned checkpoint directory")
        p.add_argument("file", help="task file in the format finetune reads")
        p.add_argument("--task", choices=choices, help="default: from the checkpoint's config.json")
        _add_reader_arguments(p)
        p.add_argument(
            "--output",
            type=output_file,
            help="also write the metrics JSON" if name == "evaluate" else "JSONL file",
        )
        p.add_argument("--max-length", type=positive_int, help="window length (default: as fine-tuned)")
        p.add_argument("--stride", type=int, help="tokens shared by windows (default: as fine-tuned)")
        p.add_argument("--batch-size", type=positive_int)
        p.add_argument("--limit", type=positive_int, help="only the first N examples")
        p.add_argument(
            "--bf16",
            action="store_true",
            help="bfloat16 matmuls, the weights converted once (fast on AMX CPUs and GPUs)",
        )
        p.set_defaults(func=cmd_evaluate if name == "evaluate" else cmd_predict, cli_flags=flags_of(p))
