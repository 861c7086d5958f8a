"""Task distillation (``bertforge distill``): a small student learns the task of a fine-tuned teacher.

A run is a fine-tuning run (:class:`DistillConfig` is a :class:`~.finetune_config.FinetuneConfig`:
the same files, columns, windows, schedule and seeds; its ``model`` is the student) in up to two
stages, as TinyBERT (Jiao et al., 2020) distils a task:

1. ``intermediate_epochs`` > 0: the student's hidden states and attention maps follow the teacher's
   along a layer mapping (uniform by default), :func:`~.distill_stages.intermediate_stage`;
2. the prediction stage: bertforge's fine-tuning loop (:func:`~.finetune.finetune`, evaluation on dev
   and the best model kept included) with the loss ``alpha`` * the teacher's soft targets at
   temperature T (KL × T²; MSE to its prediction for regression; per real token for tagging; start
   and end distributions for QA) + (1 - ``alpha``) * the gold labels (:class:`~.distill_stages.PredictionLoss`).

The teacher's prediction-layer outputs are computed once, under inference mode and in bf16 where the
device runs it fast (``teacher_dtype="auto"``, :func:`~.distributed.use_bf16`), and cached in a numpy
memmap in ``OUT/.distill-work/`` for every epoch and every seed; the work area is removed when the run
completes. The data is encoded once, with the teacher's tokenizer, which the student must share.

The student (``model``):

* a preset (``bert-mini``, ``distilbert-L4-H256``, ``roberta-tiny`` ...) of the teacher's family (or
  DistilBERT for a BERT teacher and back), with the teacher's vocabulary. When its layers are shaped
  like the teacher's it starts from the teacher's embeddings, layers (``student_layers``, else spread
  evenly) and task head (:func:`~.distill.init_student_from_teacher`); otherwise from random weights;
* a checkpoint directory (a smaller pretrained model) whose tokenizer is the teacher's: its weights;
* ``""`` with ``student_layers``: the teacher itself cut to those layers.

Everything a user can get wrong (a teacher without a task head, a task its head cannot do, a student
with another vocabulary, layer lists out of range) is checked before anything is written to ``out``.
The result in ``out`` is a normal fine-tuned checkpoint (``finetune_config.json`` records the
distillation settings too) that evaluate, predict, serve and export take.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..auto import checkpoint_head_kind, checkpoint_model_type, model_class_for
from ..errors import BertForgeError
from ..pipelines.common import InferenceSettings, load_tokenizer
from ..pipelines.evaluation import evaluate_examples
from ..tasks.arguments import argument
from ..tasks.registry import TASKS, TaskDefinition, get_task, task_for_head
from . import checkpointing as ckpt
from .distill import default_teacher_layers, init_student_from_teacher, layers_copyable, shape_differences
from .distill_stages import (
    PredictionLoss,
    intermediate_stage,
    layer_count,
    teacher_outputs,
    uniform_layer_map,
)
from .distributed import use_bf16
from .finetune import (
    FinetuneResult,
    TaskData,
    check_output_dir,
    finetune,
    model_overrides,
    prepare_data,
    seed_everything,
)
from .finetune_config import FinetuneConfig

logger = logging.getLogger(__name__)

WORK_DIR = ".distill-work"  # OUT/.distill-work: the teacher's outputs and the student's starting weights
TEACHER_DTYPES = ("auto", "bf16", "fp32")
# Texts both tokenizers must encode alike (cases, accents, punctuation, CJK, whitespace).
_PROBES = ("Hello, World! The QUICK brown fox's naïve café, 2024.", "北京是中国的首都。", " a\tb  c ")


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


@dataclass
class DistillResult:
    """The student's run (the best seed's with seeds), the teacher's dev metrics, and the loss of
    every intermediate-stage step (per seed)."""

    run: FinetuneResult
    teacher_metrics: dict[str, Any]
    intermediate: dict[int, list[float]] = field(default_factory=dict)
    seeds: Any = None  # SeedsResult with seeds


@dataclass
class _Plan:
    """What the checks found, before anything is written: the run's task, the loaded teacher and
    how the student starts."""

    task: TaskDefinition
    teacher: Any
    tokenizer: Any  # the teacher's: the data is encoded once, for both models
    labels: list[str] | None  # the teacher's, in id order
    kind: str  # distill_stages.SOFT_KINDS
    student_type: str
    source: str  # "preset" | "checkpoint" | "teacher"
    copy_layers: list[int] | None  # teacher layers copied into the student
    layer_map: list[int]


# ------------------------------------------------------------------------------------- checks
def teacher_task(teacher: str) -> str:
    """The task of a fine-tuned teacher (from config.json), or an error when it has no task head."""
    kind = _teacher_head(teacher)
    from ..auto import AutoConfig

    task = task_for_head(kind, AutoConfig.from_pretrained(teacher))
    assert task is not None  # _teacher_head accepts only heads of registered tasks
    return task


def _teacher_head(teacher: str) -> str:
    if not Path(teacher).is_dir():
        raise BertForgeError(
            f"the teacher {argument('teacher', teacher)} is not a directory; pass a fine-tuned checkpoint "
            "(the --out of bertforge finetune)"
        )
    kind = checkpoint_head_kind(teacher)
    if kind not in {t.head for t in TASKS.values()}:
        from ..config import config_path, read_config_json

        names = read_config_json(config_path(teacher)).get("architectures") or "missing"
        raise BertForgeError(
            f"the teacher {teacher} has no task head (config.json architectures: {names}); a pretrained "
            f"model has no task to teach: fine-tune it first (bertforge finetune --task TASK --model "
            f"{teacher} ...) and distil from that"
        )
    return str(kind)


def _check_task(task: TaskDefinition, teacher_path: str, kind: str, teacher_config: Any) -> None:
    """The teacher's head must do the task (classification and regression share a head: the
    teacher's config tells them apart)."""
    detected = task_for_head(kind, teacher_config)
    shared_head_differs = task.name != detected and (
        task.detect is not None or (detected is not None and get_task(detected).detect is not None)
    )
    if task.head != kind or shared_head_differs:
        raise BertForgeError(
            f"the teacher {teacher_path} is a {kind} model fine-tuned for {detected}; it cannot teach "
            f"{task.name}: pass {argument('task', detected)} or a teacher fine-tuned for {task.name}"
        )


