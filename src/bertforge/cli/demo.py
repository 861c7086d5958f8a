"""`bertforge demo`: the bundled pretraining demo (parse the options, call :func:`bertforge.demo.run_demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import positive_int


def cmd_demo(args: argparse.Namespace) -> None:
    from ..demo import run_demo

    run_demo(
        Path(args.out),
        budget=args.budget,
        max_steps=args.steps,
        payoff_seeds=() if args.no_payoff else (0, 1, 2),
    )


def add_demo_command(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="pretrain a small BERT on the bundled corpus (no download)",
        description="Train a WordPiece vocabulary on the bundled English and Chinese books, build the "
        "pretraining dataset, pretrain a bert-tiny with MLM + NSP (1,200 steps), compare its "
        "held-out MLM accuracy with the unigram baseline, run fill-mask, then fine-tune it and its "
        "random-init twin on a labelled task from text it never saw (which book is a sentence from) to "
        "show what the pretraining bought; model, metrics and plot are saved.",
    )
    p.add_argument(
        "--out", default="bertforge-demo", help="directory for the demo's outputs (default: %(default)s)"
    )
    length = p.add_mutually_exclusive_group()
    length.add_argument(
        "--steps",
        type=positive_int,
        help="pretraining steps (default: 1200, enough to pay off in the last step)",
    )
    length.add_argument(
        "--budget", help="pretrain for a wall-clock budget instead of a step count, e.g. 90s, 3m, 1h"
    )
    p.add_argument(
        "--no-payoff",
        action="store_true",
        help="skip the last step, the fine-tuning comparison with the random-init twin",
    )
    p.set_defaults(func=cmd_demo)
