"""``bertforge viz``: the attention viewer, served live or written to one self-contained HTML file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import BertForgeError
from .common import positive_int


def _texts(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """TEXT and PAIR wherever they stand: argparse fills optional positionals at their first chance,
    so in ``viz CKPT --html out.html "text"`` the texts arrive as leftover arguments."""
    given = [t for t in (args.text, args.pair) if t is not None] + list(getattr(args, "overrides", []))
    options = [t for t in given if t.startswith("--")]
    if options:
        raise BertForgeError(f"unrecognized arguments: {' '.join(options)} (see bertforge viz --help)")
    if len(given) > 2:
        raise BertForgeError(
            f"bertforge viz takes at most two texts (a text and its pair), got {len(given)}; quote each text"
        )
    return (given + [None, None])[0], (given + [None, None])[1]


def cmd_viz(args: argparse.Namespace) -> None:
    args.text, args.pair = _texts(args)
    if args.html is None:
        if args.text is not None:
            raise BertForgeError(
                "TEXT is only read with --html OUT.html; to serve the page, pass the checkpoint alone "
                "and type the text in the browser"
            )
        if not 0 < args.port < 65536:
            raise BertForgeError(f"--port {args.port} is not a TCP port; pass 1-65535, e.g. 8001")
        from ..viz.attention import load_for_viz

        load_for_viz(args.checkpoint, args.tokenizer)  # a bad checkpoint: one line, before any import
        try:
            from ..viz.web import run
        except ImportError as err:
            raise BertForgeError(f"{err}") from None
        run(args.checkpoint, args.host, args.port, tokenizer=args.tokenizer, max_tokens=args.max_tokens)
        return
    if args.text is None:
        raise BertForgeError(
            '--html needs the text to show: bertforge viz CHECKPOINT --html out.html "a text"'
        )
    from ..fileio import atomic_write_text
    from ..viz.attention import attention_data, display_name, load_for_viz
    from ..viz.page import render_html

    model, tokenizer = load_for_viz(args.checkpoint, args.tokenizer)
    data = attention_data(
        model, tokenizer, args.text, args.pair, max_tokens=args.max_tokens, name=display_name(args.checkpoint)
    )
    page = render_html(data)
    atomic_write_text(args.html, page)
    print(
        f"wrote {args.html} ({len(page.encode('utf-8')) / 1024:.0f} KB): {data['length']} tokens, "
        f"{data['layers']} layers x {data['heads']} heads; open it in a browser (no server needed)",
        file=sys.stderr,
    )


def add_viz_command(sub: Any) -> None:
    p = sub.add_parser(
        "viz",
        help="look at a checkpoint's attention in the browser (head view, model view)",
        description="Serve the attention viewer for a checkpoint of any family, base or fine-tuned: type a "
        "text or a pair and see its tokens, a head view and a model view of every layer and head. "
        'With --html OUT.html "text" ["pair"], write one self-contained HTML file instead (no server, '
        "no network). Attention weights are not an explanation of a prediction.",
    )
    p.add_argument("checkpoint", help="checkpoint directory (base model or a fine-tuned head)")
    p.add_argument("text", nargs="?", default=None, help="with --html: the text to show")
    p.add_argument("pair", nargs="?", default=None, help="with --html: an optional second text (a pair)")
    p.add_argument("--html", type=Path, metavar="OUT.html", help="write a self-contained page and exit")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8001, help="port to serve on (default: %(default)s)")
    p.add_argument(
        "--max-tokens",
        type=positive_int,
        default=None,
        help="longest input shown, in tokens (default 64, at most the model's position table)",
    )
    p.add_argument("--tokenizer", help="tokenizer directory, if not the checkpoint directory")
    p.set_defaults(func=cmd_viz, accepts_overrides=True)  # the texts may follow --html (see _texts)