def _soft_kind(task: TaskDefinition, teacher_config: Any) -> str:
    if task.head == "sequence-classification":
        return "value" if teacher_config.num_labels == 1 else "classes"
    kinds = {"multiple-choice": "classes", "token-classification": "tokens", "question-answering": "span"}
    if task.head not in kinds:
        raise BertForgeError(f"task {task.name!r} has a {task.head} head, which bertforge cannot distil")
    return kinds[task.head]


def _is_preset(name: str) -> bool:
    from .recipe import ModelSection

    try:
        ModelSection(preset=name)
    except BertForgeError:
        return False
    return True


def _student_type(config: DistillConfig, teacher_type: str) -> tuple[str, str]:
    """(source, model_type) of the student, or an error naming what ``model`` should be."""
    if not config.model:
        return "teacher", teacher_type
    if Path(config.model).is_dir():
        return "checkpoint", checkpoint_model_type(config.model)
    if _is_preset(config.model):
        from .recipe import ModelSection

        return "preset", ModelSection(preset=config.model).family()
    raise BertForgeError(
        f"the student {argument('model', config.model)} is neither a checkpoint directory nor a preset; "
        "pass a preset such as bert-mini or distilbert-L4-H256, or a directory"
    )


def _check_vocabulary(config: DistillConfig, teacher: Any, teacher_tokenizer: Any) -> None:
    """A student checkpoint must read the teacher's token ids: same size, same tokenizer."""
    from ..auto import AutoConfig

    student, fix = (
        config.model,
        "distil into a student trained with the teacher's tokenizer, or into a preset",
    )
    s_vocab, t_vocab = AutoConfig.from_pretrained(student).vocab_size, teacher.config.vocab_size
    if s_vocab != t_vocab:
        raise BertForgeError(
            f"the student {student} has vocab_size {s_vocab} but the teacher {config.teacher} {t_vocab}: "
            f"the student must share the teacher's vocabulary; {fix} (--student bert-mini takes it)"
        )
    try:
        student_tokenizer = load_tokenizer(student)
    except (BertForgeError, OSError) as err:
        raise BertForgeError(
            f"cannot read the student {student}'s tokenizer ({err}); the student must come with the "
            f"teacher's tokenizer files; {fix}"
        ) from None
    s_tokens, t_tokens = student_tokenizer.get_vocab(), teacher_tokenizer.get_vocab()
    detail = next(
        (
            f"{token!r} is id {s_tokens.get(token)} in the student, {t_tokens.get(token)} in the teacher"
            for token in sorted(set(s_tokens) | set(t_tokens))
            if s_tokens.get(token) != t_tokens.get(token)
        ),
        None,
    )
    for text in _PROBES:
        if detail is None and student_tokenizer(text)["input_ids"] != teacher_tokenizer(text)["input_ids"]:
            detail = f"{text!r} is encoded differently"
    if detail is not None:
        raise BertForgeError(
            f"the student {student}'s tokenizer differs from the teacher {config.teacher}'s ({detail}); "
            f"the student must share the teacher's vocabulary; {fix}"
        )


