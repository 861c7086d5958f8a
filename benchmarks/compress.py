"""A fine-tuned teacher against its compressed forms, on the same dev file, in one process (scaffolding
for issue 10 item 4: the distilled student column takes a ``bertforge distill`` output via ``--student``).

For a fine-tuned checkpoint ``--teacher`` and a labelled ``--dev`` file, it makes (once, into
``--work``; reused when there) the int8 form (``bertforge quantize``: onnxruntime dynamic int8) and
the pruned form (``bertforge prune --target``), then measures every model with the code
``bertforge evaluate`` runs (:func:`bertforge.pipelines.evaluation.evaluate_examples`):

* the task's main metric on the dev file (first ``--dev-limit`` examples);
* parameters and size on disk (the weights file);
* latency at batch 1 (mean per example over the first ``--latency-examples``) and throughput at batch 32
  (examples/s over the same examples), in fp32 and, for PyTorch models, bf16 (``--no-bf16`` skips it).

Timed rounds alternate the models (``--rounds``, best kept), so load from other processes falls on
all of them alike. A ratio column compares each row with the teacher in fp32.

``--student-int8`` adds the distilled student's int8 form (quantised into ``--work/student-int8`` on
every run, since the student changes between runs): distillation and quantisation together.

``--onnx`` adds the teacher and the distilled student in fp32 under onnxruntime (``bertforge export
--format onnx``, into ``--work``): at batch 1 on short sentences much of PyTorch's time is its cost
per operator and module call, which does not shrink with the width, and onnxruntime's fused graph
shows how fast the student is when that cost is taken away, in one runtime for both.

``--alone`` adds the same student trained on the gold labels only (``bertforge distill --alpha 0``
or ``finetune`` from the same preset), the row distillation has to beat. A pruned row is named by the
heads it lost (pruning stops early when the metric falls below its floor), and a column gives each
metric's distance from the teacher's in points.

    python benchmarks/compress.py --teacher runs/conll --dev ../shared/datasets/conll2003/eng.testa
        [--student runs/conll-distilled [--student-int8]] [--alone runs/conll-alone] [--work DIR] [--target 0.4]
        [--dev-limit N] [--latency-examples 64] [--rounds 3] [--threads 1] [--no-bf16] [--onnx] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import onnxruntime  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from bertforge.export.onnx import export_onnx  # noqa: E402
from bertforge.export.quantize import quantize_checkpoint, weights_size  # noqa: E402
from bertforge.export.runtime import MODEL_FILE, QUANTIZED_FILE, OnnxModel  # noqa: E402
from bertforge.fileio import atomic_write_json  # noqa: E402
from bertforge.pipelines.common import InferenceSettings, detect_task, load_task_model, load_tokenizer  # noqa: E402
from bertforge.pipelines.evaluation import evaluate_examples, predict_examples, read_examples  # noqa: E402
from bertforge.tasks.registry import get_task  # noqa: E402
from bertforge.train.prune import PruneConfig, prune_checkpoint  # noqa: E402


@dataclass
class Row:
    name: str
    model: Any
    path: Path
    dtype: torch.dtype | None  # inference dtype (None: fp32)
    parameters: int
    size_bytes: int
    metric: float = float("nan")
    latency_ms: float = float("inf")
    throughput: float = 0.0


def _pytorch_rows(name: str, path: Path, task: str, bf16: bool) -> list[Row]:
    model, _ = load_task_model(path, task)
    params, size = model.num_parameters(), weights_size(path)
    if model.config.pruned_heads:  # the heads actually removed, which the floor may have kept below target
        total = model.config.num_hidden_layers * model.config.num_attention_heads
        removed = sum(len(heads) for heads in model.config.pruned_heads.values())
        name = f"{name} ({removed}/{total} heads)"
    rows = [Row(f"{name} fp32", model, path, None, params, size)]
    if bf16:
        rows.append(Row(f"{name} bf16", model, path, torch.bfloat16, params, size))
    return rows


def _int8_row(name: str, path: Path, parameters: int, threads: int) -> Row:
    model = OnnxModel.from_pretrained(path, threads=threads)
    return Row(name, model, path, None, parameters, (path / QUANTIZED_FILE).stat().st_size)


def _onnx_row(name: str, checkpoint: Path, out: Path, parameters: int, threads: int) -> Row:
    """``checkpoint`` exported to fp32 ONNX in ``out`` (once; reused when there) under onnxruntime."""
    if not (out / MODEL_FILE).is_file():
        export_onnx(checkpoint, out, threads=threads)
    model = OnnxModel.from_pretrained(out, quantized=False, threads=threads)
    return Row(name, model, out, None, parameters, weights_size(checkpoint))


def _timed(row: Row, task: str, tokenizer: Any, examples: list[Any], batch_size: int) -> float:
    settings = InferenceSettings.for_checkpoint(row.path, task, batch_size=batch_size, dtype=row.dtype)
    start = time.perf_counter()
    predict_examples(task, row.model, tokenizer, examples, settings)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True, type=Path, help="fine-tuned checkpoint")
    parser.add_argument("--dev", required=True, help="labelled dev file")
    parser.add_argument("--student", type=Path, help="a distilled student (bertforge distill output)")
    parser.add_argument("--student-int8", action="store_true", help="add the student's int8 form")
    parser.add_argument("--alone", type=Path, help="the same student trained without the teacher")
    parser.add_argument("--work", type=Path, default=Path("compress-bench"), help="where the forms go")
    parser.add_argument("--target", type=float, default=0.4, help="share of heads to prune")
    parser.add_argument("--dev-limit", type=int)
    parser.add_argument("--latency-examples", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 rows")
    parser.add_argument("--onnx", action="store_true", help="add fp32 onnxruntime rows (teacher, student)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task = detect_task(args.teacher)
    int8_dir, pruned_dir = args.work / "int8", args.work / "pruned"
    if not (int8_dir / QUANTIZED_FILE).is_file():
        quantize_checkpoint(args.teacher, int8_dir, threads=args.threads)
    if not (pruned_dir / "config.json").is_file():
        prune_checkpoint(
            PruneConfig(
                str(args.teacher), args.dev, str(pruned_dir), target=args.target, dev_limit=args.dev_limit
            )
        )

    bf16 = not args.no_bf16
    rows = _pytorch_rows("teacher", args.teacher, task, bf16)
    teacher_params = rows[0].parameters
    rows.append(_int8_row("teacher int8", int8_dir, teacher_params, args.threads))
    if args.onnx:
        rows.append(
            _onnx_row(
                "teacher fp32, onnxruntime", args.teacher, args.work / "onnx", teacher_params, args.threads
            )
        )
    rows += _pytorch_rows("pruned", pruned_dir, task, bf16)
    if args.student is not None:
        rows += _pytorch_rows("student, distilled", args.student, task, bf16)
        student_params = rows[-1].parameters
        if args.onnx:  # re-exported on every run, as the student changes between runs
            student_onnx = args.work / "student-onnx"
            shutil.rmtree(student_onnx, ignore_errors=True)
            rows.append(
                _onnx_row(
                    "student, distilled, fp32, onnxruntime",
                    args.student,
                    student_onnx,
                    student_params,
                    args.threads,
                )
            )
        if args.student_int8:
            student_int8 = args.work / "student-int8"
            quantize_checkpoint(args.student, student_int8, threads=args.threads)
            rows.append(_int8_row("student, distilled, int8", student_int8, student_params, args.threads))
    if args.alone is not None:
        rows += _pytorch_rows("student, no teacher", args.alone, task, bf16)

    tokenizer = load_tokenizer(args.teacher)
    examples, _ = read_examples(task, args.dev)
    examples = examples[: args.dev_limit] if args.dev_limit else examples
    timed = examples[: args.latency_examples]
    load_before = os.getloadavg()[0]
    for row in rows:
        settings = InferenceSettings.for_checkpoint(row.path, task, dtype=row.dtype)
        metrics, _ = evaluate_examples(task, row.model, tokenizer, examples, settings)
        row.metric = float(next(iter(metrics.values())))  # the main metric comes first
    for _ in range(args.rounds):
        for row in rows:
            row.latency_ms = min(row.latency_ms, 1000 * _timed(row, task, tokenizer, timed, 1) / len(timed))
            row.throughput = max(row.throughput, len(timed) / _timed(row, task, tokenizer, timed, 32))

    load_after = os.getloadavg()[0]

    base = rows[0]
    metric_name = get_task(task).main_metric
    # QA's F1 is in points already (SQuAD's scale); the other tasks' metrics are in [0, 1]
    points = 1.0 if task == "qa" else 100.0
    print(
        f"task {task}, dev {args.dev} ({len(examples)} examples, {len(timed)} timed), {args.threads} "
        f"thread(s), {args.rounds} rounds; torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}; load average {load_before:.1f} when "
        f"the measurements started, {load_after:.1f} when they ended"
    )
    print(
        f"| model | {metric_name} | vs teacher (points) | parameters | size MB | batch-1 ms | speed-up | "
        "batch-32 ex/s | speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row.name} | {row.metric:.4f} | {points * (row.metric - base.metric):+.1f} | {row.parameters:,} | "
            f"{row.size_bytes / 1e6:.1f} | {row.latency_ms:.1f} | {base.latency_ms / row.latency_ms:.2f}x | "
            f"{row.throughput:.1f} | {row.throughput / base.throughput:.2f}x |"
        )
    if args.json:
        fields = ("name", "metric", "parameters", "size_bytes", "latency_ms", "throughput")
        atomic_write_json(args.json, [{f: getattr(r, f) for f in fields} for r in rows])


if __name__ == "__main__":
    main()
