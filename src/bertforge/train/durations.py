"""Wall-clock durations as people write them: "2h", "90m", "1h30m", "45s" or seconds."""

from __future__ import annotations

import re

from ..errors import BertForgeError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s)")


def parse_duration(text: str | float) -> float:
    """Seconds in "2h", "90m", "1h30m", "45s" or a bare number of seconds."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        stripped = text.strip().lower()
        try:
            seconds = float(stripped)
        except ValueError:
            parts = _DURATION.findall(stripped)
            if not parts or "".join(n + u for n, u in parts) != stripped.replace(" ", ""):
                raise BertForgeError(
                    f"cannot read the duration {text!r}; write e.g. 2h, 90m, 1h30m, 45s or seconds"
                ) from None
            seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if not seconds > 0:
        raise BertForgeError(f"a time budget must be positive, got {text!r}")
    return seconds
