"""``bertforge serve``: an HTTP server for a checkpoint, with dynamic batching.

* :mod:`.settings` — :class:`ServeSettings`, the limits and batching knobs;
* :mod:`.batcher` — the bounded queue and the worker thread that batches under a token budget;
* :mod:`.memory` — handing memory freed by batches back to the OS (glibc's ``malloc_trim``);
* :mod:`.runners` — what the checkpoint can do, as batch runners over the library's pipelines;
* :mod:`.metrics` — Prometheus text for /metrics;
* :mod:`.schemas` — the request and response bodies (pydantic, documented at /docs);
* :mod:`.app` — :func:`create_app`, the FastAPI application.

FastAPI and uvicorn come with the ``serve`` extra: ``pip install 'bertforge[serve]'``.
"""

from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def create_app(*args, **kwargs):  # type: ignore[no-untyped-def]
    """:func:`bertforge.serve.app.create_app` (imported on first use: FastAPI is optional)."""
    from .app import create_app as create

    return create(*args, **kwargs)
