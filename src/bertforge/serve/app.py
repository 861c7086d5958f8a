"""The HTTP application: FastAPI routes over a :class:`~.runners.ModelService` and a
:class:`~.batcher.Batcher`.

``create_app(checkpoint, settings)`` loads the checkpoint (errors surface here, before a server
starts), registers the routes it can answer, and starts the batch worker with the app (lifespan).
Handlers validate, submit a job and await its future; the worker thread runs the model, so the
event loop never blocks on it. Errors are JSON ``{"error": ..., "error_type": ...}``:
413 (body over ``max_request_bytes``), 422 (malformed JSON, wrong types, empty or too many texts,
an input the pipeline refuses), 429 with Retry-After (queue full), 503 (shutting down).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import BertForgeError
from . import schemas
from .batcher import Batcher, Job, QueueFull
from .metrics import CONTENT_TYPE, ServerMetrics
from .runners import ModelService, load_service
from .settings import ServeSettings

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

ERROR_TYPES = {413: "too_large", 422: "validation", 429: "overloaded", 503: "unavailable"}


class ApiError(Exception):
    """An answer other than 200: status, message and headers (Retry-After for 429)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "internal" if status >= 500 else "client")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": message, "error_type": error_type(status)}, status_code=status, headers=headers
    )


class LimitsAndMetrics:
    """ASGI middleware: refuse a body over ``max_bytes`` with 413 before anything parses it (by its
    Content-Length, or while reading a chunked one), and count every answer in the metrics."""

    def __init__(self, app: ASGIApp, max_bytes: int, metrics: ServerMetrics, routes: set[str]) -> None:
        self.app, self.max_bytes, self.metrics, self.routes = app, max_bytes, metrics, routes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        route = scope["path"] if scope["path"] in self.routes else "other"  # bounded label values
        status = [500]

        async def send_counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            body = await self._read_body(scope, receive)
            if body is None:
                too_large = error_response(
                    413, f"request body is larger than {self.max_bytes} bytes (--max-request-bytes); "
                    "send fewer or shorter texts per request",
                )  # fmt: skip
                await too_large(scope, receive, send_counting)
                return
            if scope["method"] == "POST":
                # The body is JSON whatever the client called it (curl -d sends a form type).
                headers = [(k, v) for k, v in scope.get("headers", ()) if k != b"content-type"]
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
            replayed = [False]

            async def replay() -> Message:
                if not replayed[0]:
                    replayed[0] = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()  # after the body: wait for the disconnect

            await self.app(scope, replay, send_counting)
        finally:
            kind = error_type(status[0]) if status[0] >= 400 else None
            self.metrics.request(route, status[0], time.perf_counter() - start, kind)

    async def _read_body(self, scope: Scope, receive: Any) -> bytes | None:
        """The whole body, or None when it is over the limit."""
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                with contextlib.suppress(ValueError):
                    if int(value) > self.max_bytes:
                        return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _describe(errors: list[dict[str, Any]]) -> str:
    """One readable line from pydantic's errors: the field, what it must be, what is wrong."""
    messages: list[str] = []
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", error.get("msg", ""))
            return f"the body is not valid JSON ({reason}); send a JSON object"
        loc = [p for p in error.get("loc", ()) if p != "body"]
        if len(loc) >= 2 and loc[1] in ("str", "list[str]"):  # a text-or-texts field
            field = str(loc[0])
            if loc[1] == "list[str]" and len(loc) > 2:
                message = f"{field}[{loc[2]}] must be a string, got {type(error.get('input')).__name__}"
            elif loc[1] == "list[str]":
                message = (
                    f"{field} must be a string or a list of strings, got {type(error.get('input')).__name__}"
                )
            else:
                continue  # the str branch's error repeats the list branch's
        elif not loc and error.get("type") == "model_attributes_type":
            message = "the body must be a JSON object with the route's fields (see /docs)"
        else:
            where = ".".join(str(p) for p in loc)
            message = (
                f"{where}: {error.get('msg', 'invalid value')}"
                if where
                else error.get("msg", "invalid value")
            )
        if message not in messages:
            messages.append(message)
    return "; ".join(messages[:5]) or "invalid request"


