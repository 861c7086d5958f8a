"""The typed config of a task distillation (``bertforge distill``, :mod:`.distill_task`): a
fine-tuning run (:class:`~.finetune_config.FinetuneConfig`: files, columns, windows, schedule, seeds)
whose ``model`` is the student, plus the teacher, the loss's weight and temperature, the
intermediate stage, the layers and the transfer data. Defaults: alpha 0.5, T 2 (Hinton et al. 2015
use 1-20; 2-4 is usual for BERT tasks), no intermediate stage, no transfer data."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BertForgeError
from ..tasks.arguments import argument
from .finetune_config import FinetuneConfig

TEACHER_DTYPES = ("auto", "bf16", "fp32")
TRANSFER_FORMATS = ("task", "lines")  # how a transfer file is read (.distill_transfer)


@dataclass
class DistillConfig(FinetuneConfig):
    """A fine-tuning run whose ``model`` is the student (a preset name or a checkpoint directory;
    "" with ``student_layers``: the teacher cut to those layers), taught by ``teacher``."""

    teacher: str = ""  # a fine-tuned checkpoint directory: its task head teaches
    alpha: float = 0.5  # weight of the teacher's soft targets; 1 - alpha weighs the gold labels
    temperature: float = 2.0  # softens both distributions; the KL is scaled by T^2
    intermediate_epochs: float = 0.0  # TinyBERT's hidden-state and attention stage first (0: none)
    student_layers: list[int] | None = None  # teacher layers (0-based) that start the student's
    layer_map: list[int] | None = None  # intermediate stage: the teacher layer of each student layer
    teacher_dtype: str = "auto"  # auto: bf16 where the device runs it fast (AMX CPUs, GPUs)
    # unlabelled in-domain examples that learn the teacher's soft targets alone (.distill_transfer)
    transfer: list[str] | None = None
    transfer_format: str = "task"  # "task": the task's file format, labels ignored; "lines": one a line

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.teacher:
            raise BertForgeError(f"distillation needs a teacher: pass {argument('teacher')}")
        if not 0 <= self.alpha <= 1:
            raise BertForgeError(
                f"{argument('alpha', self.alpha)} must be in [0, 1]: the weight of the teacher's soft targets"
            )
        if not self.temperature > 0:
            raise BertForgeError(
                f"{argument('temperature', self.temperature)} must be positive; 1 to 4 is usual"
            )
        if not self.intermediate_epochs >= 0:
            raise BertForgeError(
                f"{argument('intermediate_epochs', self.intermediate_epochs)} must be 0 or more"
            )
        if isinstance(self.transfer, str):
            self.transfer = [self.transfer]
        if self.transfer_format not in TRANSFER_FORMATS:
            raise BertForgeError(
                f"{argument('transfer_format', self.transfer_format)} must be one of {', '.join(TRANSFER_FORMATS)}"
            )
        if self.teacher_dtype not in TEACHER_DTYPES:
            raise BertForgeError(
                f"{argument('teacher_dtype', self.teacher_dtype)} must be one of {', '.join(TEACHER_DTYPES)}"
            )
        if not self.model and not self.student_layers:
            raise BertForgeError(
                f"pass a student ({argument('model')} PRESET_OR_DIR), or {argument('student_layers')} "
                "to cut the teacher to those layers"
            )
        if self.layer_map is not None and not self.intermediate_epochs:
            raise BertForgeError(
                f"{argument('layer_map')} maps layers for the intermediate stage; pass "
                f"{argument('intermediate_epochs')} N too"
            )
