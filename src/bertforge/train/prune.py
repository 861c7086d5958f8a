"""``bertforge prune``: remove the attention heads a fine-tuned model needs least, measured on its dev set.

Michel, Levy and Neubig (2019), "Are Sixteen Heads Really Better than One?":

* **importance** of a head = the mean over dev batches of |dL/dg|, the gradient of the dev loss
  with respect to a gate g = 1 that multiplies the head's output (:func:`bertforge.pruning.head_gates`),
  then divided by the L2 norm of its layer's scores, so that layers compare;
* **iterative pruning**: remove the least important 10% of the remaining heads (at least one), score
  again, and so on until ``target`` of all heads are gone, or until the task's main metric on the
  dev set falls below ``min_metric_ratio`` of the unpruned model's: then the last state that stayed
  above the floor is kept. Each layer keeps at least one head.

Heads are removed physically (:func:`bertforge.pruning.prune_heads`: smaller query/key/value and
output projections) and recorded in config.json as ``pruned_heads``, so the result is a normal
checkpoint that every command loads. ``finetune_epochs`` fine-tunes it afterwards on ``train``
(:func:`bertforge.train.finetune.finetune`). The output directory is written atomically: on any
failure nothing is left at ``out``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..auto import checkpoint_head_kind, checkpoint_model_type
from ..config import read_config_json
from ..errors import BertForgeError
from ..export.runtime import is_onnx_export
from ..fileio import atomic_directory, atomic_write_json
from ..pipelines.common import (
    FINETUNE_CONFIG_FILE,
    InferenceSettings,
    load_tokenizer,
    model_class,
)
from ..pipelines.evaluation import check_known_labels, check_labelled, evaluate_examples, read_examples
from ..pruning import head_layout, heads_per_layer, kept_heads, prune_heads
from ..tasks.arguments import argument
from ..tasks.preprocess_batches import collate, feature_length, sorted_batches
from ..tasks.registry import get_task, task_for_head
from .finetune import model_inputs
from .finetune_config import FinetuneConfig

logger = logging.getLogger(__name__)

REPORT_FILE = "prune_report.json"
# Settings of finetune_config.json that decide how dev examples are cut into features.
_ENCODING_KEYS = ("max_seq_length", "window_stride", "doc_stride", "max_query_length", "label_all_subwords")


@dataclass
class PruneConfig:
    """One pruning run; the defaults are Michel et al.'s schedule with a 90% metric floor."""

    checkpoint: str  # a fine-tuned checkpoint (a task head)
    dev: str  # labelled dev file: scores the heads and judges every step
    out: str
    target: float = 0.4  # share of all heads to remove
    min_metric_ratio: float = (
        0.9  # stop before the main dev metric falls below this share of the unpruned one
    )
    step_fraction: float = 0.1  # share of the remaining heads removed per round
    task: str | None = None  # default: the checkpoint's
    text_column: str | int | None = None
    pair_column: str | int | None = None
    label_column: str | int | None = None
    on_error: str = "raise"
    dev_limit: int | None = None
    batch_size: int = 32
    finetune_epochs: float | None = None  # fine-tune after pruning, on `train`
    train: str | None = None
    lr: float | None = None  # fine-tuning learning rate (default: finetune's)
    seed: int = 42

    def __post_init__(self) -> None:
        if not 0 < self.target < 1:
            raise BertForgeError(
                f"{argument('target', self.target)} must be above 0 and below 1: the share of all heads "
                f"to remove (e.g. {argument('target', 0.4)})"
            )
        if not 0 <= self.min_metric_ratio <= 1:
            raise BertForgeError(
                f"{argument('min_metric_ratio', self.min_metric_ratio)} must be in [0, 1] "
                f"(e.g. {argument('min_metric_ratio', 0.9)}: keep 90% of the unpruned metric)"
            )
        if not 0 < self.step_fraction <= 1:
            raise BertForgeError(f"{argument('step_fraction', self.step_fraction)} must be in (0, 1]")
        if self.finetune_epochs is not None:
            if not self.finetune_epochs > 0:
                raise BertForgeError(f"{argument('finetune_epochs', self.finetune_epochs)} must be positive")
            if self.train is None:
                raise BertForgeError(
                    f"{argument('finetune_epochs')} fine-tunes the pruned model and needs a training "
                    f"file; pass {argument('train')}"
                )


