"""The attention viewer: attention_data on tiny random models of every family, the self-contained page,
the live router and CLI, and the page itself in a real headless Chromium (live server and file://).

Browser tests need Debian's ``chromium`` (``apt-get install -y --no-install-recommends chromium``) and
Playwright's Python package (the ``dev`` extra; never ``playwright install``: the executable is the
system's). They are skipped, with the reason, only where no Chromium executable is found.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bertforge.auto import AutoConfig, AutoModel, forward_kwargs, model_class_for
from bertforge.cli import main
from bertforge.errors import BertForgeError
from bertforge.tokenization import AlbertTokenizer, BertTokenizer, DistilBertTokenizer, RobertaTokenizer
from bertforge.viz import attention_data, load_for_viz, render_html
from bertforge.viz.page import script_json

TEXTS = [
    "The quick brown fox jumps over the lazy dog while the cat sleeps.",
    "Attention heads attend to tokens; some heads look at the next word, some at punctuation.",
    "A café in Zürich serves coffee, tea and cakes every morning before nine o'clock.",
    "Models read sentences, split them into pieces and mix the pieces layer after layer.",
] * 6
SHAPE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37}
FAMILIES = ("bert", "roberta", "albert", "distilbert")
LAYERS, HEADS = SHAPE["num_hidden_layers"], SHAPE["num_attention_heads"]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tokenizer(family: str, directory: Path) -> Any:
    if family in ("bert", "distilbert"):
        wordpiece = BertTokenizer.train_from_iterator(TEXTS, vocab_size=150, save_to=directory)
        if family == "distilbert":
            DistilBertTokenizer(wordpiece.get_vocab()).save_pretrained(directory)
    elif family == "roberta":
        RobertaTokenizer.train_from_iterator(TEXTS, vocab_size=300, save_to=directory)
    else:
        AlbertTokenizer.train_from_iterator(TEXTS, vocab_size=150, save_to=directory)
    from bertforge.tokenization import load_tokenizer

    return load_tokenizer(directory)


def _config(family: str, vocab_size: int) -> Any:
    if family == "distilbert":
        return AutoConfig.for_model(
            "distilbert", vocab_size=vocab_size, dim=32, n_layers=LAYERS, n_heads=HEADS, hidden_dim=37,
            max_position_embeddings=64,
        )  # fmt: skip
    extra = {"max_position_embeddings": 66 if family == "roberta" else 64}
    if family == "albert":
        extra["embedding_size"] = 16
    return AutoConfig.for_model(family, vocab_size=vocab_size, **SHAPE, **extra)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random base checkpoint of each family, and a 'fine-tuned' (sequence-classification
    head) BERT and RoBERTa, each with its tokenizer."""
    root = tmp_path_factory.mktemp("viz-models")
    paths: dict[str, Path] = {}
    for family in FAMILIES:
        directory = root / family
        tokenizer = _tokenizer(family, directory)
        torch.manual_seed(0)
        AutoModel.from_config(_config(family, len(tokenizer))).save_pretrained(directory)
        paths[family] = directory
    for family in ("bert", "roberta"):
        directory = root / f"{family}-classifier"
        shutil.copytree(paths[family], directory)
        (directory / "model.safetensors").unlink()
        config = _config(family, len(_tokenizer_of(paths[family])))
        config = config.replace(
            id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1}
        )
        torch.manual_seed(1)
        model_class_for(family, "sequence-classification")(config).save_pretrained(directory)
        paths[f"{family}-classifier"] = directory
    return paths


def _tokenizer_of(path: Path) -> Any:
    from bertforge.tokenization import load_tokenizer

    return load_tokenizer(path)


