"""SpanBERT's span-boundary objective (SBO; Joshi et al. 2019) on a BERT encoder.

SpanBERT masks contiguous spans of whole words (``data.masking = "span"``) and predicts each
masked token x_i of a span (x_s .. x_e) twice: from its own hidden state (MLM) and from the hidden
states of the two tokens just outside the span, x_{s-1} and x_{e+1}, plus a learned embedding of
its offset i - s inside the span (SBO)::

    h0 = [x_{s-1}; x_{e+1}; p_{i-s}]
    h1 = LayerNorm(GELU(W1 h0))          # mlp_layer_norm.linear1 / layer_norm1
    y  = LayerNorm(GELU(W2 h1))          # mlp_layer_norm.linear2 / layer_norm2
    logits = E y + b                     # E: the MLM decoder (tied word embeddings), b: sbo.bias

The loss is MLM + SBO (each a mean over the masked tokens); there is no NSP, and training uses
single segments (``data.objective = "mlm"``). The head follows SpanBERT's code
(``BertPairTargetPredictionHead`` with ``MLPWithLayerNorm``): a position embedding table of
``max_pair_targets`` = 20 offsets of 200 dimensions; a token further than 20 tokens into its span is
left out of the SBO loss (the MLM loss still counts it). Both sizes can be changed through
``config.json`` keys ``sbo_max_targets`` / ``sbo_position_embedding_size`` (kept as config extras).

Module names are BERT's (``bert``, ``cls.predictions``) plus ``sbo.*``, and the config is a plain
``BertConfig`` (model_type "bert"): a published SpanBERT checkpoint (BERT architecture) loads into
:class:`BertForPreTrainingSBO` with the SBO head newly initialised (logged by the loader), and a
checkpoint this class saves loads into any BERT class (``sbo.*`` reported as unused).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BertConfig
from ..heads import BertForMaskedLM, BertOnlyMLMHead
from ..masked_lm import IGNORE_INDEX, masked_lm_inputs_with, masked_positions_loss
from ..model import BertModel, activation
from ..outputs import PreTrainingLossOutput
from ..pretrained import deferred_init

MAX_PAIR_TARGETS = 20  # SpanBERT's max_pair_targets: offsets with their own position embedding
POSITION_EMBEDDING_SIZE = 200  # SpanBERT's pair position embedding size


class MLPWithLayerNorm(nn.Module):
    """SpanBERT's two-layer feed-forward: (Linear -> activation -> LayerNorm) twice."""

    def __init__(self, config: BertConfig, input_size: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(input_size, config.hidden_size)
        self.non_lin1 = activation(config.hidden_act)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.linear2 = nn.Linear(config.hidden_size, config.hidden_size)
        self.non_lin2 = activation(config.hidden_act)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = self.layer_norm1(self.non_lin1(self.linear1(hidden)))
        return self.layer_norm2(self.non_lin2(self.linear2(hidden)))


class SpanBoundaryHead(nn.Module):
    """SBO head (SpanBERT's ``BertPairTargetPredictionHead``): boundary states + offset embedding ->
    MLP; the vocabulary projection is the MLM decoder's matrix, passed to :meth:`forward`, plus
    this head's own bias."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.max_targets = int(config.extra.get("sbo_max_targets", MAX_PAIR_TARGETS))
        size = int(config.extra.get("sbo_position_embedding_size", POSITION_EMBEDDING_SIZE))
        self.position_embeddings = nn.Embedding(self.max_targets, size)
        self.mlp_layer_norm = MLPWithLayerNorm(config, 2 * config.hidden_size + size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def reset_extra_parameters(self) -> None:
        nn.init.zeros_(self.bias)

    def transform(self, left: torch.Tensor, right: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """(M, H) states for (M, H) left / right boundary states and (M,) offsets < max_targets."""
        hidden = torch.cat([left, right, self.position_embeddings(offsets).to(left.dtype)], dim=-1)
        return self.mlp_layer_norm(hidden)

    def forward(
        self, left: torch.Tensor, right: torch.Tensor, offsets: torch.Tensor, decoder_weight: torch.Tensor
    ) -> torch.Tensor:
        """(M, V) vocabulary scores."""
        return F.linear(self.transform(left, right, offsets), decoder_weight, self.bias)


BertPairTargetPredictionHead = SpanBoundaryHead  # SpanBERT's name


@dataclass
class SpanBoundaryLossOutput(PreTrainingLossOutput):
    """:class:`PreTrainingLossOutput` (``loss`` = MLM + SBO) with the SBO part and its counts."""

    sbo_loss: torch.Tensor | None = None
    sbo_correct: torch.Tensor | None = None
    sbo_count: torch.Tensor | None = None


class BertForPreTrainingSBO(BertForMaskedLM):
    """SpanBERT pretraining: BERT's masked-LM model (``bert`` without pooler, ``cls.predictions``)
    plus the span-boundary head ``sbo``. ``forward`` is BertForMaskedLM's (fill-mask works);
    :meth:`pretraining_loss` adds the SBO loss when the batch carries span boundaries."""

    def __init__(self, config: BertConfig) -> None:
        super(BertForMaskedLM, self).__init__()  # the modules are built here, with the SBO head
        self.config = config
        with deferred_init():
            self.bert = BertModel(config, add_pooling_layer=False)
            self.cls = BertOnlyMLMHead(config)
            self.sbo = SpanBoundaryHead(config)
        self.post_init()

    def pretraining_loss(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        span_left: torch.Tensor | None = None,
        span_right: torch.Tensor | None = None,
        span_offset: torch.Tensor | None = None,
        accuracy: bool = True,
    ) -> SpanBoundaryLossOutput:
        """MLM at the masked positions (``labels`` != -100) + SBO. ``span_left`` / ``span_right`` /
        ``span_offset`` (B, T): at each masked position, the positions just left and right of its
        span and its 0-based offset inside it (the data pipeline's ``data.span_boundary = true``).
        Without them the loss is MLM alone. The encoder's last layer runs only at the masked and
        boundary rows when that is much less than the whole sequence."""
        if labels is None:
            raise ValueError("pretraining_loss needs labels: token ids at masked positions, -100 elsewhere")
        spans = (span_left, span_right, span_offset)
        if any(t is None for t in spans) and not all(t is None for t in spans):
            raise ValueError("span_left, span_right and span_offset go together (data.span_boundary)")
        linked = [] if span_left is None else [span_left, span_right]
        hidden, targets, _, bounds = masked_lm_inputs_with(
            self.bert,
            input_ids,
            attention_mask,
            token_type_ids,
            labels,
            False,
            linked,  # type: ignore[arg-type]
        )
        mlm_loss, mlm_correct, mlm_count = masked_positions_loss(
            self.cls.predictions, hidden, targets, accuracy
        )
        if span_offset is None:
            return SpanBoundaryLossOutput(mlm_loss, mlm_loss, mlm_correct, mlm_count)
        offsets = span_offset[labels != IGNORE_INDEX]  # (M,), the order of ``targets``
        sbo_loss, sbo_correct, sbo_count = self.sbo_loss(bounds[0], bounds[1], offsets, targets, accuracy)
        return SpanBoundaryLossOutput(
            mlm_loss + sbo_loss, mlm_loss, mlm_correct, mlm_count,
            sbo_loss=sbo_loss, sbo_correct=sbo_correct, sbo_count=sbo_count,
        )  # fmt: skip

    def sbo_loss(
        self,
        left: torch.Tensor,
        right: torch.Tensor,
        offsets: torch.Tensor,
        targets: torch.Tensor,
        accuracy: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Mean cross-entropy of the SBO scores over the masked tokens whose offset has an embedding
        (offset < max_targets); (loss, correct, count). 0 when there are none."""
        keep = offsets < self.sbo.max_targets
        left, right, offsets, targets = left[keep], right[keep], offsets[keep], targets[keep]
        logits = self.sbo(left, right, offsets, self.cls.predictions.decoder.weight).float()
        count = torch.tensor(targets.numel(), device=targets.device)
        loss = F.cross_entropy(logits, targets, reduction="sum") / count.clamp(min=1)
        correct = (logits.detach().argmax(-1) == targets).sum() if accuracy else None
        return loss, correct, count
