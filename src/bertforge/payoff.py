"""Does pretraining pay off? A pretrained model against its random-init twin on a labelled task.

The *random-init twin* of a pretrained model directory has the same ``config.json`` architecture and
the same tokenizer, with fresh weights drawn by the initialiser pretraining starts from. Fine-tuned
with one recipe over the same seeds, the two differ only in what pretraining put into the weights,
so the difference of their dev metrics is what pretraining bought on that task.

``bertforge demo`` ends with this comparison on a task cut from the books it pretrains on, and
``benchmarks/pretrain_payoff.py`` runs it on the datasets of ``../shared/datasets``.
"""

from __future__ import annotations

import shutil
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from .train.finetune_config import FinetuneConfig

ARMS = ("pretrained", "random-init")


def build_random_twin(model_dir: str | Path, out: str | Path, seed: int = 0) -> Path:
    """``out``: ``model_dir``'s architecture and tokenizer with freshly initialised weights.

    Reused when ``out`` already holds the twin of the same architecture; written atomically."""
    import torch

    from .auto import AutoConfig, AutoModelForMaskedLM
    from .errors import BertForgeError
    from .pipelines.common import load_tokenizer

    model_dir, out = Path(model_dir), Path(out)
    config = AutoConfig.from_pretrained(model_dir)
    if (out / "config.json").exists():
        if AutoConfig.from_pretrained(out).to_dict() != config.to_dict():
            raise BertForgeError(f"{out} is the twin of another architecture than {model_dir}; remove it")
        return out
    torch.manual_seed(seed)  # as pretraining does before it builds its model
    # The pretraining head does not matter downstream (fine-tuning drops it); masked-LM keeps the
    # twin's files the shape of an MLM-only pretraining run's.
    model = AutoModelForMaskedLM.from_config(config)
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    load_tokenizer(model_dir).save_pretrained(staging)
    staging.rename(out)
    return out


@dataclass(frozen=True)
class Payoff:
    """The dev metric of each arm, one value per seed, in seed order."""

    metric: str
    seeds: list[int]
    pretrained: list[float]
    random_init: list[float]

    @staticmethod
    def _spread(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    @property
    def difference(self) -> float:
        """Mean of the pretrained arm less the random-init arm's."""
        return statistics.fmean(self.pretrained) - statistics.fmean(self.random_init)

    def lines(self, scale: float = 100.0) -> list[str]:
        """The comparison as printable lines: mean ± sample std over the seeds, in points."""

        def cell(values: list[float]) -> str:
            return f"{scale * statistics.fmean(values):5.1f} ± {scale * self._spread(values):.1f}"

        return [
            f"pretrained   {self.metric} {cell(self.pretrained)}",
            f"random init  {self.metric} {cell(self.random_init)}",
            f"difference   {scale * self.difference:+.1f} points (mean over seeds {self.seeds})",
        ]


def compare_with_random_init(
    config: FinetuneConfig, seeds: list[int], *, init_seed: int = 0, progress: bool = False
) -> Payoff:
    """Fine-tune ``config.model`` and its random-init twin with ``config``'s recipe, once per seed,
    into ``config.out``/pretrained and ``config.out``/random-init (the twin's weights in
    ``config.out``/random-init-model). Returns each arm's main dev metric per seed."""
    from .train.seeds import finetune_seeds

    out = Path(config.out)
    twin = build_random_twin(config.model, out / "random-init-model", init_seed)
    results = {}
    for arm, model in zip(ARMS, (Path(config.model), twin), strict=True):
        arm_config = replace(config, model=str(model), out=str(out / arm), keep_checkpoints=0, plot=False)
        results[arm] = finetune_seeds(arm_config, seeds, keep_all=False, progress=progress)
    metric = results["pretrained"].main_metric

    def per_seed(arm: str) -> list[float]:
        return [float(run.best_metrics[metric]) for run in results[arm].runs]

    return Payoff(metric, list(seeds), per_seed("pretrained"), per_seed("random-init"))