# ------------------------------------------------------------------------------ attention_data
@pytest.mark.parametrize("family", FAMILIES)
def test_attention_data_every_family(checkpoints: dict[str, Path], family: str) -> None:
    model, tokenizer = load_for_viz(checkpoints[family])
    data = attention_data(model, tokenizer, "The quick brown fox jumps.", "Where does the cat sleep?")
    encoded = tokenizer("The quick brown fox jumps.", "Where does the cat sleep?", return_token_type_ids=True)
    ids = encoded["input_ids"]
    length = len(ids)
    attention = np.asarray(data["attention"])
    assert attention.shape == (LAYERS, HEADS, length, length)
    assert (data["layers"], data["heads"], data["length"]) == (LAYERS, HEADS, length)
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-3)  # every row a distribution
    assert (attention >= 0).all()
    for key in ("tokens", "raw_tokens", "ids", "special", "segment", "continuation"):
        assert len(data[key]) == length, key
    assert data["ids"] == ids and tokenizer.pad_token_id not in data["ids"]  # one unpadded sequence
    assert data["special"][0] and data["special"][-1] and sum(data["special"]) in (3, 4)  # RoBERTa: 4
    assert data["segment"][0] == 0 and data["segment"][-1] == 1 and set(data["segment"]) == {0, 1}
    shown = [t for t, s in zip(data["tokens"], data["special"], strict=True) if not s]
    assert not any(t.startswith(("Ġ", "▁")) for t in shown)  # word markers cleaned for every family
    assert all(t.startswith("##") == c for t, c in zip(data["tokens"], data["continuation"], strict=True))
    assert data["model"]["model_type"] == family
    assert (data["model"]["layers"], data["model"]["heads"]) == (LAYERS, HEADS)
    # The same numbers as the model's own output_attentions.
    with torch.no_grad():
        batch = {
            "input_ids": torch.tensor([ids]),
            "token_type_ids": torch.tensor([encoded["token_type_ids"]]),
        }
        direct = model(**forward_kwargs(model, batch), output_attentions=True).attentions
    np.testing.assert_allclose(attention, torch.stack([a[0] for a in direct]).numpy(), atol=1e-4)
    json.dumps(data)  # JSON-ready as it stands


def _words(data: dict[str, Any]) -> str:
    """The text as the display tokens spell it: ## pieces glued to the word before."""
    out = ""
    for token, special, cont in zip(data["tokens"], data["special"], data["continuation"], strict=True):
        if not special:
            out += token[2:] if cont else " " + token
    # Leave out pieces holding part of a UTF-8 character and lone word markers (Unigram's "▁" piece).
    return re.sub(r"<0x[0-9A-F]{2}>|\u2423", "", out).strip()


@pytest.mark.parametrize(
    ("family", "text", "spelled"),
    [
        ("roberta", "A café, today.", "A café , today ."),  # byte-level pieces decoded to UTF-8
        ("bert", "Unbelievably sleepy foxes", "unbelievably sleepy foxes"),
        ("distilbert", "The quick brown fox", "the quick brown fox"),
        ("albert", "The quick brown fox", "the quick brown fox"),
    ],
)
def test_display_tokens_are_readable(
    checkpoints: dict[str, Path], family: str, text: str, spelled: str
) -> None:
    data = attention_data(*load_for_viz(checkpoints[family]), text)
    assert _words(data) == spelled
    assert any(data["continuation"])  # the tiny vocabularies split some words
    marker = {"roberta": "Ġ", "albert": "▁", "bert": "##", "distilbert": "##"}[family]
    assert any(marker in t for t in data["raw_tokens"])  # the raw pieces keep the family's marker


def test_fine_tuned_checkpoint_shows_its_encoder(checkpoints: dict[str, Path]) -> None:
    for family in ("bert", "roberta"):
        path = checkpoints[f"{family}-classifier"]
        model, tokenizer = load_for_viz(path)
        assert type(model).__name__.endswith("ForSequenceClassification")
        data = attention_data(model, tokenizer, "The cat sleeps.")
        base = AutoModel.from_pretrained(path).eval()  # the encoder of the head checkpoint
        again = attention_data(base, tokenizer, "The cat sleeps.")
        assert data["attention"] == again["attention"]
        assert data["model"]["architecture"].endswith("ForSequenceClassification")


