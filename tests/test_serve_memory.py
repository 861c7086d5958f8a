"""The server hands memory its batches freed back to the OS, at most once per interval."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading
import time
from pathlib import Path

import pytest

from bertforge.errors import BertForgeError
from bertforge.serve import ServeSettings, memory
from bertforge.serve import batcher as batcher_module
from bertforge.serve.batcher import Batcher, Job


def run_jobs(batcher: Batcher, count: int) -> None:
    """Submit ``count`` one-item jobs one after another and wait for each answer."""
    for _ in range(count):
        answered = threading.Event()
        batcher.submit(Job("echo", ["x"], lambda result, error, done=answered: done.set()))
        assert answered.wait(10)


def make_batcher(trim_interval_s: float | None) -> Batcher:
    return Batcher(
        {"echo": lambda items: list(items)},
        lambda kind, items: len(items),
        max_batch_tokens=8,
        max_wait_s=0.0,
        max_pending=4,
        trim_interval_s=trim_interval_s,
    )


def test_the_worker_trims_at_most_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    monkeypatch.setattr(
        batcher_module, "release_freed_memory", lambda: calls.append(time.monotonic()) or True
    )
    batcher = make_batcher(trim_interval_s=0.2)
    batcher._last_trim -= 1.0  # as if the last trim were long ago: the first batch trims
    batcher.start()
    try:
        run_jobs(batcher, 1)
        assert len(calls) == 1
        run_jobs(batcher, 20)  # well within the interval: no more trims
        assert len(calls) == 1
        time.sleep(0.25)
        run_jobs(batcher, 1)
        assert len(calls) == 2
    finally:
        batcher.stop(5)


def test_no_interval_never_trims(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(batcher_module, "release_freed_memory", lambda: calls.append(1) or True)
    batcher = make_batcher(trim_interval_s=None)
    batcher._last_trim -= 10.0
    batcher.start()
    try:
        run_jobs(batcher, 5)
    finally:
        batcher.stop(5)
    assert calls == []


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not glibc, reason="malloc_trim is glibc's")
def test_release_hands_freed_heap_memory_back_on_glibc() -> None:
    assert memory.can_release_freed_memory()
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
    size, count = 60 * 1024, 1024  # 60 MiB in blocks below the mmap threshold: from the heap
    blocks = [libc.malloc(size) for _ in range(count)]
    for block in blocks:
        ctypes.memset(block, 1, size)  # resident
    # One more block from the heap's top, above them, so free() cannot give theirs back by shrinking
    # the top (a small one could land in a hole below).
    pin = libc.malloc(size)
    try:
        for block in blocks:
            libc.free(block)
        before = resident_bytes()
        assert memory.release_freed_memory() is True
        released = before - resident_bytes()
        assert released > 30 * 2**20, f"only {released / 2**20:.1f} MiB handed back"
    finally:
        libc.free(pin)


def test_a_negative_interval_is_refused() -> None:
    with pytest.raises(BertForgeError, match="memory_trim_interval_s"):
        ServeSettings(memory_trim_interval_s=-1)