@dataclass
class PruneRound:
    """One round: the heads it removed ({layer: original indices}) and the dev metric after it."""

    removed: dict[int, list[int]]
    heads_pruned: int  # in total after this round
    metric: float
    kept: bool  # False: below the floor, undone


@dataclass
class PruneResult:
    out: Path
    task: str
    main_metric: str
    heads_total: int
    heads_pruned: int
    pruned_heads: dict[int, list[int]]
    unpruned_metric: float
    metric_floor: float
    pruned_metric: float  # after pruning, before any fine-tuning
    stopped: str  # why pruning ended
    parameters_before: int
    parameters_after: int
    rounds: list[PruneRound] = field(default_factory=list)
    finetuned_metric: float | None = None
    dev_metrics: dict[str, Any] = field(default_factory=dict)  # the saved model's, every metric

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["out"] = str(self.out)
        data["pruned_heads"] = {str(k): v for k, v in self.pruned_heads.items()}
        for record in data["rounds"]:
            record["removed"] = {str(k): v for k, v in record["removed"].items()}
        return data


def head_importance(model: Any, batches: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    """Per layer, one score per head the layer has now: mean |d loss / d gate| over ``batches``
    (collated, with labels), each layer divided by its L2 norm (Michel et al. 2019, section 4)."""
    from ..pruning import head_gates

    was_training = model.training
    model.eval()  # no dropout: the scores describe the model as it is used
    totals = [torch.zeros(n) for n in heads_per_layer(model)]
    try:
        with head_gates(model) as gates:
            for batch in batches:
                loss = model(**model_inputs(model, batch)).loss
                # Gradients for the gates alone: autograd skips the weights' gradient matmuls.
                grads = torch.autograd.grad(loss, gates)
                for total, grad in zip(totals, grads, strict=True):
                    total += grad.detach().abs().float().cpu()
    finally:
        model.train(was_training)
    scores = [total / max(len(batches), 1) for total in totals]
    return [s / (s.norm() + 1e-20) for s in scores]


def _least_important(model: Any, scores: list[torch.Tensor], count: int) -> dict[int, list[int]]:
    """The ``count`` lowest-scoring heads over all layers ({layer: original indices}), never a
    layer's last head."""
    ranked = sorted(
        (float(score), layer, head)
        for layer, layer_scores in enumerate(scores)
        for head, score in zip(kept_heads(model.config, layer), layer_scores.tolist(), strict=True)
    )
    left = heads_per_layer(model)
    chosen: dict[int, list[int]] = {}
    taken = 0
    for _, layer, head in ranked:
        if taken == count:
            break
        if left[layer] > 1:
            chosen.setdefault(layer, []).append(head)
            left[layer] -= 1
            taken += 1
    return {layer: sorted(heads) for layer, heads in chosen.items()}


def _task_of(path: Path, task: str | None) -> str:
    """The checkpoint's task; an error when it has no task head (a pretrained or base model)."""
    from ..auto import AutoConfig

    kind = checkpoint_head_kind(path)
    detected = task_for_head(kind, AutoConfig.from_pretrained(path)) if kind is not None else None
    if detected is None:
        architectures = read_config_json(path / "config.json").get("architectures") or ["none"]
        raise BertForgeError(
            f"{path} has no task head (architectures: {', '.join(architectures)}); pruning scores heads "
            "by the task's dev loss, so prune a fine-tuned checkpoint (bertforge finetune ... --out DIR)"
        )
    return task or detected


def _encoding_config(
    config: PruneConfig, path: Path, task: str, settings: InferenceSettings
) -> FinetuneConfig:
    """How the dev examples are cut into labelled features: as the checkpoint was fine-tuned."""
    saved_file = path / FINETUNE_CONFIG_FILE
    saved = json.loads(saved_file.read_text(encoding="utf-8")) if saved_file.is_file() else {}
    encoding = {k: saved[k] for k in _ENCODING_KEYS if saved.get(k) is not None}
    encoding["max_seq_length"] = settings.max_length
    return FinetuneConfig(task=task, model=str(path), train=config.dev, out=config.out, **encoding)


def prune_checkpoint(config: PruneConfig, log: Callable[[str], None] | None = print) -> PruneResult:
    """Prune ``config.checkpoint``'s heads on ``config.dev`` and save the result to ``config.out``
    (see the module doc); ``log`` receives one line per round (None: silent)."""
    say = log or (lambda _line: None)
    path, out = Path(config.checkpoint), Path(config.out)
    if not path.is_dir():
        raise BertForgeError(f"checkpoint {path} is not a directory; pass a fine-tuned checkpoint")
    if is_onnx_export(path):
        raise BertForgeError(f"{path} is an ONNX export; prune the PyTorch checkpoint it was exported from")
    if out.exists() and not out.is_dir():
        raise BertForgeError(f"{argument('out', str(out))} is a file; pass a directory")
    if out.resolve() == path.resolve():
        raise BertForgeError(
            f"{argument('out', str(out))} is the checkpoint itself; write the pruned model elsewhere"
        )
    task = get_task(_task_of(path, config.task))
    model = model_class(task.name, checkpoint_model_type(path)).from_pretrained(path)
    head_layout(model)  # a family that cannot be pruned (ALBERT) is refused here

    # -------------------------------------------------------------------- how many heads may go
    model_config = model.config
    total = model_config.num_hidden_layers * model_config.num_attention_heads
    already = sum(len(h) for h in model_config.pruned_heads.values())
    goal = round(config.target * total)
    most = total - model_config.num_hidden_layers  # one head stays in each layer
    if goal > most:
        raise BertForgeError(
            f"{argument('target', config.target)} would remove {goal} of the {total} heads, but each of "
            f"the {model_config.num_hidden_layers} layers keeps one, so at most {most} "
            f"({most / total:.3f}) can go; lower {argument('target')}"
        )
    if goal <= already:
        raise BertForgeError(
            f"{path} already has {already} of its {total} heads pruned, as many as "
            f"{argument('target', config.target)} asks for ({goal}); pass a higher {argument('target')}"
        )

    # ---------------------------------------------------------------------- dev set and features
    options: dict[str, Any] = {
        "text_column": config.text_column,
        "pair_column": config.pair_column,
        "label_column": config.label_column,
        "on_error": config.on_error,
    }
    dev, skipped = read_examples(task.name, config.dev, **options)
    dev = dev[: config.dev_limit] if config.dev_limit else dev
    for message in skipped:
        logger.warning("skipped %s", message)
    if not dev:
        raise BertForgeError(f"{argument('dev', config.dev)} holds no examples; pass a labelled dev file")
    check_labelled(task.name, dev, config.dev)
    check_known_labels(task.name, dev, model_config.label2id, config.dev)
    tokenizer = load_tokenizer(path)
    settings = InferenceSettings.for_checkpoint(path, task.name, batch_size=config.batch_size)
    label2id = model_config.label2id if task.label_set(dev) is not None else None
    features = task.encode(dev, tokenizer, label2id, _encoding_config(config, path, task.name, settings))
    lengths = [feature_length(f) for f in features]
    batches = [
        collate([features[i] for i in indices], tokenizer.pad_token_id)
        for indices in sorted_batches(lengths, config.batch_size)
    ]

    def score(candidate: Any) -> tuple[float, dict[str, Any]]:
        metrics, _ = evaluate_examples(task.name, candidate, tokenizer, dev, settings)
        return float(metrics[task.main_metric]), metrics

    # ------------------------------------------------------------------------------ the rounds
    main = task.main_metric
    unpruned, metrics = score(model)
    # ratio x the unpruned value, read so that it also holds for a negative value (a correlation)
    floor = unpruned - (1 - config.min_metric_ratio) * abs(unpruned)
    parameters_before = model.num_parameters()
    say(
        f"{type(model).__name__}: {total} heads ({already} pruned before), {parameters_before:,} parameters; "
        f"dev {main} {unpruned:.4f}, floor {floor:.4f}; pruning up to {goal} heads"
    )
    rounds: list[PruneRound] = []
    pruned_count, stopped = already, "target reached"
    while pruned_count < goal:
        remaining = total - pruned_count
        count = min(max(1, int(config.step_fraction * remaining)), goal - pruned_count)
        chosen = _least_important(model, head_importance(model, batches), count)
        if not chosen:
            stopped = "every layer is down to one head"
            break
        candidate = prune_heads(copy.deepcopy(model), chosen)
        value, candidate_metrics = score(candidate)
        removed = sum(len(h) for h in chosen.values())
        kept = value >= floor
        rounds.append(PruneRound(chosen, pruned_count + removed, value, kept))
        say(
            f"round {len(rounds)}: removed {removed} heads ({pruned_count + removed}/{total}): "
            f"dev {main} {value:.4f}{'' if kept else f' < floor {floor:.4f}, undone'}"
        )
        if not kept:
            stopped = f"dev {main} fell below {config.min_metric_ratio:g} x the unpruned value"
            break
        model, metrics, pruned_count = candidate, candidate_metrics, pruned_count + removed
    result = PruneResult(
        out=out,
        task=task.name,
        main_metric=main,
        heads_total=total,
        heads_pruned=pruned_count,
        pruned_heads=dict(model.config.pruned_heads),
        unpruned_metric=unpruned,
        metric_floor=floor,
        pruned_metric=float(metrics[main]),
        stopped=stopped,
        parameters_before=parameters_before,
        parameters_after=model.num_parameters(),
        rounds=rounds,
        dev_metrics=metrics,
    )
    say(
        f"pruned {pruned_count}/{total} heads ({stopped}); dev {main} {result.pruned_metric:.4f}; "
        f"{result.parameters_after:,} parameters"
    )

    # ------------------------------------------------------------------- fine-tune, then save
    def write(tmp: Path) -> None:
        if config.finetune_epochs is None:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            if (path / FINETUNE_CONFIG_FILE).is_file():  # the windows evaluate and predict use
                shutil.copyfile(path / FINETUNE_CONFIG_FILE, tmp / FINETUNE_CONFIG_FILE)
        else:
            _finetune_pruned(config, model, tokenizer, task.name, settings, tmp, result, say)
        atomic_write_json(tmp / REPORT_FILE, result.to_json())

    atomic_directory(out, write)
    say(f"wrote {out} ({REPORT_FILE}: every round)")
    return result


def _finetune_pruned(
    config: PruneConfig,
    model: Any,
    tokenizer: Any,
    task: str,
    settings: InferenceSettings,
    out: Path,
    result: PruneResult,
    say: Callable[[str], None],
) -> None:
    """Fine-tune the pruned model on ``config.train`` into ``out`` (the best epoch on dev is kept)."""
    from .finetune import finetune

    assert config.train is not None and config.finetune_epochs is not None
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.pruned-", dir=out.parent) as staged:
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        options: dict[str, Any] = {
            "text_column": config.text_column,
            "pair_column": config.pair_column,
            "label_column": config.label_column,
            "on_error": config.on_error,
            "max_seq_length": settings.max_length,
            "seed": config.seed,
            "plot": False,
        }
        if config.lr is not None:
            options["lr"] = config.lr
        say(f"fine-tuning the pruned model for {config.finetune_epochs:g} epoch(s) on {config.train}")
        run = finetune(
            FinetuneConfig(
                task=task,
                model=staged,
                train=config.train,
                dev=config.dev,
                out=str(out),
                epochs=config.finetune_epochs,
                dev_limit=config.dev_limit,
                batch_size=config.batch_size,
                keep_checkpoints=0,
                **options,
            ),
            progress=False,
        )
    assert run.best_value is not None  # a dev file is always given
    result.finetuned_metric = float(run.best_value)
    result.dev_metrics = run.best_metrics
    say(
        f"fine-tuned: dev {result.main_metric} {result.finetuned_metric:.4f} (pruned {result.pruned_metric:.4f})"
    )