def test_limits_and_bad_input(checkpoints: dict[str, Path]) -> None:
    model, tokenizer = load_for_viz(checkpoints["bert"])
    long_text = " ".join(["fox"] * 100)
    with pytest.raises(BertForgeError, match=r"the input is \d+ tokens; the viewer shows at most 64"):
        attention_data(model, tokenizer, long_text)
    with pytest.raises(BertForgeError, match="at most 10.*--max-tokens"):
        attention_data(model, tokenizer, long_text, max_tokens=10)
    assert attention_data(model, tokenizer, "fox " * 20, max_tokens=64)["length"] == 22
    with pytest.raises(BertForgeError, match="empty"):
        attention_data(model, tokenizer, "   ")
    with pytest.raises(BertForgeError, match="characters"):
        attention_data(model, tokenizer, "x" * 6000)
    assert attention_data(model, tokenizer, "fox", "  ")["pair"] is None  # a blank pair is no pair
    with pytest.raises(BertForgeError, match="config.json"):
        load_for_viz(checkpoints["bert"] / "nowhere")


def test_bfloat16_model(checkpoints: dict[str, Path]) -> None:
    """A model served in bfloat16 (serve --bf16) still gives float rows that sum to 1."""
    model, tokenizer = load_for_viz(checkpoints["distilbert"])
    data = attention_data(model.to(torch.bfloat16), tokenizer, "The quick brown fox.")
    attention = np.asarray(data["attention"])
    assert attention.dtype == np.float64
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=2e-2)


# ------------------------------------------------------------------------------------ the page
def test_render_html_is_self_contained(checkpoints: dict[str, Path]) -> None:
    model, tokenizer = load_for_viz(checkpoints["bert"])
    hostile = "</script><script>alert(1)</script> & <b>"
    page = render_html(attention_data(model, tokenizer, "fox", hostile))
    assert page.count("</script>") == 2  # the data's script and the code's: the text closes nothing
    assert "alert(1)</script>" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)  # nothing to fetch
    assert '<link rel="stylesheet"' not in page and "@import" not in page
    assert "not an explanation" in page
    config = re.search(r'<script id="viz-config" type="application/json">(.*?)</script>', page, re.S)
    assert config is not None
    loaded = json.loads(config.group(1))
    assert loaded["mode"] == "static" and loaded["data"]["pair"] == hostile
    assert json.loads(script_json({"a": "\u2028<>&"})) == {"a": "\u2028<>&"}


