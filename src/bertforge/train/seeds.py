"""Fine-tune over several seeds: one run per seed, the spread of every dev metric, the best model kept.

A single seed says little on a small dev set (runs differ by points from the seed alone), so
``bertforge finetune --seeds 0,1,2`` (:func:`finetune_seeds`, or ``FinetuneConfig(seeds=[0, 1, 2])``
through :func:`~bertforge.train.finetune.finetune`) trains once per seed, each run exactly the
single-seed run of that seed, into ``OUT/seed-N/``, and then writes

* ``OUT/seed-N/metrics.jsonl`` (and ``finetune_config.json``): every run's curves;
* ``OUT/summary.json``: the main metric, each seed's best dev metrics, step and speed, and the mean
  and sample standard deviation (n - 1; null for one seed) of every numeric dev metric over seeds;
* the best seed's model (by the task's main metric on dev; the first seed on ties) in ``OUT``
  itself, a normal checkpoint that ``evaluate``/``predict``/``from_pretrained`` load. The other
  seeds keep their metrics only, unless ``keep_all``: then every ``OUT/seed-N/`` is a checkpoint too.

A seed's model files are dropped as soon as a better seed beats it, so the disk holds at most two
models at a time. Every file is written atomically; ``summary.json`` is written last, so its
presence says the whole set finished. A seed that fails stops the set with an error naming it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BertForgeError
from ..fileio import atomic_path, atomic_write_json
from ..pipelines.common import FINETUNE_CONFIG_FILE
from ..tasks.arguments import argument
from .finetune_config import FinetuneConfig

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
# What a seed directory keeps when its model is dropped.
KEPT_WITHOUT_MODEL = ("metrics.jsonl", "metrics.png", FINETUNE_CONFIG_FILE)


@dataclass
class SeedsResult:
    """The runs of :func:`finetune_seeds`: one FinetuneResult per seed and their summary."""

    out: Path
    main_metric: str
    seeds: list[int]
    best_seed: int
    runs: list[Any]  # FinetuneResult, in seed order
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float | None] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Any:
        """The best seed's FinetuneResult, with ``out`` pointing at the kept model."""
        run = self.runs[self.seeds.index(self.best_seed)]
        return dataclasses.replace(run, out=self.out)


