"""The typed config of a fine-tuning run, with BERT's recipe as defaults.

Defaults (Devlin et al. 2018, appendix A.3, and Google's ``run_classifier.py`` / ``run_squad.py``):
AdamW (beta 0.9/0.999, eps 1e-6, weight decay 0.01 except biases and LayerNorm), 10% linear warm-up
then linear decay to 0, 3 epochs, batch 32, gradient clipping at 1.0, dropout as in the checkpoint
(0.1 for BERT), max_seq_length 128 (384 with doc_stride 128 and max_query_length 64 for QA).

The learning rate defaults to **5e-5**, the top of the paper's grid {5e-5, 3e-5, 2e-5} and
transformers' default: short runs and the small models people fine-tune on CPU (MiniLM, BERT-mini)
want the larger rate; pass ``--lr 2e-5`` for bert-base/large on small data sets, as the paper did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import BertForgeError
from ..tasks.arguments import argument
from ..tasks.registry import get_task

ON_ERROR = ("raise", "skip")
ConfigT = TypeVar("ConfigT", bound="FinetuneConfig")


@dataclass
class FinetuneConfig:
    """Everything a fine-tuning run needs; ``None`` fields are filled per task by :meth:`resolved`."""

    task: str
    model: str  # checkpoint directory (pretrained or fine-tuned)
    train: str
    out: str
    dev: str | None = None
    tokenizer: str | None = None  # default: the model directory
    # reading
    text_column: str | int | None = None
    pair_column: str | int | None = None
    label_column: str | int | None = None
    on_error: str = "raise"
    train_limit: int | None = None  # first N training examples (quick runs)
    dev_limit: int | None = None
    # encoding
    max_seq_length: int | None = None  # the task's default: 128; 384 for QA
    window_stride: int = 32  # tokens shared by overlapping windows of long NER / classification inputs
    doc_stride: int = 128  # QA: tokens shared by consecutive context windows
    max_query_length: int = 64
    label_all_subwords: bool = False  # NER: tag every sub-word, not just the first
    # optimisation
    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of the steps (< 1) or a step count
    adam_eps: float = 1e-6
    max_grad_norm: float = 1.0
    dropout: float | None = None  # hidden and attention dropout; None keeps the checkpoint's
    # running
    seed: int = 42
    seeds: list[int] | None = None  # several runs, one per seed (see bertforge.train.seeds)
    keep_all: bool = False  # with seeds: keep every seed's model in OUT/seed-N/, not only the best
    bf16: bool = False  # autocast to bfloat16 (AMX on recent Xeons, tensor cores on GPUs)
    gradient_checkpointing: bool = False  # keep each layer's input only; recompute in the backward
    # Random batches by default: training steps run unpadded, so padding costs only the attention,
    # and length-grouped batches cost accuracy on short fine-tunes (benchmarks/finetune.py, README).
    group_by_length: bool = False
    eval_steps: int | None = None  # evaluate every N steps; None: after every epoch
    eval_batch_size: int = 64
    patience: int | None = None  # stop after N evaluations without improvement
    version_2: bool | None = None  # QA with unanswerable questions; None: from the training data
    device: str = "cpu"
    plot: bool = True  # metrics.png of the curves (needs matplotlib)
    # checkpoints, for --resume: out/checkpoint-NNNNNN at every epoch end (and every save_steps),
    # the last keep_checkpoints kept (0: none), all removed once the run completes
    resume: bool | str = False  # True: the newest complete checkpoint in out; or a checkpoint path
    save_steps: int | None = None
    keep_checkpoints: int = 1

    def __post_init__(self) -> None:
        get_task(self.task)  # an unknown task is an error naming the registered ones
        if self.on_error not in ON_ERROR:
            raise BertForgeError(
                f"{argument('on_error', self.on_error)} must be one of {', '.join(ON_ERROR)}"
            )
        positive = ("batch_size", "eval_batch_size", "max_query_length", "train_limit", "dev_limit")
        for name in (*positive, "max_seq_length", "eval_steps", "patience", "save_steps"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise BertForgeError(f"{argument(name, value)} must be a positive integer")
        if not isinstance(self.keep_checkpoints, int) or self.keep_checkpoints < 0:
            raise BertForgeError(f"{argument('keep_checkpoints', self.keep_checkpoints)} must be 0 or more")
        if not self.epochs > 0:
            raise BertForgeError(f"{argument('epochs', self.epochs)} must be positive")
        if not self.lr > 0:
            raise BertForgeError(f"{argument('lr', self.lr)} must be positive; BERT used 2e-5 to 5e-5")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise BertForgeError(f"{argument('dropout', self.dropout)} must be in [0, 1); BERT uses 0.1")
        if self.max_seq_length is not None and self.max_seq_length < 8:
            raise BertForgeError(f"{argument('max_seq_length', self.max_seq_length)} must be at least 8")
        if self.seeds is not None:
            from .seeds import check_seeds

            self.seeds = list(self.seeds)
            check_seeds(self.seeds)

    def resolved(self: ConfigT) -> ConfigT:
        """A copy with the per-task defaults filled in."""
        max_seq_length = self.max_seq_length or get_task(self.task).max_length
        return dataclasses.replace(self, max_seq_length=max_seq_length)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise BertForgeError(
                f"unknown fine-tuning setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        return cls(**data)