def test_cli_html_writes_one_file(checkpoints: dict[str, Path], tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "sub" / "attention.html"
    code = main(["viz", str(checkpoints["roberta-classifier"]), "--html", str(out), "The cat.", "A dog."])
    assert code == 0 and out.is_file() and "wrote" in capsys.readouterr().err
    assert [p.name for p in out.parent.iterdir()] == ["attention.html"]  # no temporary file left
    assert "The cat." in out.read_text(encoding="utf-8")
    assert main(["viz", str(checkpoints["bert"]), "--html", str(tmp_path / "x.html")]) == 2
    assert "needs the text" in capsys.readouterr().err
    assert main(["viz", str(checkpoints["bert"]), "--html", str(tmp_path / "x.html"), "fox " * 80]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at most 64" in err and not (tmp_path / "x.html").exists()
    assert main(["viz", str(checkpoints["bert"]), "--html", str(tmp_path / "x.html"), "a", "b", "c"]) == 2
    assert "at most two texts" in capsys.readouterr().err
    assert main(["viz", str(checkpoints["bert"]), "The cat."]) == 2  # a text is for --html only
    assert "only read with --html" in capsys.readouterr().err
    assert main(["viz", str(checkpoints["bert"]), "--port", "70000"]) == 2
    assert "not a TCP port" in capsys.readouterr().err
    assert main(["viz", str(tmp_path / "missing"), "--html", str(tmp_path / "x.html"), "a"]) == 2
    assert "no config.json" in capsys.readouterr().err


# ------------------------------------------------------------------------------ the live server
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A uvicorn server for ``app`` on 127.0.0.1 and a free port, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _post(url: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_router_routes_and_errors(checkpoints: dict[str, Path]) -> None:
    from fastapi import FastAPI

    from bertforge.viz.web import create_app, viz_router

    with LiveServer(create_app(checkpoints["albert"])) as server:
        with urllib.request.urlopen(server.url("/"), timeout=30) as response:
            page = response.read().decode()
        assert response.status == 200 and '"api":"attention"' in page and '"mode":"live"' in page
        status, data = _post(server.url("/attention"), {"text": "The quick fox.", "pair": "A dog."})
        assert status == 200 and np.asarray(data["attention"]).shape[:2] == (LAYERS, HEADS)
        assert _post(server.url("/attention"), {"text": ""})[1]["detail"].startswith("the text is empty")
        status, data = _post(server.url("/attention"), {"text": "fox " * 100})
        assert status == 422 and "at most 64" in data["detail"]
        assert _post(server.url("/attention"), {"text": 5})[0] == 422
        assert _post(server.url("/attention"), b"not json")[0] == 422
        assert _post(server.url("/attention"), {"text": "x" * 6000})[0] == 422
    # Mounted under a prefix, as `bertforge serve` mounts it at /viz.
    model, tokenizer = load_for_viz(checkpoints["bert"])
    app = FastAPI()
    app.include_router(viz_router(model, tokenizer, name="tiny"), prefix="/viz")
    with LiveServer(app) as server:
        with urllib.request.urlopen(server.url("/viz"), timeout=30) as response:  # redirected to /viz/
            assert response.status == 200 and response.url.endswith("/viz/")
        assert _post(server.url("/viz/attention"), {"text": "fox"})[0] == 200


# ----------------------------------------------------------------------------- in a real browser
def _chromium() -> str | None:
    candidates = [os.environ.get("BERTFORGE_CHROMIUM")]
    candidates += [shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome")]
    candidates.append("/usr/lib/chromium/chromium")
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        pytest.skip(
            "no Chromium executable found (install Debian's: apt-get install -y --no-install-recommends "
            "chromium, or set BERTFORGE_CHROMIUM to a Chromium binary)"
        )
    from playwright.sync_api import sync_playwright  # the dev extra; drives the system's Chromium

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


def _watch(page: Any) -> list[str]:
    """Console errors and uncaught exceptions of ``page``, as they come."""
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


def _exercise(page: Any, layers: int, heads: int, tmp_path: Path, name: str) -> None:
    """What both the live page and the exported file must do once showing a text."""
    page.wait_for_selector("body[data-state=ready]", timeout=20000)
    assert page.locator("#model-view canvas.mv-map").count() == layers * heads
    assert "not an explanation" in page.inner_text("#caveat")
    page.screenshot(path=str(tmp_path / f"{name}-ready.png"), full_page=True)

    # Hover a token: the head view keeps only its lines (a new focus, fewer lines, other pixels).
    view = page.locator("#head-view")
    before = (view.get_attribute("data-lines"), page.eval_on_selector("#hv-canvas", "c => c.toDataURL()"))
    page.hover("#hv-left .hv-tok[data-pos='2']")
    assert view.get_attribute("data-focus") == "left:2"
    after = (view.get_attribute("data-lines"), page.eval_on_selector("#hv-canvas", "c => c.toDataURL()"))
    assert int(after[0]) < int(before[0]) and after[1] != before[1]
    assert "focused" in (page.get_attribute("#hv-left .hv-tok[data-pos='2']", "class") or "")
    page.screenshot(path=str(tmp_path / f"{name}-hover.png"), full_page=True)
    page.mouse.move(5, 5)  # leave: every line back
    assert view.get_attribute("data-focus") == "" and view.get_attribute("data-lines") == before[0]

    # Another layer, one head only: the head view redraws.
    if layers > 1:
        page.select_option("#layer", str(layers - 1))
        assert view.get_attribute("data-layer") == str(layers - 1)
    page.click("#heads-none")
    assert view.get_attribute("data-lines") == "0"
    page.click("#head-toggles .head-toggle[data-head='0']")
    assert int(view.get_attribute("data-lines") or 0) > 0
    page.click("#heads-all")

    # Hide [CLS]/[SEP]: fewer tokens in the list and the head view, maps still layers x heads.
    tokens = page.locator("#tokens .token")
    total, specials = tokens.count(), page.locator("#tokens .token.special").count()
    assert specials >= 2
    page.check("#hide-special")
    assert tokens.count() == total - specials and page.locator("#tokens .token.special").count() == 0
    assert page.locator("#hv-left .hv-tok").count() == total - specials
    assert page.locator("#model-view canvas.mv-map").count() == layers * heads
    page.screenshot(path=str(tmp_path / f"{name}-no-specials.png"), full_page=True)
    page.uncheck("#hide-special")
    assert tokens.count() == total

    # Click a map: it opens enlarged; Escape closes it.
    page.click(f"#model-view canvas.mv-map[data-layer='{layers - 1}'][data-head='{heads - 1}']")
    assert page.is_visible("#zoom") and page.get_attribute("#zoom", "data-head") == str(heads - 1)
    page.screenshot(path=str(tmp_path / f"{name}-zoom.png"))
    page.keyboard.press("Escape")
    assert not page.is_visible("#zoom")


@pytest.mark.slow
def test_live_page_in_chromium(browser: Any, tmp_path: Path) -> None:
    """The real all-MiniLM-L6-v2 (6 layers x 12 heads) behind the router, mounted at /viz as
    `bertforge serve` mounts it; a text typed into the page."""
    from fastapi import FastAPI

    from _helpers import minilm_path
    from bertforge.viz.web import viz_router

    model, tokenizer = load_for_viz(minilm_path())
    app = FastAPI()
    app.include_router(viz_router(model, tokenizer, name="all-MiniLM-L6-v2"), prefix="/viz")
    with LiveServer(app) as server:
        page = browser.new_page(viewport={"width": 1180, "height": 900})
        problems = _watch(page)
        page.goto(server.url("/viz/"))
        assert page.get_attribute("body", "data-state") == "empty"
        assert "all-MiniLM-L6-v2" in page.inner_text("#model-info")
        page.fill("#text", "The cat sat on the mat because it was tired.")
        page.fill("#pair", "Who was tired?")
        page.click("#submit")
        _exercise(page, 6, 12, tmp_path, "live")
        assert problems == []
        # A text past the limit: the server's message on the page, the page still usable.
        page.fill("#text", "word " * 80)
        page.click("#submit")
        page.wait_for_selector("body[data-state=error]")
        assert "at most 64" in page.inner_text("#message")
        assert not [p for p in problems if p.startswith("page error")]
        page.close()


@pytest.mark.slow
def test_exported_html_in_chromium(browser: Any, checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """`bertforge viz CKPT --html` on a fine-tuned (classifier) checkpoint, opened from file:// with
    every non-file request blocked: nothing is fetched, everything renders."""
    out = tmp_path / "attention.html"
    assert (
        main(["viz", str(checkpoints["bert-classifier"]), "--html", str(out), "The quick fox.", "A dog."])
        == 0
    )
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    requests: list[str] = []
    context.route("**/*", lambda route: (requests.append(route.request.url), route.continue_() if route.request.url.startswith(("file:", "data:")) else route.abort()))  # fmt: skip
    page = context.new_page()
    problems = _watch(page)
    page.goto(out.as_uri())
    assert page.is_hidden("#viz-form") and "The quick fox." in page.inner_text("#static-input")
    _exercise(page, LAYERS, HEADS, tmp_path, "file")
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    context.close()
