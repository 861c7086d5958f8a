"""`bertforge data build`, `data info` and `pretrain`: parse the options, call the library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..tasks.arguments import cli_arguments, flags_of
from .common import Parser, positive_int


# --------------------------------------------------------------------------------------- data
def cmd_data_build(args: argparse.Namespace) -> None:
    from ..data.build import build_dataset
    from ..tokenization import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)  # any family: WordPiece, byte-level BPE, Unigram
    with cli_arguments(args.cli_flags):  # messages name --flags, not Python arguments
        summary = build_dataset(
            args.corpus,
            tokenizer,
            args.out,
            workers=args.workers,
            seed=args.seed,
            eval_fraction=args.eval_fraction,
            format=args.format,
            errors=args.errors,
            shard_tokens=args.shard_tokens,
            overwrite=args.overwrite,
            progress=sys.stderr.isatty() and not args.quiet,
        )
    for line in summary.lines():
        print(line)


def cmd_data_info(args: argparse.Namespace) -> None:
    from ..data.dataset import describe_dataset, read_manifest

    if args.json:
        print(json.dumps(read_manifest(args.dataset), ensure_ascii=False, indent=2))
        return
    for line in describe_dataset(args.dataset):
        print(line)


def add_data_commands(sub: Any) -> None:
    from ..data.build import DEFAULT_SHARD_TOKENS
    from ..data.corpus import FORMATS

    group = sub.add_parser(
        "data", help="build and inspect tokenised pretraining datasets", description="Pretraining data."
    )
    data_sub = group.add_subparsers(
        dest="data_command", required=True, parser_class=Parser, metavar="COMMAND"
    )
    p = data_sub.add_parser(
        "build",
        help="tokenise raw text into a sharded pretraining dataset",
        description="Read raw text (BERT sentence-per-line files, books, JSONL; files, directories, globs, "
        ".gz), split it into sentences, tokenise it in parallel and write numpy shards plus manifest.json.",
    )
    p.add_argument("--corpus", nargs="+", required=True, help="text files, directories or globs")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory (vocab.txt / tokenizer.json)")
    p.add_argument("--out", required=True, type=Path, help="dataset directory to create")
    p.add_argument("--workers", type=positive_int, default=1, help="tokenising processes (default 1)")
    p.add_argument("--seed", type=int, default=0, help="decides the eval split (default 0)")
    p.add_argument("--eval-fraction", type=float, default=0.01, help="documents held out (default 0.01)")
    p.add_argument("--format", choices=FORMATS, default="auto", help="corpus format (default: per file)")
    p.add_argument(
        "--errors",
        choices=("replace", "strict"),
        default="replace",
        help="undecodable bytes: replace by U+FFFD and count them (default), or refuse the file",
    )
    p.add_argument(
        "--shard-tokens", type=positive_int, default=DEFAULT_SHARD_TOKENS, help="tokens per shard file"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already at --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_data_build, cli_flags=flags_of(p))

    p = data_sub.add_parser("info", help="summarise a dataset's manifest", description="Summarise a dataset.")
    p.add_argument("dataset", help="dataset directory")
    p.add_argument("--json", action="store_true", help="print the whole manifest")
    p.set_defaults(func=cmd_data_info)


# ----------------------------------------------------------------------------------- pretrain
def cmd_pretrain(args: argparse.Namespace) -> None:
    from ..train.pretrain import pretrain
    from ..train.recipe import load_recipe, parse_overrides

    overrides = parse_overrides(args.overrides)
    if args.budget is not None:
        overrides["train.budget"] = args.budget
    if args.out is not None:
        overrides["output_dir"] = str(args.out)
    config = load_recipe(args.config, overrides)
    result = pretrain(config, resume=args.resume, progress=sys.stderr.isatty())
    if result.rank != 0:  # under torchrun, rank 0 reports for all
        return
    if result.stopped == "signal":
        print(f"interrupted at step {result.steps}; saved {result.checkpoint}; continue with --resume")
        return
    loss = f"{result.train_loss:.4f}" if result.train_loss is not None else "n/a"
    print(
        f"trained {result.steps} steps ({result.stopped}); last loss {loss}, "
        f"{result.tokens_per_second:,.0f} tokens/s"
    )
    if result.eval:
        print("eval: " + ", ".join(f"{k.removeprefix('eval_')} {v:.4f}" for k, v in result.eval.items()))
    print(f"model: {result.model_dir}; metrics: {result.metrics_path}")


def add_pretrain_command(sub: Any) -> None:
    p = sub.add_parser(
        "pretrain",
        help="pretrain a BERT on a dataset built by `bertforge data build`",
        description="Pretrain a BERT from a TOML recipe (see recipes/). Any recipe key can be overridden "
        "with --section.key VALUE, e.g. --optim.lr 1e-4 --train.max_steps 1000 --data.dataset DIR. "
        "Checkpoints, metrics.jsonl and the final model (OUT/model) go to output_dir.",
        allow_abbrev=False,
    )
    p.add_argument(
        "--config", type=Path, help="TOML recipe (default: the built-in defaults, bert-mini for one epoch)"
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="PATH",
        help="continue from the newest checkpoint in output_dir, or from PATH (a checkpoint or output dir)",
    )
    p.add_argument("--budget", help="wall-clock budget, e.g. 2h, 90m (same as --train.budget)")
    p.add_argument("--out", type=Path, help="output directory (same as --output_dir)")
    p.set_defaults(func=cmd_pretrain, accepts_overrides=True)
