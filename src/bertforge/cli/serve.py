"""`bertforge serve`: an HTTP server for a checkpoint (FastAPI on uvicorn, the ``serve`` extra)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ..errors import BertForgeError
from ..tasks.arguments import cli_arguments, flags_of
from .common import positive_int


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def cmd_serve(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from ..serve.app import create_app
    except ImportError as error:
        raise BertForgeError(
            f"bertforge serve needs FastAPI and uvicorn ({error.name} is missing); "
            "install them with pip install 'bertforge[serve]'"
        ) from None
    from ..serve.settings import ServeSettings

    settings = ServeSettings(
        max_batch_tokens=args.max_batch_tokens,
        max_wait_ms=args.max_wait_ms,
        max_concurrent_requests=args.max_concurrent_requests,
        max_request_bytes=args.max_request_bytes,
        max_batch_texts=args.max_batch_texts,
        bf16=args.bf16,
        backend=args.backend,
        device=args.device,
        batch_size=args.batch_size,
        model_name=args.model_name,
        memory_trim_interval_s=args.memory_trim_interval,
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with cli_arguments(args.cli_flags):  # messages name --flags, not ServeSettings fields
        app = create_app(args.checkpoint, settings)  # load errors print one line, before any socket opens
    service = app.state.service
    routes = ", ".join(["/embed", "/v1/embeddings", *("/" + r for r in service.routes if r != "embed")])
    print(f"serving {service.name} ({service.model_type}, task {service.task or 'none'}) on "
          f"http://{args.host}:{args.port}: {routes}, /tokenize, /health, /info, /metrics; API docs at /docs",
          flush=True)  # fmt: skip
    level = logging.getLogger().getEffectiveLevel()
    # uvicorn handles SIGTERM and SIGINT: it stops accepting connections, lets every request in
    # flight (queued ones included) finish, then runs the app's shutdown, which ends the worker.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info" if level <= logging.INFO else "warning",
        access_log=level <= logging.INFO,
        timeout_graceful_shutdown=args.graceful_timeout,
    )


def add_serve_command(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a checkpoint over HTTP (embed, classify, ner, qa, fill-mask, tokenize)",
        description="Serve a checkpoint over HTTP with dynamic batching: /embed and /v1/embeddings for "
        "every checkpoint, /classify, /ner, /qa or /fill-mask by its head, /tokenize, /health, /info, "
        "/metrics (Prometheus) and the OpenAPI page at /docs. Needs the serve extra "
        "(pip install 'bertforge[serve]').",
    )
    p.add_argument(
        "checkpoint", help="checkpoint directory (any family; with --backend onnx, a bertforge export)"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)"
    )
    p.add_argument("--port", type=int, default=8000, help="default: %(default)s")
    p.add_argument(
        "--max-batch-tokens",
        type=positive_int,
        default=16384,
        help="token budget of one batch (default: %(default)s)",
    )
    p.add_argument(
        "--max-wait-ms", type=_non_negative_float, default=5.0,
        help="how long a batch's first request waits for others (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--max-concurrent-requests", type=positive_int, default=512,
        help="requests queued or running; past it the answer is 429 (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--max-request-bytes", type=positive_int, default=2 * 1024 * 1024,
        help="largest request body; past it the answer is 413 (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--max-batch-texts", type=positive_int, default=256,
        help="most texts in one request; past it the answer is 422 (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--batch-size", type=positive_int, default=32,
        help="texts per forward pass within a batch, sorted by length (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("--bf16", action="store_true", help="bfloat16 (fast on CPUs with AMX and on GPUs)")
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="default: %(default)s")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda")
    p.add_argument("--threads", type=positive_int, help="torch threads for the model (default: torch's)")
    p.add_argument(
        "--model-name", help="name reported by /info and /v1/embeddings (default: the directory's)"
    )
    p.add_argument(
        "--memory-trim-interval", type=_non_negative_float, default=1.0, metavar="SECONDS",
        help="at most this often, hand memory freed by batches back to the OS so RSS stays flat "
        "(glibc's malloc_trim; 0: never; default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--graceful-timeout", type=_non_negative_float, default=None,
        help="on SIGTERM, seconds to let queued requests finish (default: wait for all)",
    )  # fmt: skip
    p.set_defaults(func=cmd_serve, cli_flags=flags_of(p))
