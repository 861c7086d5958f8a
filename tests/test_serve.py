"""`bertforge serve` against live servers on 127.0.0.1 (uvicorn in a thread, httpx clients): every
route on all-MiniLM-L6-v2 and on tiny classifier / NER / QA / masked-LM checkpoints, answers equal
to the Python pipelines', every refusal (413, 422, 429) with the server staying up, concurrent
clients getting their own results, metrics that move, and SIGTERM draining queued requests."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="bertforge serve needs FastAPI: pip install 'bertforge[serve]'")
pytest.importorskip("uvicorn", reason="bertforge serve needs uvicorn: pip install 'bertforge[serve]'")
httpx = pytest.importorskip("httpx", reason="the serve tests talk HTTP through httpx: pip install httpx")

import torch  # noqa: E402
import uvicorn  # noqa: E402

from _helpers import minilm_path  # noqa: E402
from _task_data import VOCAB, single_thread, write_checkpoint  # noqa: E402, F401
from bertforge import BertConfig  # noqa: E402
from bertforge.embed import Embedder  # noqa: E402
from bertforge.heads import (  # noqa: E402
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from bertforge.pipelines import (  # noqa: E402
    InferenceSettings,
    answer_questions,
    classify,
    fill_mask,
    load_masked_lm,
    load_task_model,
    ner,
)
from bertforge.pipelines.common import load_tokenizer  # noqa: E402
from bertforge.serve import ServeSettings  # noqa: E402
from bertforge.serve.app import create_app  # noqa: E402

LONG = "the movie was very good and the plot was so quite nice " * 8  # ~100 tokens: past 64 positions
TEXTS = ["the movie was good", "a bad plot", "john smith saw paris", LONG]
ATOL = 1e-5  # answers batched with other requests pad differently: float noise only


# ------------------------------------------------------------------------------- checkpoints
def _head_checkpoint(directory: Path, cls: type, labels: list[str] | None, seed: int) -> Path:
    """A tiny checkpoint of ``cls`` (random head over a random encoder) with the test vocabulary and
    the windows a fine-tuning run writes (64 positions, stride 16)."""
    torch.manual_seed(seed)
    fields: dict[str, Any] = {"id2label": dict(enumerate(labels))} if labels else {}
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=64, **fields)  # fmt: skip
    cls(config).save_pretrained(directory)
    load_tokenizer(_mlm_dir(directory.parent)).save_pretrained(directory)
    settings = {"max_seq_length": 64, "window_stride": 16, "doc_stride": 16, "max_query_length": 16}
    (directory / "finetune_config.json").write_text(json.dumps(settings), encoding="utf-8")
    return directory


def _mlm_dir(root: Path) -> Path:
    path = root / "mlm"
    if not path.exists():
        write_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve")
    return {
        "mlm": _mlm_dir(root),
        "classify": _head_checkpoint(
            root / "classify", BertForSequenceClassification, ["negative", "positive"], 1
        ),
        "ner": _head_checkpoint(
            root / "ner", BertForTokenClassification, ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], 2
        ),
        "qa": _head_checkpoint(root / "qa", BertForQuestionAnswering, None, 3),
        "minilm": Path(minilm_path()),
    }


# ------------------------------------------------------------------------------------ servers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn serving ``create_app(path, settings)`` in a background thread on a free port."""

    def __init__(self, path: Path, **settings: Any) -> None:
        self.app = create_app(path, ServeSettings(**settings))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def post(self, route: str, body: Any) -> Any:
        response = self.client.post(route, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def counter(self, name: str, **labels: str) -> float:
        """A value from /metrics."""
        text = self.client.get("/metrics").text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        match = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0

    def close(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="module")
def servers(checkpoints: dict[str, Path]) -> Iterator[dict[str, LiveServer]]:
    started: dict[str, LiveServer] = {}
    try:
        for name in ("minilm", "classify", "ner", "qa"):
            started[name] = LiveServer(checkpoints[name], max_wait_ms=20)
        # Small limits on the masked-LM server, for the refusals.
        started["mlm"] = LiveServer(
            checkpoints["mlm"],
            max_request_bytes=4096,
            max_batch_texts=4,
            max_concurrent_requests=2,
            max_wait_ms=0,
        )
        yield started
    finally:
        for server in started.values():
            server.close()


def close(actual: Any, expected: Any) -> None:
    """Equal JSON-like structures, floats to ATOL."""
    if isinstance(expected, float):
        assert actual == pytest.approx(expected, abs=ATOL)
    elif isinstance(expected, dict):
        assert set(actual) == set(expected)
        for key in expected:
            close(actual[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            close(a, e)
    else:
        assert actual == expected


def as_json(value: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(value):
        return as_json(dataclasses.asdict(value))  # type: ignore[arg-type]
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(v) for v in value]
    return value


# ------------------------------------------------------------------------------- embeddings
def test_embed_on_minilm_equals_the_embedder(servers: dict[str, LiveServer], checkpoints: dict) -> None:
    texts = ["A man is eating food.", "A man is riding a horse.", "Deux hommes marchent dans la rue."]
    body = servers["minilm"].post("/embed", {"inputs": texts})
    expected = Embedder.from_pretrained(checkpoints["minilm"])(texts).numpy()
    assert body["dimensions"] == 384 and len(body["embeddings"]) == 3
    np.testing.assert_allclose(np.array(body["embeddings"]), expected, atol=ATOL)
    one = servers["minilm"].post("/embed", {"inputs": texts[0]})  # a str is a list of one
    np.testing.assert_allclose(one["embeddings"][0], expected[0], atol=ATOL)


def test_openai_embeddings_route_answers_in_openai_shape(
    servers: dict[str, LiveServer], checkpoints: dict
) -> None:
    texts = ["The cat sits outside", "A man is playing guitar"]
    body = servers["minilm"].post("/v1/embeddings", {"input": texts, "model": "all-MiniLM-L6-v2"})
    expected = Embedder.from_pretrained(checkpoints["minilm"])(texts).numpy()
    assert body["object"] == "list" and body["model"] == "all-MiniLM-L6-v2"
    assert [d["object"] for d in body["data"]] == ["embedding", "embedding"]
    assert [d["index"] for d in body["data"]] == [0, 1]
    np.testing.assert_allclose([d["embedding"] for d in body["data"]], expected, atol=ATOL)
    tokenizer = load_tokenizer(checkpoints["minilm"])
    tokens = sum(len(tokenizer(t)["input_ids"]) for t in texts)
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    packed = servers["minilm"].post("/v1/embeddings", {"input": texts[1], "encoding_format": "base64"})
    vector = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, expected[1], atol=ATOL)


def test_every_checkpoint_embeds_with_its_encoder(servers: dict[str, LiveServer], checkpoints: dict) -> None:
    for name in ("classify", "ner", "qa", "mlm"):
        body = servers[name].post("/embed", {"inputs": TEXTS[:2]})
        expected = Embedder.from_pretrained(checkpoints[name])(TEXTS[:2]).numpy()
        np.testing.assert_allclose(np.array(body["embeddings"]), expected, atol=ATOL)


def test_tokenize_equals_the_tokenizer(servers: dict[str, LiveServer], checkpoints: dict) -> None:
    body = servers["minilm"].post("/tokenize", {"inputs": ["Hello world!"], "pairs": ["Again."]})
    tokenizer = load_tokenizer(checkpoints["minilm"])
    encoding = tokenizer("Hello world!", "Again.", return_offsets_mapping=True, return_token_type_ids=True)
    (result,) = body["results"]
    assert result["input_ids"] == list(encoding["input_ids"])
    assert result["tokens"] == ["[CLS]", "hello", "world", "!", "[SEP]", "again", ".", "[SEP]"]
    assert result["token_type_ids"] == list(encoding["token_type_ids"])
    assert result["offsets"] == [list(o) for o in encoding["offset_mapping"]]


# ------------------------------------------------------------------------------------- tasks
def test_classify_equals_the_pipeline_with_windows_and_pairs(
    servers: dict[str, LiveServer], checkpoints: dict
) -> None:
    model, _ = load_task_model(checkpoints["classify"])
    tokenizer = load_tokenizer(checkpoints["classify"])
    settings = InferenceSettings.for_checkpoint(checkpoints["classify"], "classification")
    body = servers["classify"].post("/classify", {"inputs": TEXTS, "top_k": None})
    close(body["results"], as_json(classify(model, tokenizer, TEXTS, top_k=None, settings=settings)))
    top1 = servers["classify"].post("/classify", {"inputs": TEXTS[0]})  # default top_k 1
    close(top1["results"], [as_json(classify(model, tokenizer, TEXTS[0], settings=settings))])
    paired = servers["classify"].post(
        "/classify", {"inputs": ["a good film"], "pairs": ["a bad plot"], "top_k": 2}
    )
    close(
        paired["results"],
        [as_json(classify(model, tokenizer, "a good film", "a bad plot", top_k=2, settings=settings))],
    )


def test_ner_equals_the_pipeline(servers: dict[str, LiveServer], checkpoints: dict) -> None:
    model, _ = load_task_model(checkpoints["ner"])
    tokenizer = load_tokenizer(checkpoints["ner"])
    settings = InferenceSettings.for_checkpoint(checkpoints["ner"], "ner")
    body = servers["ner"].post("/ner", {"inputs": TEXTS})
    close(body["results"], as_json(ner(model, tokenizer, TEXTS, settings=settings)))


def test_qa_equals_the_pipeline_on_a_long_context(servers: dict[str, LiveServer], checkpoints: dict) -> None:
    model, _ = load_task_model(checkpoints["qa"])
    tokenizer = load_tokenizer(checkpoints["qa"])
    settings = InferenceSettings.for_checkpoint(checkpoints["qa"], "qa")
    contexts = [LONG + " the colour is red .", "the colour is blue ."]
    questions = ["what is the colour ?"] * 2
    body = servers["qa"].post("/qa", {"question": questions, "context": contexts, "top_k": 3})
    expected = as_json(answer_questions(model, tokenizer, questions, contexts, settings))
    for prediction in expected:
        prediction["n_best"] = prediction["n_best"][:3]
    close(body["results"], expected)


def test_fill_mask_equals_the_pipeline(servers: dict[str, LiveServer], checkpoints: dict) -> None:
    model = load_masked_lm(checkpoints["mlm"])
    tokenizer = load_tokenizer(checkpoints["mlm"])
    texts = ["the [MASK] was good", "john [MASK] saw [MASK] ."]
    body = servers["mlm"].post("/fill-mask", {"inputs": texts, "top_k": 3})
    close(body["results"], [as_json(fill_mask(model, tokenizer, t, top_k=3)) for t in texts])


def test_routes_follow_what_the_checkpoint_can_do(servers: dict[str, LiveServer]) -> None:
    common = {"/embed", "/v1/embeddings", "/tokenize", "/health", "/info", "/metrics"}
    extra = {
        "minilm": set(),
        "classify": {"/classify"},
        "ner": {"/ner"},
        "qa": {"/qa"},
        "mlm": {"/fill-mask"},
    }
    for name, server in servers.items():
        info = server.client.get("/info").json()
        assert {r for r in info["routes"] if not r.startswith("/viz")} == common | extra[name], name
        documented = set(server.client.get("/openapi.json").json()["paths"])
        assert common | extra[name] <= documented
        for route in {"/classify", "/ner", "/qa", "/fill-mask"} - extra[name]:
            assert server.client.post(route, json={"inputs": "x"}).status_code == 404
        assert server.client.get("/health").json() == {"status": "ok"}
    info = servers["classify"].client.get("/info").json()
    assert (info["task"], info["labels"], info["model_type"]) == (
        "classification",
        ["negative", "positive"],
        "bert",
    )
    assert info["windows"] == {"max_length": 64, "stride": 16}
    assert info["limits"]["max_batch_texts"] == 256
    minilm = servers["minilm"].client.get("/info").json()["embedding"]
    assert minilm == {"dimensions": 384, "pooling": "mean", "normalize": True, "max_length": 256}


# ---------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"inputs": ["a", ', "not valid JSON"),
        (b'{"inputs": 3}', "inputs must be a string or a list of strings, got int"),
        (b'{"inputs": ["the [MASK]", null]}', r"inputs\[1\] must be a string, got NoneType"),
        (b'{"inputs": [["nested"]]}', r"inputs\[0\] must be a string"),
        (b'{"inputs": []}', "empty list"),
        (b'{"inputs": ["the [MASK]", "  "]}', r"inputs\[1\] is empty"),
        (
            b'{"inputs": ["a [MASK]", "b", "c", "d", "e"]}',
            r"5 texts, over the limit of 4 \(--max-batch-texts\)",
        ),
        (b'{"texts": ["a"]}', "inputs: Field required"),
        (b'{"inputs": "a [MASK]", "top_k": 0}', "top_k: Input should be greater than or equal to 1"),
        (b'["a"]', "must be a JSON object"),
        (b'{"inputs": "no mask here"}', r"text has no \[MASK\] token"),
    ],
)
def test_bad_requests_get_422_with_a_message_and_the_server_stays_up(
    servers: dict[str, LiveServer], body: bytes, message: str
) -> None:
    server = servers["mlm"]
    response = server.client.post("/fill-mask", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error_type"] == "validation"
    assert re.search(message, response.json()["error"]), response.json()["error"]
    assert server.post("/fill-mask", {"inputs": "the [MASK] was good"})["results"]


def test_oversized_bodies_get_413_naming_the_limit(servers: dict[str, LiveServer]) -> None:
    server = servers["mlm"]
    big = {"inputs": ["the movie " * 300 + "[MASK]"]}  # ~3 kB of text + JSON: over 4096 bytes
    big["inputs"][0] += " was" * 400
    response = server.client.post("/fill-mask", json=big)
    assert response.status_code == 413
    assert "4096 bytes (--max-request-bytes)" in response.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield b'{"inputs": "'
        for _ in range(100):
            yield b"the movie " * 10
        yield b'"}'

    response = server.client.post(
        "/fill-mask", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert server.client.get("/health").status_code == 200


def test_a_full_queue_answers_429_with_retry_after(servers: dict[str, LiveServer]) -> None:
    server = servers["mlm"]  # at most 2 requests queued or running
    service = server.app.state.service
    entered, release = threading.Event(), threading.Event()
    original = service.runners["fill-mask"]

    def slow(items: list[Any]) -> list[Any]:
        entered.set()
        release.wait(20)
        return original(items)

    service.runners["fill-mask"] = slow
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = pool.submit(server.client.post, "/fill-mask", json={"inputs": "the [MASK] was good"})
            assert entered.wait(10)
            second = pool.submit(server.client.post, "/fill-mask", json={"inputs": "a [MASK] plot"})
            deadline = time.monotonic() + 10
            while server.app.state.batcher.pending < 2:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            refused = server.client.post("/fill-mask", json={"inputs": "the [MASK] is red"})
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"
            assert "--max-concurrent-requests 2" in refused.json()["error"]
            release.set()
            assert first.result().status_code == 200 and second.result().status_code == 200
    finally:
        release.set()
        service.runners["fill-mask"] = original
    assert server.post("/fill-mask", {"inputs": "the [MASK] is red"})["results"]
    assert server.counter("bertforge_errors_total", route="/fill-mask", kind="overloaded") >= 1


def test_a_failing_request_does_not_fail_the_others_in_its_batch(servers: dict[str, LiveServer]) -> None:
    server = servers["classify"]
    service = server.app.state.service
    original = service.runners["classify"]

    def picky(items: list[Any]) -> list[Any]:
        if any(text == "boom" for text, _ in items):
            raise RuntimeError("boom")
        return original(items)

    service.runners["classify"] = picky
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            texts = ["boom" if i == 3 else f"the movie {i}" for i in range(8)]
            responses = list(pool.map(lambda t: server.client.post("/classify", json={"inputs": t}), texts))
    finally:
        service.runners["classify"] = original
    assert [r.status_code for r in responses] == [500 if t == "boom" else 200 for t in texts]
    assert "RuntimeError: boom" in responses[3].json()["error"]
    assert server.client.get("/health").status_code == 200


# ------------------------------------------------------------------------------- concurrency
def test_concurrent_clients_each_get_their_own_results(
    servers: dict[str, LiveServer], checkpoints: dict
) -> None:
    server = servers["classify"]
    model, _ = load_task_model(checkpoints["classify"])
    tokenizer = load_tokenizer(checkpoints["classify"])
    settings = InferenceSettings.for_checkpoint(checkpoints["classify"], "classification")
    words = [
        "the",
        "a",
        "movie",
        "was",
        "film",
        "good",
        "bad",
        "plot",
        "actor",
        "scene",
        "story",
        "john",
        "paris",
        "red",
        "blue",
    ]
    rng = np.random.default_rng(0)
    requests = [
        [" ".join(rng.choice(words, size=rng.integers(2, 90))) for _ in range(rng.integers(1, 5))]
        for _ in range(16 * 5)
    ]
    expected = [
        as_json(classify(model, tokenizer, texts, top_k=None, settings=settings)) for texts in requests
    ]
    batches_before = server.counter("bertforge_batches_total", route="/classify")

    def client(worker: int) -> list[tuple[int, Any]]:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            out = []
            for k in range(5):
                index = worker * 5 + k
                response = http.post("/classify", json={"inputs": requests[index], "top_k": None})
                assert response.status_code == 200, response.text
                out.append((index, response.json()["results"]))
            return out

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = [pair for chunk in pool.map(client, range(16)) for pair in chunk]
    assert sorted(i for i, _ in answers) == list(range(80))
    for index, results in answers:
        close(results, expected[index])
    batches = server.counter("bertforge_batches_total", route="/classify") - batches_before
    assert 0 < batches < 80  # requests were batched together


def test_metrics_count_requests_errors_and_batches(servers: dict[str, LiveServer]) -> None:
    server = servers["ner"]
    ok = server.counter("bertforge_requests_total", route="/ner", status="200")
    bad = server.counter("bertforge_errors_total", route="/ner", kind="validation")
    server.post("/ner", {"inputs": "john smith saw paris"})
    assert server.client.post("/ner", json={"inputs": ""}).status_code == 422
    assert server.counter("bertforge_requests_total", route="/ner", status="200") == ok + 1
    assert server.counter("bertforge_errors_total", route="/ner", kind="validation") == bad + 1
    text = server.client.get("/metrics").text
    assert server.client.get("/metrics").headers["content-type"].startswith("text/plain; version=0.0.4")
    for family in ("bertforge_queue_size", "bertforge_requests_pending", "bertforge_batch_requests_bucket",
                   "bertforge_batch_tokens_sum", "bertforge_request_duration_seconds_bucket"):  # fmt: skip
        assert family in text
    assert server.counter("bertforge_inputs_total", route="/ner") >= 1


# ------------------------------------------------------------------------------- the command
@pytest.mark.slow  # a subprocess: imports torch and loads the model again (~5 s on a quiet machine)
def test_serve_command_drains_queued_requests_on_sigterm(checkpoints: dict) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bertforge.cli", "serve", str(checkpoints["mlm"]), "--port", str(port),
         "--threads", "1", "--max-batch-tokens", "64"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "bertforge serve did not start"
            time.sleep(0.1)
        texts = ["the movie was [MASK] and the plot was good"] * 60  # fill-mask runs text by text: slow
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            futures = [
                pool.submit(httpx.post, f"{url}/fill-mask", json={"inputs": texts}, timeout=60)
                for _ in range(6)
            ]
            deadline = time.monotonic() + 20
            while True:  # wait until some requests are queued behind a running batch
                metrics = httpx.get(f"{url}/metrics", timeout=5).text
                pending = float(re.search(r"^bertforge_requests_pending (\S+)$", metrics, re.M).group(1))  # type: ignore[union-attr]
                if pending >= 3 or all(f.done() for f in futures):
                    break
                assert time.monotonic() < deadline
                time.sleep(0.01)
            process.send_signal(signal.SIGTERM)
            statuses = [f.result().status_code for f in futures]
        assert statuses == [200] * 6  # every request queued before SIGTERM was answered
        # uvicorn re-raises the signal once shut down, so the exit status says "terminated".
        assert process.wait(30) in (0, -signal.SIGTERM)
        output = process.stdout.read() if process.stdout else ""
        assert "Traceback" not in output, output
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health", timeout=1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_command_refuses_a_missing_checkpoint_with_one_line(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    from bertforge.cli import main

    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert "is not a checkpoint directory (no config.json)" in capsys.readouterr().err


def test_onnx_backend_loads_the_exported_model_class(
    checkpoints: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--backend onnx runs what bertforge.export.onnx.OnnxModel loads (a stand-in here, that returns
    the PyTorch model: the ONNX model duck-types it) through the same routes."""
    from fastapi.testclient import TestClient

    loaded: list[Path] = []

    class StandIn:
        @staticmethod
        def from_pretrained(path: Path) -> Any:
            loaded.append(Path(path))
            return load_task_model(path)[0]

    stub = types.ModuleType("bertforge.export.onnx")
    stub.OnnxModel = StandIn  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bertforge.export", types.ModuleType("bertforge.export"))
    monkeypatch.setitem(sys.modules, "bertforge.export.onnx", stub)
    app = create_app(checkpoints["classify"], ServeSettings(backend="onnx"))
    assert loaded == [checkpoints["classify"]]
    with TestClient(app) as client:
        response = client.post("/classify", json={"inputs": "a good film"})
        assert response.status_code == 200 and client.get("/info").json()["backend"] == "onnx"
