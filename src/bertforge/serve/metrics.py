"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand.

Why not ``prometheus_client``: the server needs four counters, two gauges and three histograms in
one process; the text format for that is ~60 lines, and writing it here keeps the ``serve`` extra
at FastAPI + uvicorn. Every update takes one lock (updates are a handful per request).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
BATCH_TOKEN_BUCKETS = (16, 64, 256, 1024, 4096, 16384, 65536)

Labels = tuple[tuple[str, str], ...]


class Family(Protocol):
    """A metric family (:class:`Counter`, :class:`Gauge`, :class:`Histogram`): its exposition lines."""

    def lines(self) -> list[str]: ...


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Counter:
    def __init__(self, name: str, help: str) -> None:
        self.name, self.help = name, help
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        out += [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(self._values.items())]
        return out


class Gauge:
    """A value read when /metrics is scraped (queue size, requests in flight)."""

    def __init__(self, name: str, help: str, read: Callable[[], float]) -> None:
        self.name, self.help, self.read = name, help, read

    def lines(self) -> list[str]:
        return [
            f"# HELP {self.name} {self.help}",
            f"# TYPE {self.name} gauge",
            f"{self.name} {_number(self.read())}",
        ]


class Histogram:
    def __init__(self, name: str, help: str, buckets: Sequence[float]) -> None:
        self.name, self.help = name, help
        self.buckets = tuple(buckets) + (math.inf,)
        self._series: dict[Labels, list[float]] = {}  # bucket counts (not cumulative), then sum

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        series = self._series.setdefault(key, [0.0] * (len(self.buckets) + 1))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                series[i] += 1
                break
        series[-1] += value

    def count(self, **labels: str) -> float:
        return sum(self._series.get(tuple(sorted(labels.items())), [0.0])[:-1])

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, series in sorted(self._series.items()):
            total = 0.0
            for bound, count in zip(self.buckets, series, strict=False):
                total += count
                le = 'le="' + _number(bound) + '"'
                out.append(f"{self.name}_bucket{_labels(key, le)} {_number(total)}")
            out.append(f"{self.name}_sum{_labels(key)} {_number(series[-1])}")
            out.append(f"{self.name}_count{_labels(key)} {_number(total)}")
        return out


class ServerMetrics:
    """What /metrics reports: requests and errors by route and status, queue size, requests in
    flight, batch sizes (requests and tokens) and request latency."""

    def __init__(self, queue_size: Callable[[], float], pending: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self.requests = Counter(
            "bertforge_requests_total", "HTTP requests answered, by route and status code."
        )
        self.errors = Counter(
            "bertforge_errors_total", "Requests answered with a 4xx or 5xx status, by route and kind."
        )
        self.batches = Counter("bertforge_batches_total", "Batches the worker ran, by route.")
        self.inputs = Counter(
            "bertforge_inputs_total", "Texts (or question/context pairs) processed, by route."
        )
        self.batch_requests = Histogram("bertforge_batch_requests", "Requests per batch.", BATCH_SIZE_BUCKETS)
        self.batch_tokens = Histogram("bertforge_batch_tokens", "Tokens per batch.", BATCH_TOKEN_BUCKETS)
        self.latency = Histogram(
            "bertforge_request_duration_seconds", "Time from request to response, by route.", LATENCY_BUCKETS
        )
        self.batch_seconds = Histogram(
            "bertforge_batch_duration_seconds", "Time to run one batch.", LATENCY_BUCKETS
        )
        self.gauges = [
            Gauge("bertforge_queue_size", "Requests waiting for the worker.", queue_size),
            Gauge("bertforge_requests_pending", "Requests admitted and not yet answered.", pending),
        ]

    def request(self, route: str, status: int, seconds: float, error_kind: str | None = None) -> None:
        with self._lock:
            self.requests.inc(route=route, status=str(status))
            if status >= 400:
                self.errors.inc(route=route, kind=error_kind or str(status))
            self.latency.observe(seconds, route=route)

    def batch(self, route: str, requests: int, inputs: int, tokens: int, seconds: float) -> None:
        with self._lock:
            self.batches.inc(route=route)
            self.inputs.inc(inputs, route=route)
            self.batch_requests.observe(requests, route=route)
            self.batch_tokens.observe(tokens, route=route)
            self.batch_seconds.observe(seconds, route=route)

    def render(self) -> str:
        with self._lock:
            families: list[Family] = [self.requests, self.errors, self.batches, self.inputs, *self.gauges,
                        self.batch_requests, self.batch_tokens, self.batch_seconds, self.latency]  # fmt: skip
            return "\n".join(line for family in families for line in family.lines()) + "\n"