def _check_layers(name: str, layers: list[int], count: int, teacher_layers: int) -> None:
    if len(layers) != count or not all(0 <= i < teacher_layers for i in layers):
        raise BertForgeError(
            f"{argument(name, ','.join(map(str, layers)))} must name {count} of the teacher's layers "
            f"(0..{teacher_layers - 1}), one per student layer"
        )


def _plan(config: DistillConfig) -> _Plan:
    """Load the teacher and check teacher, task, student and layer lists; writes nothing."""
    task = get_task(config.task)
    kind = _teacher_head(config.teacher)
    teacher_type = checkpoint_model_type(config.teacher)
    teacher: Any = model_class_for(teacher_type, kind).from_pretrained(config.teacher)
    _check_task(task, config.teacher, kind, teacher.config)
    soft = _soft_kind(task, teacher.config)
    tokenizer = load_tokenizer(config.tokenizer or config.teacher)
    source, student_type = _student_type(config, teacher_type)
    compatible = student_type == teacher_type or {student_type, teacher_type} == {"bert", "distilbert"}
    if not compatible:
        raise BertForgeError(
            f"the student {config.model} is a {student_type} model, the teacher a {teacher_type}: their "
            f"inputs differ; distil into a {teacher_type} student"
            + (" (or a distilbert one)" if teacher_type == "bert" else "")
        )
    if source == "checkpoint":
        _check_vocabulary(config, teacher, tokenizer)
    t_layers = layer_count(teacher.config)
    student_layers = config.student_layers
    copy_layers: list[int] | None = None
    if source == "teacher":
        assert student_layers is not None
        s_layers = len(student_layers)
        copy_layers = student_layers
    elif source == "checkpoint":
        if student_layers is not None:
            raise BertForgeError(
                f"the student {config.model} brings its own weights; {argument('student_layers')} starts a "
                "preset student from the teacher's layers: drop one of them"
            )
        from ..auto import AutoConfig

        s_layers = layer_count(AutoConfig.from_pretrained(config.model))
    else:
        from .recipe import ModelSection

        preset = ModelSection(preset=config.model).model_config(vocab_size=teacher.config.vocab_size)
        s_layers = layer_count(preset)
        differing = shape_differences(preset, teacher.config)
        if student_layers is not None and differing:
            raise BertForgeError(
                f"{argument('student_layers')} copies the teacher's layers, but the student preset "
                f"{config.model} is shaped otherwise ({', '.join(differing)}); pick a preset of the "
                f"teacher's width, or omit {argument('model')} to cut the teacher"
            )
        if not differing:
            copy_layers = student_layers or default_teacher_layers(t_layers, s_layers)
    if copy_layers is not None:
        if not layers_copyable(teacher_type, student_type):
            raise BertForgeError(
                f"a {teacher_type} teacher's layers cannot start a {student_type} student ({teacher_type} "
                f"shares its layers); pass a preset of another width, or a checkpoint, as {argument('model')}"
            )
        _check_layers("student_layers", copy_layers, s_layers, t_layers)
    layer_map = config.layer_map or uniform_layer_map(t_layers, s_layers)
    _check_layers("layer_map", layer_map, s_layers, t_layers)
    labels = None
    if soft in ("classes", "tokens") and task.head != "multiple-choice":
        labels = [teacher.config.id2label[i] for i in range(teacher.config.num_labels)]
    teacher.requires_grad_(False)
    teacher.to(config.device).eval()
    return _Plan(task, teacher, tokenizer, labels, soft, student_type, source, copy_layers, layer_map)


