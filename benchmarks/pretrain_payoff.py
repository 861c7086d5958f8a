"""Does pretraining pay off downstream? A pretrained model against its random-init twin, over seeds.

Given a pretrained model directory (``OUT/model`` of ``bertforge pretrain``, e.g. from
``recipes/cpu-hour.toml``), this script

1. builds the *random-init twin*: the same ``config.json`` architecture, the same tokenizer, fresh
   weights drawn by the same initialiser pretraining starts from (``AutoModelForMaskedLM.from_config``
   after ``torch.manual_seed(--init-seed)``), saved beside the results as ``OUT/random-init/``;
2. fine-tunes both with exactly the same recipe (``bertforge finetune``: ``--epochs``, ``--lr``,
   ``--batch-size``, ``--max-seq-length``, ``--dropout``, the first ``--train-limit`` training
   examples, ``--seeds``) on three tasks of ``../shared/datasets``:

   * ChnSentiCorp (Chinese sentiment, dev accuracy),
   * CLUENER (Chinese fine-grained NER, dev entity F1),
   * CoNLL-2003 (English NER, ``eng.testa`` entity F1);

3. prints, per task, mean ± sample std over seeds for each arm and the difference of the means.

Each (task, arm) is one ``bertforge finetune --seeds`` run in its own single-threaded process
(``--jobs`` of them at once: 2 suits a 2-core machine); its ``summary.json`` is reused when the
script is rerun with the same settings, so an interrupted comparison continues where it stopped
(``--fresh`` redoes everything). ``--arms random-init`` runs one arm alone (e.g. while pretraining
still runs, from any checkpoint of the same architecture).

``--curve CKPT [CKPT ...]`` fine-tunes intermediate pretraining checkpoints (``checkpoint-NNNNNN``
directories) on ChnSentiCorp with the first seed and the same recipe, and prints downstream accuracy
against the pretraining step, the checkpoint's held-out MLM accuracy (from the run's
``metrics.jsonl``) and how evenly its last layer's [CLS] attends over the text (1.0: uniform, as at
random init): whether the payoff grows with pretraining, and why a classifier on [CLS] may start
worse from an early checkpoint than from random weights. ``--checks`` looks for defects instead:
which weights reach the task models, whether the fine-tuning tokenizer is the pretraining one, and
how much of each task the vocabulary spells.

    python benchmarks/pretrain_payoff.py --model runs/cpu-hour/model [--out runs/payoff]
        [--tasks chnsenticorp,cluener,conll2003] [--seeds 0,1,2] [--train-limit 2000] [--epochs 3]
        [--lr 3e-4] [--jobs 2] [--data-root DIR]
    python benchmarks/pretrain_payoff.py --curve runs/cpu-hour/checkpoint-000500 ... [--model DIR]
    python benchmarks/pretrain_payoff.py --checks --model runs/cpu-hour/model
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

from bertforge.payoff import ARMS, build_random_twin  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "datasets"
FALLBACK_DATA = Path("/work/shared/datasets")


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # bertforge finetune --task
    train: str  # relative to the data root
    dev: str
    metric: str  # the dev metric compared (summary.json's main metric)


TASKS = {
    "chnsenticorp": Task(
        "chnsenticorp", "classification", "chnsenticorp/train.tsv", "chnsenticorp/dev.tsv", "accuracy"
    ),
    "cluener": Task("cluener", "ner", "cluener/train.json", "cluener/dev.json", "f1"),
    "conll2003": Task("conll2003", "ner", "conll2003/eng.train", "conll2003/eng.testa", "f1"),
}


def finetune_command(args: argparse.Namespace, task: Task, model: Path, out: Path, seeds: str) -> list[str]:
    root = args.data_root
    return [
        sys.executable, "-m", "bertforge", "finetune",
        "--task", task.kind,
        "--model", str(model),
        "--train", str(root / task.train),
        "--dev", str(root / task.dev),
        "--out", str(out),
        "--seeds", seeds,
        "--epochs", str(args.epochs),
        "--lr", str(args.lr),
        "--batch-size", str(args.batch_size),
        "--max-seq-length", str(args.max_seq_length),
        "--dropout", str(args.dropout),
        *(["--train-limit", str(args.train_limit)] if args.train_limit else []),
        *(["--dev-limit", str(args.dev_limit)] if args.dev_limit else []),
        "--keep-checkpoints", "0",
    ]  # fmt: skip


def run_job(command: list[str], out: Path, fresh: bool) -> dict[str, Any]:
    """Run one ``finetune --seeds`` set single-threaded; its summary.json, reused when the same
    command already finished into ``out``."""
    summary, recorded = out / "summary.json", out.with_name(out.name + ".command.json")
    same = recorded.exists() and json.loads(recorded.read_text()) == command[1:]  # any interpreter
    if summary.exists() and same and not fresh:
        return json.loads(summary.read_text())
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    log = out.with_name(out.name + ".log")
    with log.open("w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}); see {log}")
    recorded.write_text(json.dumps(command[1:]))
    print(f"  done {out} in {time.perf_counter() - start:.0f}s", flush=True)
    return json.loads(summary.read_text())


def per_seed(summary: dict[str, Any], metric: str) -> list[float]:
    return [float(run["dev"][metric]) for run in summary["runs"]]


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{100 * statistics.mean(values):.1f} ± {100 * std:.1f}"


def compare(args: argparse.Namespace) -> None:
    out: Path = args.out
    twin = build_random_twin(args.model, out / "random-init", args.init_seed)
    arms = {
        arm: model for arm, model in (("pretrained", args.model), ("random-init", twin)) if arm in args.arms
    }
    jobs = [
        (task, arm, finetune_command(args, task, model, out / f"{task.name}-{arm}", args.seeds))
        for task in (TASKS[name] for name in args.tasks)
        for arm, model in arms.items()
    ]
    with ThreadPoolExecutor(args.jobs) as pool:
        summaries = list(
            pool.map(lambda job: run_job(job[2], out / f"{job[0].name}-{job[1]}", args.fresh), jobs)
        )
    if set(args.arms) != set(ARMS):
        return  # one arm alone (run it early, e.g. random init while pretraining runs): no table
    results = {
        (task.name, arm): per_seed(s, task.metric) for (task, arm, _), s in zip(jobs, summaries, strict=True)
    }
    lines = [
        "| task (dev metric) | pretrained | random init | difference |",
        "|---|---|---|---|",
    ]
    for name in args.tasks:
        task = TASKS[name]
        pre, rnd = results[(name, "pretrained")], results[(name, "random-init")]
        diff = 100 * (statistics.mean(pre) - statistics.mean(rnd))
        lines.append(f"| {name} ({task.metric}) | {mean_std(pre)} | {mean_std(rnd)} | {diff:+.1f} |")
    table = "\n".join(lines)
    print(f"\nmean ± std over seeds {args.seeds}, in points (x100)\n{table}")
    (out / "table.md").write_text(table + "\n")
    (out / "results.json").write_text(
        json.dumps({f"{task}/{arm}": values for (task, arm), values in results.items()}, indent=1)
    )


def checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name.rsplit("-", 1)[-1])


def eval_records(run_dir: Path) -> Iterator[dict[str, Any]]:
    metrics = run_dir / "metrics.jsonl"
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            record = json.loads(line)
            if record.get("event") == "eval":
                yield record


def cls_attention_spread(model_dir: Path, texts: list[str]) -> float:
    """How evenly the last layer's [CLS] attends over each text: the entropy of its attention
    (averaged over heads and texts) over the entropy of uniform attention, log(tokens). 1.0 means
    [CLS] reads the mean of the tokens, a bag of words (random init is there); lower means it looks
    at a few positions, and a classifier on [CLS] sees less of the text until fine-tuning moves it."""
    import torch

    from bertforge.auto import AutoModel
    from bertforge.pipelines.common import load_tokenizer

    model, tokenizer = AutoModel.from_pretrained(model_dir).eval(), load_tokenizer(model_dir)
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.inference_mode():
        outputs = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_attentions=True
        )
    from_cls = outputs.attentions[-1][:, :, 0, :]  # (B, heads, T): where [CLS] looks
    entropy = -(from_cls * from_cls.clamp_min(1e-12).log()).sum(-1)  # (B, heads); padding has 0 weight
    uniform = batch["attention_mask"].sum(1).float().log().unsqueeze(1)  # (B, 1)
    return float((entropy / uniform).mean())


def curve(args: argparse.Namespace) -> None:
    """ChnSentiCorp after fine-tuning each pretraining checkpoint (one seed), with the checkpoint's
    held-out MLM accuracy and [CLS] attention spread. Step 0 is the random-init twin and ``--model``
    (the final model) the last step: the first seed of the comparison's arms when they have run."""
    from bertforge.tasks.registry import get_task

    task = TASKS["chnsenticorp"]
    checkpoints = sorted(args.curve, key=checkpoint_step)
    evals = {r["step"]: r for r in eval_records(checkpoints[0].parent)}
    twin = build_random_twin(checkpoints[0], args.out / "random-init", args.init_seed)
    seed = args.seeds.split(",")[0]
    arm_out = args.out / f"{task.name}-random-init"
    random_job = (0, twin, arm_out, args.seeds) if (arm_out / "summary.json").exists() else None
    jobs = [(checkpoint_step(c), c, args.out / f"curve-{checkpoint_step(c)}", seed) for c in checkpoints]
    jobs.append(random_job or (0, twin, args.out / "curve-0", seed))
    if args.model is not None:
        final_step, arm_out = max(evals), args.out / f"{task.name}-pretrained"
        done = (arm_out / "summary.json").exists()
        jobs.append(
            (final_step, args.model, *((arm_out, args.seeds) if done else (args.out / "curve-final", seed)))
        )
    with ThreadPoolExecutor(args.jobs) as pool:
        summaries = list(
            pool.map(
                lambda job: run_job(finetune_command(args, task, job[1], job[2], job[3]), job[2], args.fresh),
                jobs,
            )
        )
    texts = [e.text for e in get_task(task.kind).read(args.data_root / task.dev, {}).examples[:128]]
    print(f"\nChnSentiCorp dev accuracy after fine-tuning (seed {seed}) against pretraining progress")
    print("| pretraining step | held-out MLM accuracy | [CLS] attention spread | ChnSentiCorp accuracy |")
    print("|---|---|---|---|")
    for (step, model, _, _), summary in sorted(zip(jobs, summaries, strict=True), key=lambda j: j[0][0]):
        mlm = evals.get(step, {}).get("eval_mlm_accuracy")
        shown = f"{100 * mlm:.1f}" if mlm is not None else "-"
        label = f"{step}" if step else "0 (random init)"
        accuracy = 100 * per_seed(summary, task.metric)[0]
        print(f"| {label} | {shown} | {cls_attention_spread(model, texts):.2f} | {accuracy:.1f} |")


