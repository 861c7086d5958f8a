"""The server's settings: limits, batching and backend, one typed object from the CLI to the app."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import BertForgeError

BACKENDS = ("torch", "onnx")


@dataclass(frozen=True)
class ServeSettings:
    """What ``bertforge serve`` takes besides the checkpoint; defaults suit a CPU and a small model.

    * ``max_batch_tokens``: the token budget of one batch (the sum of the requests' token counts,
      truncated to the model's window); a request larger than the budget runs alone.
    * ``max_wait_ms``: how long the first request of a batch waits for others to join it. Under
      load the queue fills while the model runs, so batches form with no waiting at all.
    * ``max_concurrent_requests``: requests admitted (queued or running); one more is answered 429.
    * ``max_request_bytes``: the largest request body; a larger one is answered 413.
    * ``max_batch_texts``: the most texts (or question/context pairs) in one request; more is 422.
    * ``memory_trim_interval_s``: at most this often, the worker hands memory freed by its batches
      back to the OS (:mod:`.memory`), so RSS stays flat; 0 never does.
    """

    max_batch_tokens: int = 16384
    max_wait_ms: float = 5.0
    max_concurrent_requests: int = 512
    max_request_bytes: int = 2 * 1024 * 1024
    max_batch_texts: int = 256
    bf16: bool = False
    backend: str = "torch"
    device: str = "cpu"
    batch_size: int = 32  # texts per forward pass inside a batch (the pipelines sort by length first)
    model_name: str | None = None  # the name /info and /v1/embeddings report; default: the directory's
    memory_trim_interval_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_batch_tokens", "max_concurrent_requests", "max_request_bytes", "max_batch_texts",
                     "batch_size"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise BertForgeError(f"{name} ({value!r}) must be a positive integer")
        if self.max_wait_ms < 0:
            raise BertForgeError(f"max_wait_ms ({self.max_wait_ms}) must be 0 or more")
        if self.memory_trim_interval_s < 0:
            raise BertForgeError(f"memory_trim_interval_s ({self.memory_trim_interval_s}) must be 0 or more")
        if self.backend not in BACKENDS:
            raise BertForgeError(f"unknown backend {self.backend!r}; choose from {', '.join(BACKENDS)}")

    def limits(self) -> dict[str, Any]:
        """The limits a client should know (reported by /info)."""
        data = asdict(self)
        return {k: data[k] for k in ("max_batch_tokens", "max_wait_ms", "max_concurrent_requests",
                                     "max_request_bytes", "max_batch_texts")}  # fmt: skip
