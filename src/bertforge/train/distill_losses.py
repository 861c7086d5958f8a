"""The knowledge-distillation losses, written once for every distillation bertforge runs: pretraining
by distillation (:mod:`.distill`, DistilBERT) and task distillation (:mod:`.distill_task`, TinyBERT's
two stages).

* :func:`soft_target_loss`: KL(softmax(t/T) || softmax(s/T)) * T^2, summed over the classes and
  averaged over the rows (DistilBERT's ``KLDivLoss(reduction="batchmean")``); the T^2 keeps the
  gradient scale independent of the temperature (Hinton et al., 2015).
* :func:`hidden_cosine_loss`: mean (1 - cosine) between student and teacher hidden states at the
  selected (non-padded) positions (DistilBERT's ``CosineEmbeddingLoss`` with target 1).
* :func:`hidden_mse_loss`: mean squared error between (projected) student and teacher hidden states
  at the real positions (TinyBERT's hidden-state loss; the projection is the caller's).
* :func:`attention_kl_loss`: KL between the teacher's and the student's attention distributions of
  every real query (MiniLM's self-attention transfer; TinyBERT matches the scores with MSE, but
  bertforge's attention returns probabilities, and a KL is blind to the scores' scale).

Every loss is computed in float32 and is 0, still connected to the graph, when nothing is selected.
Shapes: B batch, T sequence length, H hidden size, N heads, C classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Probabilities below this are treated as this when their log is taken (a padded key's is exactly 0).
_PROBABILITY_FLOOR = 1e-12


def soft_target_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)) * T^2: summed over the last dimension
    (classes), averaged over every other position. 0 when there are no rows. Computed in fp32."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} must have the same shape"
        )
    classes = student_logits.shape[-1]
    student = student_logits.float().reshape(-1, classes) / temperature
    teacher = teacher_logits.float().reshape(-1, classes) / temperature
    rows = student.shape[0]
    if rows == 0:
        return student.sum()  # 0, still connected to the graph
    kl = F.kl_div(student.log_softmax(-1), teacher.log_softmax(-1), reduction="sum", log_target=True)
    return kl / rows * temperature**2


def _selected(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, H) of both at the positions where ``mask`` (B, T; 1/True = real token) is set, in fp32."""
    student, teacher = student.float(), teacher.float()
    if mask is not None:
        keep = mask.bool()
        student, teacher = student[keep], teacher[keep]
    return student.reshape(-1, student.shape[-1]), teacher.reshape(-1, teacher.shape[-1])


def hidden_cosine_loss(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of 1 - cos(student, teacher) over the positions where ``mask`` (B, T; 1/True = real
    token) is set, or over all positions when it is None. Hidden states (..., H), same width."""
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(
            f"student hidden states {tuple(student_hidden.shape)} and teacher hidden states "
            f"{tuple(teacher_hidden.shape)} must have the same shape (the cosine loss needs equal widths)"
        )
    student, teacher = _selected(student_hidden, teacher_hidden, mask)
    if student.shape[0] == 0:
        return student.sum()
    return (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()


def hidden_mse_loss(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared difference per element over the positions where ``mask`` (B, T) is set (all
    when None). Both (..., H) of one width: project the student's first when the widths differ."""
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(
            f"student hidden states {tuple(student_hidden.shape)} and teacher hidden states "
            f"{tuple(teacher_hidden.shape)} must have the same shape; project the student's to the "
            "teacher's width first"
        )
    student, teacher = _selected(student_hidden, teacher_hidden, mask)
    if student.shape[0] == 0:
        return student.sum()
    return F.mse_loss(student, teacher)


def attention_kl_loss(
    student_attention: torch.Tensor, teacher_attention: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """KL(teacher || student) between attention distributions (B, N, T, T) (probabilities over the
    keys), averaged over heads and the real queries (``mask`` (B, T)). With different head counts
    the maps are averaged over heads first, so any student can learn from any teacher."""
    if student_attention.shape[1] != teacher_attention.shape[1]:
        student_attention = student_attention.mean(1, keepdim=True)
        teacher_attention = teacher_attention.mean(1, keepdim=True)
    if student_attention.shape != teacher_attention.shape:
        raise ValueError(
            f"student attention {tuple(student_attention.shape)} and teacher attention "
            f"{tuple(teacher_attention.shape)} must cover the same tokens"
        )
    student, teacher = student_attention.float(), teacher_attention.float()
    if mask is not None:
        # (B, T) -> (B, N, T): every head of a real query; its padded keys have probability 0
        queries = mask.bool()[:, None, :].expand(-1, student.shape[1], -1)
        student, teacher = student[queries], teacher[queries]
    log_student = student.clamp_min(_PROBABILITY_FLOOR).log()
    log_teacher = teacher.clamp_min(_PROBABILITY_FLOOR).log()
    return soft_target_loss(log_student, log_teacher, temperature=1.0)
