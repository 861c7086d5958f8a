"""Dynamic batching: requests queue, one worker thread gathers them into batches under a token
budget and runs them, so the event loop never waits on the model.

How a batch forms (the text-embeddings-inference way):

1. the worker takes the oldest queued job;
2. it adds the next queued jobs of the same kind (the same route) while the batch's tokens
   stay within ``max_batch_tokens``, waiting at most ``max_wait`` after the first job arrived for
   more to come (under load the queue filled while the last batch ran, so there is no wait);
3. it runs the batch with the kind's runner (the pipelines sort the batch's texts by length, so a
   forward pass pads little) and hands each job its own slice of the results.

A batch that fails is run again one job at a time, so a bad input fails only its own request and
the worker lives on. At most every ``trim_interval_s`` the worker hands the memory its batches freed
back to the OS (:func:`~.memory.release_freed_memory`), so the server's RSS stays flat. The queue is bounded: past ``max_pending`` admitted jobs (queued or running)
:meth:`Batcher.submit` raises :class:`QueueFull`, which the app answers with 429.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .memory import release_freed_memory

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """The bounded queue holds ``max_pending`` jobs; the request should be retried later."""


@dataclass(eq=False)
class Job:
    """One request's work: its ``items`` (texts, or question/context pairs) for the runner of ``kind``.

    ``done(result, error)`` is called once, from the worker thread, with the runner's result for
    this job's items or the exception it raised. ``tokens`` is filled in by the worker.
    """

    kind: str
    items: Sequence[Any]
    done: Callable[[Any, BaseException | None], None]
    enqueued: float = field(default_factory=time.monotonic)
    tokens: int | None = None
    cancelled: bool = False  # the client went away: skip it if not yet run


# A runner takes the batch's items (every job's, concatenated) and returns one result per item.
Runner = Callable[[list[Any]], list[Any]]


class Batcher:
    """The queue and its worker thread. ``runners`` maps a job's kind (its route) to the runner of
    its batches; ``count_tokens(kind, items)`` gives a job's token count for the budget."""

    def __init__(
        self,
        runners: dict[str, Runner],
        count_tokens: Callable[[str, Sequence[Any]], int],
        max_batch_tokens: int,
        max_wait_s: float,
        max_pending: int,
        on_batch: Callable[[str, int, int, int, float], None] | None = None,
        trim_interval_s: float | None = 1.0,
    ) -> None:
        self.runners = runners
        self.count_tokens = count_tokens
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_s
        self.max_pending = max_pending
        self.on_batch = on_batch  # (kind, jobs, items, tokens, seconds) after each batch: metrics
        # None: never trim. A trim walks every arena: 45 ms after ~80 MB had been freed by three
        # threads, 0.03 ms when little was (measured on the 2-core EPYC), so at most once a second.
        self.trim_interval_s = trim_interval_s
        self._last_trim = time.monotonic()
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._pending = 0  # admitted and not yet answered
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="bertforge-batcher", daemon=True)

    # ----------------------------------------------------------------------------- event loop side
    def start(self) -> None:
        if not self._thread.is_alive() and not self._stopping:
            self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._stopping:
                raise QueueFull("the server is shutting down")
            if self._pending >= self.max_pending:
                raise QueueFull(f"{self._pending} requests are queued or running")
            self._pending += 1
            self._queue.append(job)
            self._cond.notify()

    @property
    def queue_size(self) -> int:
        return len(self._queue)

    @property
    def pending(self) -> int:
        return self._pending

    def stop(self, timeout: float | None = None) -> None:
        """Finish every queued job, then end the worker (the app's shutdown, after uvicorn has let
        the in-flight requests complete)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --------------------------------------------------------------------------------- the worker
    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _tokens(self, job: Job) -> int:
        if job.tokens is None:
            try:
                job.tokens = int(self.count_tokens(job.kind, job.items))
            except Exception:  # the runner will report what is wrong with the input
                job.tokens = 0
        return job.tokens

    def _next_batch(self) -> list[Job] | None:
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
            first = self._queue.popleft()
        batch, tokens = [first], self._tokens(first)
        deadline = first.enqueued + self.max_wait_s
        while tokens < self.max_batch_tokens:
            with self._cond:
                found = None
                for job in self._queue:  # the oldest job of this kind that fits
                    if job.kind == first.kind and tokens + self._tokens(job) <= self.max_batch_tokens:
                        found = job
                        break
                    if job.kind == first.kind:
                        break  # the next one of this kind does not fit: keep the order, run now
                if found is not None:
                    self._queue.remove(found)
                    batch.append(found)
                    tokens += found.tokens or 0
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    break
                self._cond.wait(remaining)
        return batch

    def _run(self, batch: list[Job]) -> None:
        live = [job for job in batch if not job.cancelled]  # a client that left gets no answer
        start = time.perf_counter()
        try:
            if live:
                self._run_jobs(live)
        finally:
            with self._cond:
                self._pending -= len(batch)
        if self.on_batch is not None and live:
            tokens = sum(job.tokens or 0 for job in live)
            items = sum(len(job.items) for job in live)
            self.on_batch(live[0].kind, len(live), items, tokens, time.perf_counter() - start)
        self._maybe_trim()

    def _maybe_trim(self) -> None:
        if self.trim_interval_s is None or time.monotonic() - self._last_trim < self.trim_interval_s:
            return
        release_freed_memory()
        self._last_trim = time.monotonic()

    def _run_jobs(self, jobs: list[Job]) -> None:
        items = [item for job in jobs for item in job.items]
        try:
            results = self.runners[jobs[0].kind](items)
            if len(results) != len(items):
                raise RuntimeError(f"runner gave {len(results)} results for {len(items)} inputs")
        except Exception as error:  # the worker lives on, whatever the input
            if len(jobs) > 1:  # find the culprit: each job alone, so only its request fails
                for job in jobs:
                    self._run_jobs([job])
                return
            if not isinstance(error, ValueError):  # BertForgeError is a ValueError: the user's mistake
                logger.exception("the %s runner failed", jobs[0].kind)
            self._answer(jobs[0], None, error)
            return
        at = 0
        for job in jobs:
            self._answer(job, results[at : at + len(job.items)], None)
            at += len(job.items)

    @staticmethod
    def _answer(job: Job, result: Any, error: BaseException | None) -> None:
        try:
            job.done(result, error)
        except Exception:  # a callback bug must not end the worker
            logger.exception("answering a %s request failed", job.kind)