# ------------------------------------------------------------------------------------ student
def _copy_task_head(student: Any, teacher: Any) -> None:
    """The pooler and head parameters the student shares (by name and shape) with the teacher."""
    prefix = f"{student.base_model_prefix}."
    taught = dict(teacher.named_parameters())
    with torch.no_grad():
        for name, param in student.named_parameters():
            if name.startswith(prefix) and not name.startswith(f"{prefix}pooler."):
                continue  # embeddings and layers: copied layer by layer
            source = taught.get(name)
            if source is not None and source.shape == param.shape:
                param.copy_(source)


def build_student(config: DistillConfig, plan: _Plan, labels: list[str] | None) -> Any:
    """The student with the task's head, before training (seeded by ``config.seed``)."""
    overrides = model_overrides(plan.task, config, labels, plan.student_type)
    model_class = model_class_for(plan.student_type, plan.task.head)
    if plan.source == "checkpoint":
        return model_class.from_pretrained(config.model, ignore_mismatched_sizes=True, **overrides)
    teacher = plan.teacher
    if plan.source == "teacher":
        assert plan.copy_layers is not None
        student_config = teacher.config.replace(num_hidden_layers=len(plan.copy_layers))
    else:
        from .recipe import ModelSection

        student_config = ModelSection(preset=config.model).model_config(
            teacher.config.vocab_size, teacher.config.pad_token_id
        )
    student = model_class(student_config.replace(**overrides))
    if plan.copy_layers is not None:
        chosen = init_student_from_teacher(student, teacher, plan.copy_layers)
        _copy_task_head(student, teacher)
        logger.info("student starts from the teacher's embeddings, layers %s and head", chosen)
    return student


# ---------------------------------------------------------------------------------------- run
def _teacher_dtype(config: DistillConfig) -> torch.dtype | None:
    return torch.bfloat16 if use_bf16(config.teacher_dtype, torch.device(config.device)) else None


