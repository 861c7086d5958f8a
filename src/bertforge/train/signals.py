"""Stop a training loop cleanly on SIGINT (Ctrl-C) or SIGTERM (schedulers, preemption).

The handler only sets a flag; the loop finishes its current step, saves a checkpoint and returns,
so an interrupted run can always be resumed. A second Ctrl-C raises KeyboardInterrupt at once for
a loop that is stuck. Outside the main thread, signal handlers cannot be installed and the flag
is only set by :meth:`StopFlag.request`.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

log = logging.getLogger(__name__)


class StopFlag:
    """Context manager installing the handlers; ``reason`` is None until a stop is requested."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def request(self, reason: str = "request") -> None:
        self.reason = reason

    def _handle(self, signum: int, frame: Any) -> None:
        if self.reason is not None:  # a second signal: stop now, without the checkpoint
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        log.warning("received %s: saving a checkpoint after this step", name)
        self.request(name)

    def __enter__(self) -> StopFlag:
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
