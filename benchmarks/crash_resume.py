"""Crash-safe training, proven: SIGKILL a tiny pretraining (and a tiny fine-tuning) run at random
moments, some aimed at a checkpoint being written, resume after every kill, and check that

* resume takes the newest complete checkpoint, never a partial one: the benchmark decides which
  checkpoint that is with its own SHA-256 check of each manifest (and, for pretraining, by comparing
  the checkpoint's weights with the uninterrupted run's at the same step), then reads which one the
  resumed process took from its log; a few times it also damages the newest checkpoint (truncates
  its weights, as a copy cut short would) and checks that resume falls back to the one before;
* the losses (every record in metrics.jsonl but the wall-clock fields) equal the uninterrupted
  run's step for step, checked after every kill and at the end;
* temporary directories never accumulate (at most the one being written at a kill, none at the end);
* the final weights equal the uninterrupted run's.

Kills are aimed at a save through the test hook ``_BERTFORGE_TEST_SAVE_PAUSE`` (the save sleeps
that long after the model files, after the trainer state and after the manifest): the benchmark
waits for ``.checkpoint-NNNNNN.tmp`` to appear and kills at a random moment inside the save. The
other kills fall at a random moment of the run, start-up and resume included.

    python benchmarks/crash_resume.py                     # both sections, 24 + 20 kills
    python benchmarks/crash_resume.py --task pretrain --kills 30 --json tally.json

Everything runs on one CPU thread (OMP_NUM_THREADS=1) so the runs are bit-for-bit deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import bertforge.resources

CORPUS = Path(bertforge.resources.__file__).parent / "corpus"
PAUSE_ENV = "_BERTFORGE_TEST_SAVE_PAUSE"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
TEMP = re.compile(r"^\.(checkpoint-\d+|model)\.(tmp|old)$|^\..+\.[0-9a-f]{12}\.tmp$")
RESUMED = re.compile(r"resumed from (\S+) at step (\d+)")
WALL_CLOCK = {"tokens_per_s", "elapsed_s", "elapsed"}


@dataclass
class Tally:
    task: str
    steps: int = 0
    kills: int = 0
    kills_during_save: int = 0
    kills_at_startup: int = 0
    corrupted: int = 0  # newest checkpoint damaged on purpose after a kill
    resumes: int = 0  # resumed processes that reached the resume (logged the checkpoint they took)
    resume_checks: int = 0
    wrong_resumes: list[str] = field(default_factory=list)
    loss_checks: int = 0  # metric records compared with the uninterrupted run
    loss_mismatches: int = 0
    mismatch_examples: list[str] = field(default_factory=list)
    max_temporaries_at_a_kill: int = 0
    leftovers: list[str] = field(default_factory=list)
    final_max_weight_diff: float | None = None
    seconds: float = 0.0

    def ok(self) -> bool:
        return (
            not self.wrong_resumes
            and self.loss_mismatches == 0
            and not self.leftovers
            and self.max_temporaries_at_a_kill <= 1
            and self.final_max_weight_diff == 0.0
        )


# ------------------------------------------------------------------------------------ helpers
def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def complete(directory: Path) -> bool:
    """The benchmark's own check of a checkpoint directory against its manifest."""
    try:
        files = json.loads((directory / "manifest.json").read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    return all(
        (directory / name).is_file()
        and (directory / name).stat().st_size == meta["size"]
        and sha256(directory / name) == meta["sha256"]
        for name, meta in files.items()
    )


def expected_resume(out: Path) -> Path | None:
    """The newest complete checkpoint a resume should take (an ``.old`` whose directory is missing
    counts: it is the complete original of an interrupted replacement and is renamed back)."""
    candidates: dict[int, Path] = {}
    if out.is_dir():
        for entry in out.iterdir():
            if m := CHECKPOINT.match(entry.name):
                candidates[int(m.group(1))] = entry
        for entry in out.iterdir():
            m = re.match(r"^\.(checkpoint-(\d+))\.old$", entry.name)
            if m and int(m.group(2)) not in candidates:
                candidates[int(m.group(2))] = entry
    for step in sorted(candidates, reverse=True):
        if complete(candidates[step]):
            return out / f"checkpoint-{step:06d}"
    return None


def temporaries(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if TEMP.match(p.name)) if out.is_dir() else []


def records(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:  # a line cut by the kill would show up here (never seen)
            found.append({"event": "torn line", "step": -1, "text": line})
    return found


def comparable(record: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in record.items() if k not in WALL_CLOCK))


def compare_metrics(out: Path, reference: dict[tuple, tuple], tally: Tally) -> None:
    for record in records(out):
        tally.loss_checks += 1
        key = (record.get("event"), record.get("step"))
        if reference.get(key) != comparable(record):
            tally.loss_mismatches += 1
            if len(tally.mismatch_examples) < 5:
                tally.mismatch_examples.append(f"{key}: got {record}, expected {reference.get(key)}")


def max_weight_diff(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(a), load_file(b)
    if wa.keys() != wb.keys():
        return float("inf")
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa) if wa else 0.0


def child_env(pause: float | None) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(bertforge.resources.__file__).parents[2]), env.get("PYTHONPATH", "")]
    )
    env.pop(PAUSE_ENV, None)
    if pause:
        env[PAUSE_ENV] = str(pause)
    return env