def _train_student(
    config: DistillConfig,
    progress: bool,
    plan: _Plan,
    data: TaskData,
    cache_dir: Path,
    intermediate: dict[int, list[float]],
) -> FinetuneResult:
    """One student (one seed): build it, run the intermediate stage, then the prediction stage."""
    out = Path(config.out)
    work = out / WORK_DIR
    teacher_dtype = _teacher_dtype(config)
    resuming = bool(config.resume) and ckpt.resolve_resume(config.resume, out) is not None
    outputs = teacher_outputs(
        plan.teacher, config.teacher, data.features, plan.kind, cache_dir,
        pad_token_id=data.tokenizer.pad_token_id, batch_size=config.eval_batch_size, dtype=teacher_dtype,
    )  # fmt: skip
    init = None
    if not resuming:  # a resumed run takes the student from its checkpoint
        seed_everything(config.seed)
        student = build_student(config, plan, data.labels).to(config.device)
        if config.intermediate_epochs:
            intermediate[config.seed] = intermediate_stage(
                student, plan.teacher, data.features, data.tokenizer.pad_token_id, config,
                epochs=config.intermediate_epochs, layer_map=plan.layer_map,
                teacher_dtype=teacher_dtype, progress=progress,
            )  # fmt: skip
        init = work / "student"
        student.save_pretrained(init)
    loss = PredictionLoss(outputs, config.alpha, config.temperature)
    run = finetune(config, progress, data=data, init=init, loss=loss)
    shutil.rmtree(work, ignore_errors=True)
    return run


def distill(config: DistillConfig, progress: bool = True, *, table: bool = False) -> DistillResult:
    """Distil ``config.teacher`` into the student ``config.model`` on ``config.task``; the best
    student (by the task's main metric on dev) ends up in ``config.out`` as a normal checkpoint.
    With ``config.seeds`` one student per seed, as :func:`~.seeds.finetune_seeds` runs them
    (``table=True`` prints their table)."""
    config = config.resolved()
    plan = _plan(config)
    data = prepare_data(config, labels=plan.labels, tokenizer=plan.tokenizer)
    _check_positions(config, plan)
    out = Path(config.out)
    check_output_dir(out)
    settings = InferenceSettings(
        max_length=config.max_seq_length or plan.task.max_length,
        stride=getattr(config, plan.task.stride_setting),
        max_query_length=config.max_query_length,
        batch_size=config.eval_batch_size,
        dtype=_teacher_dtype(config),
    )
    teacher_metrics = (
        evaluate_examples(plan.task.name, plan.teacher, data.tokenizer, data.dev, settings)[0]
        if data.dev
        else {}
    )
    logger.info("teacher %s on dev: %s", config.teacher, teacher_metrics)
    cache_dir = out / WORK_DIR / "teacher"
    intermediate: dict[int, list[float]] = {}
    if config.seeds is None:
        run = _train_student(config, progress, plan, data, cache_dir, intermediate)
        result = DistillResult(run, teacher_metrics, intermediate)
    else:
        from .seeds import finetune_seeds

        def run_seed(seed_config: FinetuneConfig, seed_progress: bool) -> FinetuneResult:
            assert isinstance(seed_config, DistillConfig)
            return _train_student(seed_config, seed_progress, plan, data, cache_dir, intermediate)

        runs = finetune_seeds(config, progress=progress, table=table, run=run_seed)
        result = DistillResult(runs.best, teacher_metrics, intermediate, runs)
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    return result


def _check_positions(config: DistillConfig, plan: _Plan) -> None:
    """Windows of max_seq_length must fit both models' position tables."""
    assert config.max_seq_length is not None
    limits = {"teacher": int(plan.teacher.config.max_position_embeddings)}
    if plan.source == "preset":
        from .recipe import ModelSection

        preset = ModelSection(preset=config.model).model_config(vocab_size=plan.teacher.config.vocab_size)
        limits["student"] = int(preset.max_position_embeddings)
    elif plan.source == "checkpoint":
        from ..auto import AutoConfig

        limits["student"] = int(AutoConfig.from_pretrained(config.model).max_position_embeddings)
    # RoBERTa numbers positions from padding_idx + 1 (teacher and student alike: one family)
    offset = int(plan.teacher.config.pad_token_id) + 1 if plan.student_type == "roberta" else 0
    for role, limit in limits.items():
        if config.max_seq_length + offset > limit:
            raise BertForgeError(
                f"{argument('max_seq_length', config.max_seq_length)} does not fit the {role}'s "
                f"{limit} positions; pass {argument('max_seq_length', limit - offset)} or less"
            )
