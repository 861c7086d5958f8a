"""The live viewer: a FastAPI router (the page and its JSON route) and the small app behind
``bertforge viz CHECKPOINT``.

    GET  <prefix>/            the page (HTML, everything inline)
    POST <prefix>/attention   {"text": "...", "pair": null | "..."} -> attention_data(...) as JSON;
                              422 {"detail": "..."} for an empty or too long text

``bertforge serve`` mounts the same router at ``/viz``. Needs the ``viz`` extra (fastapi, uvicorn).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ..errors import BertForgeError

try:
    from fastapi import APIRouter, FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, Response
    from pydantic import BaseModel, Field
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the live attention viewer needs fastapi and uvicorn: pip install 'bertforge[viz]' "
        "(bertforge viz --html writes a file without them)"
    ) from err

from .attention import MAX_TEXT_CHARS, attention_data, display_name, load_for_viz, model_info
from .page import live_page


class VizAttentionRequest(BaseModel):
    """A text (and an optional second text of a pair) to show the attention of."""

    text: str = Field(..., max_length=MAX_TEXT_CHARS, description="the text; a sentence or two")
    pair: str | None = Field(None, max_length=MAX_TEXT_CHARS, description="optional second text")


def viz_router(
    model: Any, tokenizer: Any, *, name: str | None = None, max_tokens: int | None = None
) -> APIRouter:
    """The viewer's routes for ``model`` (any family, base or fine-tuned) and its ``tokenizer``:
    ``GET /`` the page and ``POST /attention`` the data; mount with ``include_router(router,
    prefix="/viz")`` or at the root. The model runs one request at a time, in FastAPI's thread pool
    (the event loop never waits on it)."""
    info = model_info(model, tokenizer, name=name, max_tokens=max_tokens)
    lock = threading.Lock()
    router = APIRouter(tags=["viz"])

    @router.get("/", response_class=HTMLResponse, summary="the attention viewer page")
    def viz_page(request: Request) -> HTMLResponse:
        # A relative address, so the page works under any prefix (/viz/, /, behind a proxy).
        path = request.url.path
        api = "attention" if path.endswith("/") else f"{path.rsplit('/', 1)[-1]}/attention"
        return HTMLResponse(live_page(info, api), headers={"Cache-Control": "no-store"})

    @router.post(
        "/attention",
        summary="attention of a text or pair: tokens, flags, layers x heads x T x T weights",
        response_model=None,
        responses={422: {"description": "empty text, too many tokens, or a malformed body"}},
    )
    def viz_attention(body: VizAttentionRequest) -> Response:
        try:
            with lock:
                data = attention_data(
                    model, tokenizer, body.text, body.pair, max_tokens=max_tokens, name=name
                )
        except BertForgeError as err:
            raise HTTPException(status_code=422, detail=str(err)) from None
        # json.dumps directly: FastAPI's encoder walks every float of the array and is much slower.
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return Response(payload, media_type="application/json")

    return router


def create_app(
    checkpoint: str | Path, tokenizer: str | Path | None = None, max_tokens: int | None = None
) -> FastAPI:
    """The ``bertforge viz`` application: the viewer for one checkpoint at ``/``."""
    model, tok = load_for_viz(checkpoint, tokenizer)
    app = FastAPI(
        title="bertforge attention viewer",
        description="Attention weights of any bertforge checkpoint. They are not an explanation of a prediction.",
    )
    app.include_router(viz_router(model, tok, name=display_name(checkpoint), max_tokens=max_tokens))
    return app


def run(
    checkpoint: str | Path,
    host: str = "127.0.0.1",
    port: int = 8001,
    tokenizer: str | Path | None = None,
    max_tokens: int | None = None,
) -> None:
    """Serve the viewer with uvicorn until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise BertForgeError(
            "bertforge viz needs uvicorn to serve the page: pip install 'bertforge[viz]', "
            "or write a file with --html OUT.html TEXT"
        ) from None
    app = create_app(checkpoint, tokenizer, max_tokens)
    print(f"attention viewer for {checkpoint} on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
