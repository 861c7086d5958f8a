"""What a task distillation starts from, checked before anything is written: the teacher (a
fine-tuned checkpoint whose head does the task), the student (a preset, a checkpoint with the
teacher's vocabulary, or the teacher cut to some layers), the layer lists, and the windows both
models must fit. :func:`plan_distillation` returns a :class:`DistillPlan`; :func:`build_student`
makes the student it describes (:mod:`.distill_task` runs it).

Families: a student is of the teacher's family, or DistilBERT for a BERT teacher and back (the
same WordPiece ids; DistilBERT ignores segment ids). Layers copy within BERT, RoBERTa and DistilBERT
and between BERT and DistilBERT (:func:`~.distill.init_student_from_teacher`); ALBERT shares its
layers, so an ALBERT student starts from a preset's random weights or a checkpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..auto import AutoConfig, checkpoint_head_kind, checkpoint_model_type, model_class_for
from ..config import config_path, read_config_json
from ..errors import BertForgeError
from ..pipelines.common import load_tokenizer
from ..tasks.arguments import argument
from ..tasks.registry import TASKS, TaskDefinition, get_task, task_for_head
from .distill import default_teacher_layers, init_student_from_teacher, layers_copyable, shape_differences
from .distill_config import DistillConfig
from .distill_stages import layer_count, uniform_layer_map
from .finetune import model_overrides
from .pretrain_config import ModelSection

logger = logging.getLogger(__name__)

# Texts both tokenizers must encode alike (cases, accents, punctuation, CJK, whitespace).
_PROBES = ("Hello, World! The QUICK brown fox's naïve café, 2024.", "北京是中国的首都。", " a\tb  c ")


@dataclass
class DistillPlan:
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


def teacher_task(teacher: str) -> str:
    """The task of a fine-tuned teacher (from config.json), or an error when it has no task head."""
    kind = _teacher_head(teacher)
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
        return "preset", ModelSection(preset=config.model).family()
    raise BertForgeError(
        f"the student {argument('model', config.model)} is neither a checkpoint directory nor a preset; "
        "pass a preset such as bert-mini or distilbert-L4-H256, or a directory"
    )


def _check_vocabulary(config: DistillConfig, teacher: Any, teacher_tokenizer: Any) -> None:
    """A student checkpoint must read the teacher's token ids: same size, same tokenizer."""
    student = config.model
    fix = "distil into a student trained with the teacher's tokenizer, or into a preset"
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


def plan_distillation(config: DistillConfig) -> DistillPlan:
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
        s_layers = layer_count(AutoConfig.from_pretrained(config.model))
    else:
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
    plan = DistillPlan(task, teacher, tokenizer, labels, soft, student_type, source, copy_layers, layer_map)
    _check_positions(config, plan)
    for role, path in (
        ("teacher", config.teacher),
        ("student", config.model if source == "checkpoint" else ""),
    ):
        if path and Path(config.out).resolve() == Path(path).resolve():
            raise BertForgeError(
                f"{argument('out', config.out)} is the {role}'s directory, which the run would overwrite; "
                "pass another output directory"
            )
    return plan


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


def build_student(config: DistillConfig, plan: DistillPlan, labels: list[str] | None) -> Any:
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
        student_config = ModelSection(preset=config.model).model_config(
            teacher.config.vocab_size, teacher.config.pad_token_id
        )
    student = model_class(student_config.replace(**overrides))
    if plan.copy_layers is not None:
        chosen = init_student_from_teacher(student, teacher, plan.copy_layers)
        _copy_task_head(student, teacher)
        logger.info("student starts from the teacher's embeddings, layers %s and head", chosen)
    return student


def _check_positions(config: DistillConfig, plan: DistillPlan) -> None:
    """Windows of max_seq_length must fit both models' position tables."""
    assert config.max_seq_length is not None
    limits = {"teacher": int(plan.teacher.config.max_position_embeddings)}
    if plan.source == "preset":
        preset = ModelSection(preset=config.model).model_config(vocab_size=plan.teacher.config.vocab_size)
        limits["student"] = int(preset.max_position_embeddings)
    elif plan.source == "checkpoint":
        limits["student"] = int(AutoConfig.from_pretrained(config.model).max_position_embeddings)
    # RoBERTa numbers positions from padding_idx + 1 (teacher and student alike: one family)
    offset = int(plan.teacher.config.pad_token_id) + 1 if plan.student_type == "roberta" else 0
    for role, limit in limits.items():
        if config.max_seq_length + offset > limit:
            raise BertForgeError(
                f"{argument('max_seq_length', config.max_seq_length)} does not fit the {role}'s "
                f"{limit} positions; pass {argument('max_seq_length', limit - offset)} or less"
            )