def seed_dir(out: str | os.PathLike[str], seed: int) -> Path:
    return Path(out) / f"seed-{seed}"


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; ranges ``"0-4"`` too. Duplicates and non-integers are errors."""
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                low, high = part[0] + part[1:].split("-", 1)[0], part[1:].split("-", 1)[1]
                seeds.extend(range(int(low), int(high) + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise BertForgeError(f"seeds {text!r}: {part!r} is not an integer; pass e.g. 0,1,2") from None
    check_seeds(seeds)
    return seeds


def check_seeds(seeds: list[int]) -> None:
    if not seeds:
        raise BertForgeError(f"{argument('seeds')} is empty; pass e.g. 0,1,2")
    if any(not isinstance(s, int) or isinstance(s, bool) for s in seeds):
        raise BertForgeError(f"{argument('seeds', seeds)} must be integers")
    duplicates = sorted({s for s in seeds if seeds.count(s) > 1})
    if duplicates:
        raise BertForgeError(f"{argument('seeds')} repeats seed(s) {duplicates}; each seed runs once")


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1); None for a single value."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    }


def _drop_model(directory: Path) -> None:
    for path in directory.iterdir():
        if path.name not in KEPT_WITHOUT_MODEL:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def _place_model(source: Path, out: Path, keep: bool) -> None:
    """The model files of ``source`` into ``out`` (moved, or copied when ``keep``), each atomically."""
    for path in sorted(source.iterdir()):
        if path.is_dir() or path.name in ("metrics.jsonl", "metrics.png"):
            continue
        target = out / path.name
        if keep or path.name == FINETUNE_CONFIG_FILE:
            with atomic_path(target) as tmp:
                shutil.copyfile(path, tmp)
        else:
            os.replace(path, target)


def format_table(summary: dict[str, Any]) -> str:
    """The per-seed dev metrics and their mean ± std, as a plain-text table."""
    metrics = list(summary["mean"])
    header = ["seed", *metrics, "best_step", "ex/s"]
    rows = []
    for run in summary["runs"]:
        mark = "*" if run["seed"] == summary["best_seed"] else ""
        rows.append(
            [f"{run['seed']}{mark}"]
            + [f"{run['dev'].get(m, float('nan')):.4f}" for m in metrics]
            + [str(run["best_step"]), f"{run['train_examples_per_second']:.1f}"]
        )
    spread = []
    for m in metrics:
        std = summary["std"][m]
        spread.append(
            f"{summary['mean'][m]:.4f} ± {std:.4f}" if std is not None else f"{summary['mean'][m]:.4f}"
        )
    rows.append(["mean ± std", *spread, "", ""])
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in [header, *rows]]  # fmt: skip
    lines.append(f"(* best seed by {summary['main_metric']}; its model is in {summary['out']})")
    return "\n".join(lines)


def finetune_seeds(
    config: FinetuneConfig,
    seeds: list[int] | None = None,
    *,
    keep_all: bool | None = None,
    progress: bool = True,
    table: bool = False,
    run: Callable[[FinetuneConfig, bool], Any] | None = None,
) -> SeedsResult:
    """Fine-tune ``config`` once per seed (``seeds``, else ``config.seeds``) into ``config.out``.

    Returns a :class:`SeedsResult`; writes ``OUT/seed-N/``, ``OUT/summary.json`` and the best seed's
    model in ``OUT`` (see the module docstring). ``keep_all`` (default ``config.keep_all``) keeps
    every seed's model in its ``OUT/seed-N/``. ``table=True`` prints the table to stderr.
    ``run(seed_config, progress)`` trains one seed and returns its FinetuneResult (default
    :func:`~bertforge.train.finetune.finetune`; distillation passes its own).
    """
    from .finetune import finetune

    def run_one(seed_config: FinetuneConfig, progress: bool) -> Any:
        return finetune(seed_config, progress=progress)

    train_one = run or run_one
    seeds = list(seeds if seeds is not None else (config.seeds or []))
    check_seeds(seeds)
    keep_all = config.keep_all if keep_all is None else keep_all
    if config.dev is None:
        raise BertForgeError(
            f"{argument('seeds')} needs a dev file ({argument('dev')}): the best seed is chosen on dev"
        )
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise BertForgeError(
            f"{argument('out', str(out))} is a file; pass a directory for the fine-tuned checkpoint"
        )
    out.mkdir(parents=True, exist_ok=True)
    runs: list[Any] = []
    best_index: int | None = None
    for index, seed in enumerate(seeds):
        run_config = dataclasses.replace(
            config, seed=seed, seeds=None, keep_all=False, out=str(seed_dir(out, seed))
        )
        logger.info("seed %d (%d of %d) -> %s", seed, index + 1, len(seeds), run_config.out)
        try:
            result = train_one(run_config, progress)
        except BertForgeError as err:
            raise BertForgeError(f"seed {seed} ({index + 1} of {len(seeds)}) failed: {err}") from err
        except Exception as err:
            raise RuntimeError(
                f"fine-tuning with seed {seed} ({index + 1} of {len(seeds)}) failed: {err!r}"
            ) from err
        runs.append(result)
        value = result.best_value if result.best_value is not None else -math.inf
        best_value = -math.inf if best_index is None else runs[best_index].best_value
        if best_index is None or value > best_value:
            if best_index is not None and not keep_all:
                _drop_model(seed_dir(out, seeds[best_index]))
            best_index = index
        elif not keep_all:
            _drop_model(seed_dir(out, seed))
    assert best_index is not None
    best_seed = seeds[best_index]
    _place_model(seed_dir(out, best_seed), out, keep=keep_all)

    per_seed = [_scalars(run.best_metrics) for run in runs]
    names = [name for name in per_seed[0] if all(name in p for p in per_seed)]
    mean: dict[str, float] = {}
    std: dict[str, float | None] = {}
    for name in names:
        mean[name], std[name] = mean_std([p[name] for p in per_seed])
    summary = {
        "task": config.task,
        "main_metric": runs[0].main_metric,
        "seeds": seeds,
        "best_seed": best_seed,
        "out": str(out),
        "kept_all": bool(keep_all),
        "mean": mean,
        "std": std,
        "runs": [
            {
                "seed": seed,
                "dir": str(seed_dir(out, seed)),
                "best_step": run.best_step,
                "steps": run.steps,
                "train_seconds": round(run.train_seconds, 3),
                "train_examples_per_second": round(run.train_examples_per_second, 3),
                "dev": metrics,
            }
            for seed, run, metrics in zip(seeds, runs, per_seed, strict=True)
        ],
    }
    atomic_write_json(out / SUMMARY_FILE, summary)
    if table:
        print(format_table(summary), file=sys.stderr)
    return SeedsResult(out, runs[0].main_metric, seeds, best_seed, runs, mean, std, summary)
