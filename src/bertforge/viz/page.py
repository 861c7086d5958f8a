"""The viewer's page: one HTML file with its CSS, JavaScript and (for an export) data inlined.

``viz.html``, ``viz.css`` and ``viz.js`` ship beside this module as package data; nothing is fetched
from a CDN or any other address, so the exported file opens from ``file://`` with no server and no
network. The live page is the same file with no data and the address of the JSON route instead.
"""

from __future__ import annotations

import html
import json
import re
from functools import cache
from importlib import resources
from typing import Any

_PLACEHOLDER = re.compile(r"/\*VIZ_(CSS|JS)\*/|VIZ_(CONFIG_JSON|TITLE)")


@cache
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def script_json(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>``, ``&`` or line
    separators survive literally, so no text typed by a user can close the element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _page(config: dict[str, Any], title: str) -> str:
    css, js = _asset("viz.css"), _asset("viz.js")
    if "</" in css or "</script" in js.lower():  # would end the inline element early
        raise AssertionError("viz.css / viz.js must not contain a closing tag")
    values = {
        "CSS": css,
        "JS": js,
        "CONFIG_JSON": script_json(config),
        "TITLE": html.escape(title),
    }
    # One pass, so text inside the data can never be mistaken for a placeholder.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1) or m.group(2)], _asset("viz.html"))


def render_html(data: dict[str, Any]) -> str:
    """One self-contained HTML page showing ``data`` (from :func:`~bertforge.viz.attention_data`):
    styles, script and data inline, no request to any server when opened from ``file://``."""
    model = data.get("model") or {}
    title = f"attention: {model.get('name', 'model')}"
    return _page({"mode": "static", "data": data, "model": model}, title)


def live_page(info: dict[str, Any], api: str = "attention", text: str | None = None) -> str:
    """The page served by :func:`bertforge.viz.web.viz_router`: a form that POSTs to ``api``."""
    config = {"mode": "live", "api": api, "model": info, "data": None, "text": text}
    return _page(config, f"attention: {info.get('name', 'model')}")
