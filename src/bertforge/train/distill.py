"""Knowledge distillation: a student learns from a frozen teacher's outputs (DistilBERT, Sanh et al. 2019).

The losses live in :mod:`.distill_losses`, written once for every distillation command
(:func:`~.distill_losses.soft_target_loss`, the temperature-scaled KL; :func:`~.distill_losses.hidden_cosine_loss`).

Pretraining by distillation (``[distill]`` in a pretraining recipe) wraps the student in
:class:`DistillationLoss`: the teacher runs under ``torch.inference_mode`` (in bf16 when the run is),
its vocabulary scores only at the masked positions; the student's loss is ``alpha_ce`` * soft
targets + ``alpha_mlm`` * its own masked-LM cross-entropy + ``alpha_cos`` * the cosine term.
:func:`init_student_from_teacher` starts a student from a subset of the teacher's layers, mapping
BERT's parameter names onto DistilBERT's (and back) when the families differ; task distillation
(:mod:`.distill_task`) starts its students the same way.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BertForgeError
from ..masked_lm import IGNORE_INDEX, masked_lm_inputs
from ..outputs import PreTrainingLossOutput
from .distill_losses import hidden_cosine_loss, soft_target_loss

if TYPE_CHECKING:
    from .pretrain_config import DistillSection

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ model plumbing
def mlm_logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """A masked-LM model's vocabulary scores for hidden states of any leading shape (e.g. the (M, H)
    masked rows only), whatever the family calls its head."""
    method = getattr(model, "mlm_logits", None)
    if callable(method):
        return method(hidden)  # type: ignore[no-any-return]
    for path in ("cls.predictions", "lm_head", "predictions"):  # BERT, RoBERTa, ALBERT (transformers' names)
        try:
            head = model.get_submodule(path)
        except AttributeError:
            continue
        return head(hidden)  # type: ignore[no-any-return]
    raise BertForgeError(f"{type(model).__name__} has no masked-LM head to distil with")


def _takes_token_types(model: nn.Module) -> bool:
    return "token_type_ids" in inspect.signature(type(model).forward).parameters


@dataclass
class DistillLossOutput(PreTrainingLossOutput):
    """A pretraining loss output whose ``loss`` is the weighted distillation sum; ``mlm_loss`` is
    the student's own masked-LM cross-entropy (unweighted), the two extra terms likewise."""

    distill_ce_loss: torch.Tensor | None = None
    distill_cos_loss: torch.Tensor | None = None