def checks(args: argparse.Namespace) -> None:
    """Defects that would waste a good pretraining: weights that do not reach the task model, a
    tokenizer that differs from the pretraining one, text the vocabulary cannot spell."""
    from safetensors.torch import load_file

    from bertforge.auto import AutoModelForSequenceClassification, AutoModelForTokenClassification
    from bertforge.data.dataset import TokenDataset
    from bertforge.pipelines.common import load_tokenizer
    from bertforge.tasks.registry import get_task
    from bertforge.train.recipe import load_recipe

    model_dir: Path = args.model
    stored = load_file(str(model_dir / "model.safetensors"))
    for auto in (AutoModelForSequenceClassification, AutoModelForTokenClassification):
        model = auto.from_pretrained(model_dir, num_labels=3)
        state = model.state_dict()
        loaded = [k for k in state if k in stored]
        fresh = sorted(k for k in state if k not in stored)
        worst = max(float((state[k] - stored[k]).abs().max()) for k in loaded)
        print(
            f"{type(model).__name__}: {len(loaded)} tensors from the checkpoint (largest difference "
            f"{worst:.1e}), newly initialised: {', '.join(fresh)}"
        )
    print(
        f"checkpoint tensors not used by the task models: "
        f"{', '.join(sorted(k for k in stored if k not in state and not k.startswith('cls.'))) or 'none'}"
    )
    tokenizer = load_tokenizer(model_dir)
    run_config = model_dir.parent / "resolved_config.toml"
    if run_config.exists():
        dataset = load_recipe(run_config).data.dataset
        TokenDataset.open(dataset, split="train").check_tokenizer(tokenizer)  # raises on a mismatch
        print(f"the fine-tuning tokenizer ({model_dir}) is the one the dataset {dataset} was built with")
    for task in TASKS.values():
        examples = get_task(task.kind).read(args.data_root / task.dev, {}).examples
        texts = [e.text if task.kind == "classification" else " ".join(e.words) for e in examples]
        ids = [i for text in texts for i in tokenizer.encode(text, add_special_tokens=False)]
        unknown = sum(i == tokenizer.unk_token_id for i in ids)
        lengths = sorted(len(tokenizer.encode(t)) for t in texts)
        print(
            f"{task.name} dev: {unknown / len(ids):.2%} [UNK]; tokens per example median "
            f"{lengths[len(lengths) // 2]}, 90th percentile {lengths[9 * len(lengths) // 10]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, help="the pretrained model directory (e.g. runs/cpu-hour/model)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/payoff"))
    parser.add_argument("--tasks", type=lambda s: s.split(","), default=list(TASKS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--arms", type=lambda s: s.split(","), default=list(ARMS), help="pretrained,random-init"
    )
    parser.add_argument("--train-limit", type=int, default=2000, help="first N training examples (0: all)")
    parser.add_argument("--dev-limit", type=int, default=0, help="first N dev examples (0: all)")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    # A Cramming-style checkpoint says dropout 0 (pretraining is one pass); fine-tuning on a few
    # thousand examples wants BERT's 0.1, in both arms.
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--init-seed", type=int, default=0, help="seed of the random-init twin's weights")
    parser.add_argument("--jobs", type=int, default=2, help="fine-tunes at once, one thread each")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument(
        "--curve", type=Path, nargs="+", help="pretraining checkpoints: ChnSentiCorp, one seed"
    )
    parser.add_argument("--checks", action="store_true", help="defect checks of --model, then exit")
    parser.add_argument("--fresh", action="store_true", help="rerun sets whose summary.json exists")
    args = parser.parse_args()
    if args.data_root is None:
        args.data_root = DEFAULT_DATA if DEFAULT_DATA.exists() else FALLBACK_DATA
    unknown = sorted(set(args.tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    unknown = sorted(set(args.arms) - set(ARMS))
    if unknown:
        parser.error(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    if args.checks:
        checks(args)
    elif args.curve:
        curve(args)
    elif args.model is None:
        parser.error("pass --model DIR (the pretrained model) or --curve CHECKPOINT ...")
    else:
        compare(args)


if __name__ == "__main__":
    main()
