"""The attention viewer: :func:`attention_data` (any family's attention as plain data),
:func:`render_html` (one self-contained HTML file), and ``bertforge.viz.web.viz_router`` (the live
page and its JSON route, needs the ``viz`` extra: fastapi, uvicorn)."""

from .attention import DEFAULT_MAX_TOKENS, attention_data, load_for_viz, model_info
from .page import live_page, render_html

__all__ = ["DEFAULT_MAX_TOKENS", "attention_data", "live_page", "load_for_viz", "model_info", "render_html"]