class DistillationLoss(nn.Module):
    """``forward(**batch)`` = the student's distillation loss, so DDP's hooks run around it (as
    pretrain.py's ``_LossModule``). The teacher is held outside the module tree: never saved,
    optimised, synchronised or switched to training mode."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        *,
        temperature: float,
        alpha_ce: float,
        alpha_mlm: float,
        alpha_cos: float,
    ) -> None:
        super().__init__()
        self.model = student
        self.__dict__["teacher"] = teacher  # a plain attribute, not a registered submodule
        self.temperature = temperature
        self.alpha_ce, self.alpha_mlm, self.alpha_cos = alpha_ce, alpha_mlm, alpha_cos
        self.student_types = _takes_token_types(student.base_model)  # type: ignore[arg-type]
        self.teacher_types = _takes_token_types(teacher.base_model)  # type: ignore[arg-type]

    teacher: nn.Module

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_ignored: Any,
    ) -> DistillLossOutput:
        if labels is None:
            raise ValueError("distillation needs labels: token ids at masked positions, -100 elsewhere")
        masked = labels != IGNORE_INDEX  # (B, T)
        use_cos = self.alpha_cos > 0
        with torch.inference_mode():
            teacher_types = token_type_ids if self.teacher_types else None
            teacher_encoder: Any = self.teacher.base_model
            teacher_hidden = teacher_encoder.sequence_output(input_ids, attention_mask, teacher_types)
            teacher_logits = mlm_logits(self.teacher, teacher_hidden[masked])  # (M, V): masked rows only
        # Clones outside inference mode: autograd may save them (the KL's backward reads the targets).
        teacher_logits = teacher_logits.clone()
        encoder: Any = self.model.base_model
        student_types = token_type_ids if self.student_types else None
        if use_cos:
            student_hidden = encoder.sequence_output(input_ids, attention_mask, student_types)
            at_masks, targets = student_hidden[masked], labels[masked]
        else:  # the last layer only at the masked rows (same row order as labels[masked])
            at_masks, targets, _ = masked_lm_inputs(
                encoder, input_ids, attention_mask, student_types, labels, with_cls=False
            )
        logits = mlm_logits(self.model, at_masks).float()  # (M, V)
        count = torch.tensor(targets.numel(), device=targets.device)
        mlm_loss = F.cross_entropy(logits, targets, reduction="sum") / count.clamp(min=1)
        ce_loss = soft_target_loss(logits, teacher_logits, self.temperature)
        loss = self.alpha_ce * ce_loss + self.alpha_mlm * mlm_loss
        cos_loss = None
        if use_cos:
            cos_loss = hidden_cosine_loss(student_hidden, teacher_hidden.clone(), attention_mask)
            loss = loss + self.alpha_cos * cos_loss
        return DistillLossOutput(
            loss, mlm_loss, None, count, distill_ce_loss=ce_loss, distill_cos_loss=cos_loss
        )

    def evaluation_loss(self, **batch: torch.Tensor) -> PreTrainingLossOutput:
        """The student's own pretraining loss and accuracy, what evaluation reports (FSDP gathers
        the weights around it as around forward)."""
        return self.model.pretraining_loss(**batch)  # type: ignore[no-any-return, operator]


# ------------------------------------------------------------------------ student initialisation
# BERT layer parameter (module path inside a BertLayer) -> DistilBERT's (inside a TransformerBlock).
BERT_TO_DISTILBERT_LAYER = {
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}
_DISTILBERT_TO_BERT_LAYER = {v: k for k, v in BERT_TO_DISTILBERT_LAYER.items()}


@dataclass
class _Layout:
    """A model's parameters under family-neutral names (BERT's layer names)."""

    word: nn.Parameter
    position: nn.Parameter
    token_type: nn.Parameter | None  # None: the family has no segments
    norm: dict[str, nn.Parameter]  # embedding LayerNorm: weight, bias
    layers: list[dict[str, nn.Parameter]]  # BERT-named parameters of each layer
    # MLM head: transform.{weight,bias}, norm.{weight,bias}, and the decoder's bias (the one in the
    # logits, whether or not tie_word_embeddings makes it the head's ``bias`` too)
    head: dict[str, nn.Parameter]


def _layout(model: nn.Module, role: str) -> _Layout:
    # Duck-typed across families: the parameters are found by transformers' module names.
    net: Any = model
    model_type = net.config.model_type
    base: Any = net.base_model
    emb = base.embeddings
    norm = {"weight": emb.LayerNorm.weight, "bias": emb.LayerNorm.bias}
    if model_type in ("bert", "roberta"):  # RoBERTa's encoder is BERT's, with its own LM head
        layers = [dict(layer.named_parameters()) for layer in base.encoder.layer]
        head: dict[str, nn.Parameter] = {}
        if hasattr(model, "lm_head"):
            lm = net.lm_head
            head = {
                "transform.weight": lm.dense.weight,
                "transform.bias": lm.dense.bias,
                "norm.weight": lm.layer_norm.weight,
                "norm.bias": lm.layer_norm.bias,
                "bias": lm.decoder.bias,
            }
        if hasattr(model, "cls") and hasattr(model.cls, "predictions"):
            pred = net.cls.predictions
            head = {
                "transform.weight": pred.transform.dense.weight,
                "transform.bias": pred.transform.dense.bias,
                "norm.weight": pred.transform.LayerNorm.weight,
                "norm.bias": pred.transform.LayerNorm.bias,
                "bias": pred.decoder.bias,
            }
        return _Layout(emb.word_embeddings.weight, emb.position_embeddings.weight,
                       emb.token_type_embeddings.weight, norm, layers, head)  # fmt: skip
    if model_type == "distilbert":
        layers = []
        for layer in base.transformer.layer:
            named = {}
            for name, param in layer.named_parameters():
                module, _, kind = name.rpartition(".")
                named[f"{_DISTILBERT_TO_BERT_LAYER[module]}.{kind}"] = param
            layers.append(named)
        head = {}
        if hasattr(model, "vocab_transform"):
            head = {
                "transform.weight": net.vocab_transform.weight,
                "transform.bias": net.vocab_transform.bias,
                "norm.weight": net.vocab_layer_norm.weight,
                "norm.bias": net.vocab_layer_norm.bias,
                "bias": net.vocab_projector.bias,
            }
        return _Layout(emb.word_embeddings.weight, emb.position_embeddings.weight, None, norm, layers, head)
    raise BertForgeError(
        f"distill.init_from_teacher copies BERT, RoBERTa and DistilBERT layers; the {role} is a "
        f"{model_type}. Set --distill.init_from_teacher false"
    )


def layers_copyable(teacher_type: str, student_type: str) -> bool:
    """Whether :func:`init_student_from_teacher` can copy between these families: within BERT,
    RoBERTa or DistilBERT, and between BERT and DistilBERT (ALBERT shares its layers: none to pick)."""
    if teacher_type == student_type:
        return teacher_type in ("bert", "roberta", "distilbert")
    return {teacher_type, student_type} == {"bert", "distilbert"}


def default_teacher_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """``student_layers`` teacher layers spread evenly, first and last included (12 -> 6:
    [0, 2, 4, 7, 9, 11], DistilBERT's choice)."""
    if student_layers == 1:
        return [0]
    step = (teacher_layers - 1) / (student_layers - 1)
    return [int(i * step + 0.5) for i in range(student_layers)]


def shape_differences(student_config: Any, teacher_config: Any) -> list[str]:
    """How a student's layers are shaped unlike the teacher's (empty: its layers can be copied)."""
    s, t = student_config, teacher_config
    return [
        f"{name} (student {getattr(s, name)}, teacher {getattr(t, name)})"
        for name in ("hidden_size", "intermediate_size", "num_attention_heads", "hidden_act")
        if getattr(s, name) != getattr(t, name)
    ]


def _check_same_shape(student: Any, teacher: Any) -> None:
    differing = shape_differences(student.config, teacher.config)
    if differing:
        raise BertForgeError(
            "distill.init_from_teacher needs the student's layers shaped like the teacher's; "
            f"they differ in {', '.join(differing)}. Match them with --model.* or set "
            "--distill.init_from_teacher false"
        )


def init_student_from_teacher(
    student: nn.Module, teacher: nn.Module, teacher_layers: list[int] | None = None
) -> list[int]:
    """Copy the teacher's embeddings, the chosen layers (student layer i <- teacher layer
    ``teacher_layers[i]``) and its MLM head into the student; returns the layers used.

    BERT and DistilBERT map onto each other: a DistilBERT student of a BERT teacher gets BERT's
    segment-A embedding (token_type_embeddings[0], which BERT adds to every token) folded into its
    learned position table, so for single-segment input its embeddings equal the teacher's; a BERT
    student of a DistilBERT teacher gets zero segment embeddings. A frozen sinusoidal table is kept.
    """
    _check_same_shape(student, teacher)
    src, dst = _layout(teacher, "teacher"), _layout(student, "student")
    teacher_type = str(teacher.config.model_type)  # type: ignore[union-attr]
    student_type = str(student.config.model_type)  # type: ignore[union-attr]
    if not layers_copyable(teacher_type, student_type):
        raise BertForgeError(
            f"cannot start a {student_type} student from a {teacher_type} teacher's layers (their "
            "positions differ); use a student of the teacher's family"
        )
    n_teacher, n_student = len(src.layers), len(dst.layers)
    chosen = list(teacher_layers) if teacher_layers else default_teacher_layers(n_teacher, n_student)
    if len(chosen) != n_student or not all(0 <= i < n_teacher for i in chosen):
        raise BertForgeError(
            f"distill.teacher_layers {chosen} must name {n_student} of the teacher's layers (0..{n_teacher - 1}), "
            "one per student layer"
        )
    with torch.no_grad():
        dst.word.copy_(src.word)
        for key, param in dst.norm.items():
            param.copy_(src.norm[key])
        for s_layer, t_index in zip(dst.layers, chosen, strict=True):
            for key, param in s_layer.items():
                param.copy_(src.layers[t_index][key])
        if dst.head and src.head:
            for key, param in dst.head.items():
                param.copy_(src.head[key])
        # Positions (+ BERT's segment-A row where the student has no segments).
        if dst.position.requires_grad:
            rows = min(dst.position.shape[0], src.position.shape[0])
            table = src.position[:rows].clone()
            if dst.token_type is None and src.token_type is not None:
                table += src.token_type[0]
            dst.position[:rows].copy_(table)
            if rows < dst.position.shape[0]:
                log.warning(
                    "the teacher has %d positions, the student %d: positions %d.. keep their random init",
                    rows, dst.position.shape[0], rows,
                )  # fmt: skip
        elif src.token_type is not None and dst.token_type is None:
            log.warning(
                "the student's sinusoidal positions are frozen; the teacher's segment embedding is dropped"
            )
        if dst.token_type is not None:
            if src.token_type is not None and src.token_type.shape == dst.token_type.shape:
                dst.token_type.copy_(src.token_type)
            else:
                dst.token_type.zero_()
    return chosen


# ------------------------------------------------------------------------------------- set-up
def prepare_distillation(
    settings: DistillSection,
    student: nn.Module,
    device: torch.device,
    bf16: bool,
    *,
    init_student: bool,
) -> DistillationLoss:
    """Load the teacher, check it against the student, initialise a fresh student from it when
    ``init_student`` and ``settings.init_from_teacher``, and return the loss module to train."""
    from ..auto import checkpoint_model_type, model_class_for

    assert settings.teacher is not None
    teacher_type = checkpoint_model_type(settings.teacher)
    teacher: Any = model_class_for(teacher_type, "masked-lm").from_pretrained(settings.teacher)
    s_vocab, t_vocab = student.config.vocab_size, teacher.config.vocab_size  # type: ignore[union-attr]
    if s_vocab != t_vocab:
        raise BertForgeError(
            f"the teacher {settings.teacher} has vocab_size {t_vocab} but the student {s_vocab}: teacher and "
            f"student must share the vocabulary; build the dataset with the teacher's tokenizer "
            f"(bertforge data build --tokenizer {settings.teacher})"
        )
    if init_student and settings.init_from_teacher:
        chosen = init_student_from_teacher(student, teacher, settings.teacher_layers)
        log.info("student initialised from teacher %s layers %s", settings.teacher, chosen)
    elif settings.init_from_teacher:
        log.info("student weights come from a checkpoint; not re-initialised from the teacher")
    alpha_cos = settings.alpha_cos
    s_width, t_width = student.config.hidden_size, teacher.config.hidden_size  # type: ignore[union-attr]
    if alpha_cos > 0 and s_width != t_width:
        log.warning(
            "distill.alpha_cos skipped: the cosine loss needs equal widths, student hidden_size %d, teacher %d",
            s_width, t_width,
        )  # fmt: skip
        alpha_cos = 0.0
    teacher.requires_grad_(False)
    teacher.to(device=device, dtype=torch.bfloat16 if bf16 else None).eval()
    log.info(
        "distilling from %s (%s, %s parameters), T=%g, alpha_ce=%g alpha_mlm=%g alpha_cos=%g",
        settings.teacher, type(teacher).__name__, f"{teacher.num_parameters():,}", settings.temperature,
        settings.alpha_ce, settings.alpha_mlm, alpha_cos,
    )  # fmt: skip
    return DistillationLoss(
        student,
        teacher,
        temperature=settings.temperature,
        alpha_ce=settings.alpha_ce,
        alpha_mlm=settings.alpha_mlm,
        alpha_cos=alpha_cos,
    )