def create_app(checkpoint: str | os.PathLike[str], settings: ServeSettings | None = None) -> FastAPI:
    """The application serving ``checkpoint`` (a directory of any supported family; with
    ``settings.backend == "onnx"`` a ``bertforge export`` directory)."""
    settings = settings or ServeSettings()
    service = load_service(checkpoint, settings)
    batcher: Batcher

    def on_batch(kind: str, jobs: int, items: int, tokens: int, seconds: float) -> None:
        metrics.batch(f"/{kind}", jobs, items, tokens, seconds)

    metrics = ServerMetrics(queue_size=lambda: batcher.queue_size, pending=lambda: batcher.pending)
    batcher = Batcher(
        service.runners,
        service.count_tokens,
        max_batch_tokens=settings.max_batch_tokens,
        max_wait_s=settings.max_wait_ms / 1000,
        max_pending=settings.max_concurrent_requests,
        on_batch=on_batch,
        trim_interval_s=settings.memory_trim_interval_s or None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        # uvicorn has let every in-flight request finish (SIGTERM's graceful shutdown); the worker
        # ends once the queue is empty.
        await run_in_threadpool(batcher.stop)

    app = FastAPI(
        title="bertforge serve",
        version=__version__,
        summary=f"{service.name}: {', '.join('/' + r for r in service.routes)}",
        description="BERT inference with dynamic batching. Errors are JSON "
        '`{"error": message, "error_type": kind}`: 413 body too large, 422 invalid input, '
        "429 queue full (retry after Retry-After seconds).",
        lifespan=lifespan,
    )
    app.state.service, app.state.batcher = service, batcher
    app.state.metrics, app.state.settings = metrics, settings

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, _describe(list(error.errors())))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message, error.headers)

    # --------------------------------------------------------------------------------- helpers
    def texts_of(value: str | list[str], name: str = "inputs") -> list[str]:
        texts = [value] if isinstance(value, str) else list(value)
        if not texts:
            raise ApiError(422, f"{name} is an empty list; send at least one text")
        if len(texts) > settings.max_batch_texts:
            raise ApiError(
                422, f"{name} has {len(texts)} texts, over the limit of {settings.max_batch_texts} "
                "(--max-batch-texts); split the request",
            )  # fmt: skip
        for i, text in enumerate(texts):
            if not text.strip():
                where = name if isinstance(value, str) else f"{name}[{i}]"
                raise ApiError(422, f"{where} is empty; every text needs at least one non-space character")
        return texts

    async def run(kind: str, items: list[Any]) -> tuple[list[Any], int]:
        """Queue one job and wait for its results (and its token count)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[list[Any], int]] = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if future.done():  # the client went away
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result((result, job.tokens or 0))

        def done(result: Any, error: BaseException | None) -> None:  # from the worker thread
            loop.call_soon_threadsafe(settle, result, error)

        job = Job(kind, items, done)
        try:
            batcher.submit(job)
        except QueueFull as full:
            raise ApiError(
                429, f"the server is busy: {full} (--max-concurrent-requests "
                f"{settings.max_concurrent_requests}); retry later",
                headers={"Retry-After": "1"},
            ) from None  # fmt: skip
        try:
            return await future
        except asyncio.CancelledError:
            job.cancelled = True
            raise
        except BertForgeError as error:
            raise ApiError(422, str(error)) from None
        except Exception as error:
            raise ApiError(
                500, f"the model failed on this request: {type(error).__name__}: {error}"
            ) from None

    def json_response(data: Any) -> Response:
        # Plain json: FastAPI's encoder walks every float of every vector (slow for embeddings).
        return Response(json.dumps(data, ensure_ascii=False), media_type="application/json")

    errors = {
        413: {"model": schemas.ErrorResponse, "description": "body over --max-request-bytes"},
        422: {"model": schemas.ErrorResponse, "description": "invalid input"},
        429: {"model": schemas.ErrorResponse, "description": "queue full; retry after Retry-After seconds"},
    }

    def documented(model: type) -> dict[Any, Any]:
        return {200: {"model": model}, **errors}

    # --------------------------------------------------------------------------------- routes
    @app.post("/embed", responses=documented(schemas.EmbedResponse), tags=["embeddings"])
    async def embed(request: schemas.EmbedRequest) -> Response:
        """Sentence embeddings with the checkpoint's pooling (and normalisation)."""
        vectors, _ = await run("embed", texts_of(request.inputs))
        return json_response({"model": service.name, "dimensions": len(vectors[0]), "embeddings": vectors})

    @app.post("/v1/embeddings", responses=documented(schemas.OpenAIEmbeddingsResponse), tags=["embeddings"])
    async def openai_embeddings(request: schemas.OpenAIEmbeddingsRequest) -> Response:
        """OpenAI-compatible embeddings (``openai.embeddings.create(base_url=...)`` works)."""
        vectors, tokens = await run("embed", texts_of(request.input, "input"))
        if request.encoding_format == "base64":
            encoded: list[Any] = [
                base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode("ascii") for v in vectors
            ]
        else:
            encoded = vectors
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(encoded)]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return json_response(
            {"object": "list", "data": data, "model": request.model or service.name, "usage": usage}
        )

    if "classify" in service.runners:

        @app.post("/classify", responses=documented(schemas.ClassifyResponse), tags=["tasks"])
        async def classify(request: schemas.ClassifyRequest) -> Response:
            """Labels with probabilities (regression: one ``value``); long texts in windows."""
            texts = texts_of(request.inputs)
            pairs: list[str | None] = [None] * len(texts)
            if request.pairs is not None:
                pairs = list(texts_of(request.pairs, "pairs"))
                if len(pairs) != len(texts):
                    raise ApiError(
                        422, f"{len(texts)} inputs but {len(pairs)} pairs; send one pair per input"
                    )
            results, _ = await run("classify", list(zip(texts, pairs, strict=True)))
            return json_response({"results": [row[: request.top_k] for row in results]})

    if "ner" in service.runners:

        @app.post("/ner", responses=documented(schemas.NerResponse), tags=["tasks"])
        async def ner(request: schemas.NerRequest) -> Response:
            """Entities with type, text, character span [start, end) and score."""
            results, _ = await run("ner", texts_of(request.inputs))
            return json_response({"results": results})

    if "qa" in service.runners:

        @app.post("/qa", responses=documented(schemas.QAResponse), tags=["tasks"])
        async def qa(request: schemas.QARequest) -> Response:
            """Extractive answers; long contexts in sliding windows."""
            questions = texts_of(request.question, "question")
            contexts = texts_of(request.context, "context")
            if len(questions) != len(contexts):
                raise ApiError(
                    422, f"{len(questions)} questions but {len(contexts)} contexts; send one per question"
                )
            results, _ = await run("qa", list(zip(questions, contexts, strict=True)))
            for result in results:
                result["n_best"] = result["n_best"][: request.top_k]
            return json_response({"results": results})

    if "fill-mask" in service.runners:

        @app.post("/fill-mask", responses=documented(schemas.FillMaskResponse), tags=["tasks"])
        async def fill_mask(request: schemas.FillMaskRequest) -> Response:
            """The most likely tokens behind every [MASK] / <mask>."""
            texts = texts_of(request.inputs)
            results, _ = await run("fill-mask", [(text, request.top_k) for text in texts])
            return json_response({"results": results})

    @app.post("/tokenize", responses=documented(schemas.TokenizeResponse), tags=["tokens"])
    async def tokenize(request: schemas.TokenizeRequest) -> Response:
        """Tokens, ids, segment ids and character offsets (no model: not queued)."""
        texts = texts_of(request.inputs)
        pairs: list[str | None] = [None] * len(texts)
        if request.pairs is not None:
            pairs = list(texts_of(request.pairs, "pairs"))
            if len(pairs) != len(texts):
                raise ApiError(422, f"{len(texts)} inputs but {len(pairs)} pairs; send one pair per input")

        def encode() -> list[dict[str, Any]]:
            out = []
            for text, pair in zip(texts, pairs, strict=True):
                encoding = service.tokenizer(
                    text, pair, return_offsets_mapping=True, return_token_type_ids=True,
                    add_special_tokens=request.add_special_tokens,
                )  # fmt: skip
                ids = list(encoding["input_ids"])
                out.append({
                    "tokens": service.tokenizer.convert_ids_to_tokens(ids),
                    "input_ids": ids,
                    "token_type_ids": list(encoding["token_type_ids"]),
                    "offsets": [list(o) for o in encoding["offset_mapping"]],
                })  # fmt: skip
            return out

        return json_response({"results": await run_in_threadpool(encode)})

    @app.get("/health", response_model=schemas.HealthResponse, tags=["server"])
    async def health() -> Any:
        """200 while the worker runs."""
        if not batcher.alive:
            raise ApiError(503, "the batch worker is not running")
        return {"status": "ok"}

    @app.get("/info", tags=["server"])
    async def info() -> Any:
        """The model, its task and labels, the routes and the limits."""
        config = service.model.config
        embedder = service.embedder
        window = service.inference
        return {
            "model": service.name,
            "path": str(service.path),
            "version": __version__,
            "model_type": service.model_type,
            "architectures": config.extra.get("architectures", []) if hasattr(config, "extra") else [],
            "head": service.head_kind,
            "task": service.task,
            "labels": service.labels,
            "routes": sorted(app_routes),
            "embedding": {
                "dimensions": config.hidden_size,
                "pooling": embedder.pooling,
                "normalize": embedder.normalize,
                "max_length": embedder.max_length,
            },
            "windows": {"max_length": window.max_length, "stride": window.stride} if window else None,
            "backend": settings.backend,
            "device": settings.device,
            "dtype": "bfloat16" if settings.bf16 else "float32",
            "limits": settings.limits(),
        }

    @app.get("/metrics", tags=["server"])
    async def prometheus() -> Response:
        """Prometheus text: requests and errors, queue size, batch sizes and tokens, latency."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    _mount_viz(app, service, settings)
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    app_routes = {r.path for r in app.routes if hasattr(r, "methods") and r.path not in docs}  # type: ignore[attr-defined]
    app.add_middleware(
        LimitsAndMetrics, max_bytes=settings.max_request_bytes, metrics=metrics, routes=app_routes
    )
    return app


def _mount_viz(app: FastAPI, service: ModelService, settings: ServeSettings) -> None:
    """The attention viewer at /viz, where bertforge.viz is installed (PyTorch models only: an ONNX
    export returns no attention)."""
    if settings.backend != "torch":
        return
    try:
        from ..viz.web import viz_router  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    try:
        app.include_router(viz_router(service.model, service.tokenizer), prefix="/viz")
    except Exception:  # the viewer is optional: the server runs without it
        logger.exception("could not mount the attention viewer at /viz")