def launch(cmd: list[str], log: Path, pause: float | None) -> subprocess.Popen:
    handle = open(log, "w")  # noqa: SIM115 (closed by the caller through proc.log_handle)
    proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=child_env(pause))
    proc.log_handle = handle  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen) -> int:
    code = proc.wait()
    proc.log_handle.close()  # type: ignore[attr-defined]
    return code


def wait_for(predicate, proc: subprocess.Popen, timeout: float, poll: float = 0.002) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        if predicate():
            return True
        time.sleep(poll)
    return False


# ------------------------------------------------------------------------------------ the run
def crash_loop(
    name: str,
    cmd: list[str],
    out: Path,
    reference_out: Path,
    final_weights: str,
    kills: int,
    rng: random.Random,
    pause: float,
    reference_checkpoints: Path | None,
    keep_after: int,
) -> Tally:
    """Run ``cmd`` in ``out`` (a fresh run, then ``--resume``) until it completes, killing it
    ``kills`` times; compare with the uninterrupted run in ``reference_out``."""
    tally = Tally(task=name)
    reference = {(r.get("event"), r.get("step")): comparable(r) for r in records(reference_out)}
    tally.steps = max((r.get("step", 0) for r in records(reference_out)), default=0)
    logs = out.parent / f"{out.name}-logs"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    start = time.monotonic()
    launches = 0
    expected: Path | None = None
    while True:
        aim = tally.kills < kills and tally.kills % 3 == 0  # every third kill lands inside a save
        resume = launches > 0
        log = logs / f"{launches:03d}.log"
        proc = launch([*cmd, "--resume"] if resume else cmd, log, pause if aim else None)
        launches += 1
        killed = False
        if tally.kills < kills:
            last_step = max((r.get("step", 0) for r in records(out)), default=0)
            if aim:
                # Wait for a save to start, then kill at a random moment inside it.
                saving = lambda: any(n.startswith(".checkpoint-") for n in temporaries(out))  # noqa: E731
                if wait_for(saving, proc, timeout=300):
                    time.sleep(rng.uniform(0, 3.2 * pause))
            elif rng.random() < 0.2:
                time.sleep(rng.uniform(0.05, 2.5))  # during start-up: imports, cleanup, resume
                tally.kills_at_startup += 1
            else:
                # A random moment once this process trains (its first new metrics line).
                def fresh(since: int = last_step) -> bool:
                    return max((r.get("step", 0) for r in records(out)), default=0) > since

                if wait_for(fresh, proc, timeout=300):
                    time.sleep(rng.uniform(0, 1.5))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
        code = finish(proc)
        text = log.read_text(errors="replace")
        # Which checkpoint did it resume from, and was it the right one?
        if resume:
            found = RESUMED.search(text)
            if found:
                tally.resumes += 1
                tally.resume_checks += 1
                took = Path(found.group(1))
                if expected is None or took != expected:
                    tally.wrong_resumes.append(f"launch {launches - 1}: took {took}, expected {expected}")
            elif "starting from scratch" in text:
                tally.resume_checks += 1
                if expected is not None:
                    tally.wrong_resumes.append(f"launch {launches - 1}: started afresh, expected {expected}")
        if not killed:
            if code != 0:
                raise SystemExit(f"{name}: the run failed (exit {code}); see {log}:\n{text[-3000:]}")
            break
        tally.kills += 1
        temps = temporaries(out)
        tally.max_temporaries_at_a_kill = max(tally.max_temporaries_at_a_kill, len(temps))
        if any(t.startswith(".checkpoint-") for t in temps):
            tally.kills_during_save += 1
        compare_metrics(out, reference, tally)
        # Now and then damage the newest checkpoint: resume must fall back to the one before.
        checkpoints = sorted(p for p in out.iterdir() if CHECKPOINT.match(p.name)) if out.is_dir() else []
        if tally.kills % 7 == 0 and len(checkpoints) >= 2 and complete(checkpoints[-1]):
            weights = checkpoints[-1] / "model.safetensors"
            os.truncate(weights, weights.stat().st_size // 2)
            tally.corrupted += 1
        expected = expected_resume(out)
        if expected is not None and reference_checkpoints is not None:
            # Complete means correct: the weights are the uninterrupted run's at that step.
            source = expected if expected.is_dir() else expected.parent / f".{expected.name}.old"
            ref = reference_checkpoints / expected.name / "model.safetensors"
            if sha256(source / "model.safetensors") != sha256(ref):
                tally.wrong_resumes.append(
                    f"{expected} is complete but its weights differ from the reference"
                )
    tally.seconds = round(time.monotonic() - start, 1)
    compare_metrics(out, reference, tally)
    if {comparable(r) for r in records(out)} != set(reference.values()):
        tally.loss_mismatches += 1
        tally.mismatch_examples.append(
            "the final metrics.jsonl does not hold exactly the reference's records"
        )
    tally.leftovers = temporaries(out)
    extra = [p.name for p in out.iterdir() if CHECKPOINT.match(p.name)]
    if len(extra) > keep_after:
        tally.leftovers += [f"{len(extra)} checkpoints kept, expected at most {keep_after}"]
    tally.final_max_weight_diff = max_weight_diff(out / final_weights, reference_out / final_weights)
    return tally


# ------------------------------------------------------------------------------------ sections
def python_cli() -> list[str]:
    return [sys.executable, "-m", "bertforge.cli", "-v"]


def prepare_pretraining(work: Path, steps: int, save_every: int) -> tuple[list[str], list[str]]:
    """A WordPiece vocabulary and a dataset from the bundled corpus; the pretrain command line."""
    from bertforge.data.build import build_dataset
    from bertforge.tokenizer import BertTokenizer

    corpus = work / "corpus.txt"
    text = (CORPUS / "en_alice.txt").read_text(encoding="utf-8").splitlines()[:1500]
    corpus.write_text("\n".join(text) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer.train([corpus], vocab_size=400, save_to=work / "tokenizer")
    build_dataset([corpus], tokenizer, work / "data", eval_fraction=0.05)
    base = [
        *python_cli(), "pretrain",
        "--data.dataset", str(work / "data"), "--data.tokenizer", str(work / "tokenizer"),
        "--data.max_seq_length", "32", "--model.preset", "bert-tiny", "--model.hidden_size", "32",
        "--model.num_hidden_layers", "2", "--model.num_attention_heads", "4",
        "--model.intermediate_size", "37", "--model.max_position_embeddings", "64",
        "--train.batch_size", "8", "--train.max_steps", str(steps), "--train.log_every", "1",
        "--train.eval_every", str(save_every * 3), "--train.eval_batches", "2",
        "--train.save_every", str(save_every), "--train.dtype", "fp32", "--train.device", "cpu",
    ]  # fmt: skip
    return base + ["--train.keep_last", "3"], base + ["--train.keep_last", "100000"]


def prepare_finetuning(work: Path, model: Path, examples: int) -> list[str]:
    """A sentence-classification file from the bundled corpus (does the line mention a person
    pronoun?), fine-tuning the tiny pretrained model."""
    rng = random.Random(0)
    lines = [
        line.strip()
        for book in ("en_peter_pan.txt", "en_jungle_book.txt")
        for line in (CORPUS / book).read_text(encoding="utf-8").splitlines()
        if 30 < len(line.strip()) < 200 and "\t" not in line
    ]
    rng.shuffle(lines)

    def label(line: str) -> str:
        return "person" if re.search(r"\b(he|she|him|her)\b", line, re.I) else "other"

    for split, chunk in (("train", lines[:examples]), ("dev", lines[examples : examples + 64])):
        rows = ["text\tlabel", *(f"{line}\t{label(line)}" for line in chunk)]
        (work / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return [
        *python_cli(), "finetune", "--task", "classification", "--model", str(model),
        "--train", str(work / "train.tsv"), "--dev", str(work / "dev.tsv"),
        "--epochs", "3", "--batch-size", "8", "--lr", "1e-3", "--max-seq-length", "48",
        "--eval-steps", "15", "--save-steps", "5", "--keep-checkpoints", "2", "--eval-batch-size", "64",
    ]  # fmt: skip


def run_reference(cmd: list[str], log: Path) -> None:
    proc = launch(cmd, log, None)
    if finish(proc) != 0:
        raise SystemExit(f"the uninterrupted run failed; see {log}:\n{log.read_text()[-3000:]}")


def print_tally(t: Tally) -> None:
    print(f"\n== {t.task}: {t.steps} steps, {t.seconds:.0f} s")
    rows = [
        ("kills (SIGKILL)", t.kills),
        ("  of them during a checkpoint save", t.kills_during_save),
        ("  of them during start-up / resume", t.kills_at_startup),
        ("newest checkpoint damaged on purpose", t.corrupted),
        ("resumes (reached the checkpoint)", t.resumes),
        ("resume choices checked (incl. fresh starts)", t.resume_checks),
        ("wrong resumes (not the newest complete)", len(t.wrong_resumes)),
        ("metric records compared", t.loss_checks),
        ("loss mismatches", t.loss_mismatches),
        ("most temporaries at a kill", t.max_temporaries_at_a_kill),
        ("leftovers at the end", len(t.leftovers)),
        ("final max |weight diff|", t.final_max_weight_diff),
    ]
    for label, value in rows:
        print(f"  {label:<42} {value}")
    for line in [*t.wrong_resumes[:5], *t.mismatch_examples, *t.leftovers]:
        print(f"  ! {line}")
    print(f"  {'PASS' if t.ok() else 'FAIL'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=("pretrain", "finetune", "both"), default="both")
    parser.add_argument("--kills", type=int, default=24, help="SIGKILLs during pretraining")
    parser.add_argument("--finetune-kills", type=int, default=20, help="SIGKILLs during fine-tuning")
    parser.add_argument("--steps", type=int, default=300, help="pretraining steps")
    parser.add_argument("--save-every", type=int, default=10)
    parser.add_argument("--examples", type=int, default=480, help="fine-tuning examples (3 epochs, batch 8)")
    parser.add_argument("--pause", type=float, default=0.1, help="seconds the aimed saves sleep per stage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="working directory (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the tallies here")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="bertforge-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    tallies = []
    print(f"working in {work}")
    fresh_cmd, reference_cmd = prepare_pretraining(work, args.steps, args.save_every)
    run_reference(
        [*reference_cmd, "--out", str(work / "pretrain-reference")], work / "pretrain-reference.log"
    )
    if args.task in ("pretrain", "both"):
        tallies.append(
            crash_loop(
                "pretrain",
                [*fresh_cmd, "--out", str(work / "pretrain")],
                work / "pretrain",
                work / "pretrain-reference",
                "model/model.safetensors",
                args.kills,
                rng,
                args.pause,
                reference_checkpoints=work / "pretrain-reference",
                keep_after=3,
            )  # fmt: skip
        )
        print_tally(tallies[-1])
    if args.task in ("finetune", "both"):
        ft_cmd = prepare_finetuning(work, work / "pretrain-reference" / "model", args.examples)
        run_reference([*ft_cmd, "--out", str(work / "finetune-reference")], work / "finetune-reference.log")
        tallies.append(
            crash_loop(
                "finetune",
                [*ft_cmd, "--out", str(work / "finetune")],
                work / "finetune",
                work / "finetune-reference",
                "model.safetensors",
                args.finetune_kills,
                rng,
                args.pause,
                reference_checkpoints=None,
                keep_after=0,
            )  # fmt: skip
        )
        print_tally(tallies[-1])
    if args.json:
        args.json.write_text(json.dumps([asdict(t) for t in tallies], indent=2) + "\n")
    return 0 if all(t.ok() for t in tallies) else 1


if __name__ == "__main__":
    raise SystemExit(main())
