"""DistilBERT (Sanh et al., 2019): BERT's encoder with half the layers, no token types and no pooler.

Module and parameter names follow transformers' ``modeling_distilbert.py`` one to one
(``distilbert.embeddings.word_embeddings``, ``distilbert.transformer.layer.N.attention.q_lin``,
``...sa_layer_norm``, ``...ffn.lin1``, ``...output_layer_norm``, ``vocab_transform``,
``vocab_projector``), so a state dict moves between the two without a rename table. The maths is
bertforge.ops', shared with BERT.

With ``sinusoidal_pos_embds`` the position table is the fixed sin/cos table of the Transformer paper,
frozen (``requires_grad=False``) and saved in the state dict, so transformers loads it unchanged.

The configuration and its presets are in :mod:`bertforge.models.distilbert_config`.

Shapes in comments: B batch, T sequence length, H = dim, N heads, P selected rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BertForgeError
from ..masked_lm import masked_lm_inputs
from ..ops import (
    Dropout,
    activation,
    gather_rows,
    multi_head_attention,
    projection_input,
    run_encoder,
    run_layer,
    sinusoidal_positions,
)
from ..outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from ..pretrained import PreTrainedModel, deferred_init
from ..pruning import HeadLayout
from ..task_heads import (
    EncoderHead,
    MaskedLMModel,
    MultipleChoiceHead,
    QuestionAnsweringHead,
    SequenceClassificationHead,
    TokenClassificationHead,
)

# The config has its own module (transformers' configuration_distilbert.py); its names stay
# importable from here, where they lived first.
from .distilbert_config import GENERIC_NAMES as GENERIC_NAMES
from .distilbert_config import LAYER_NORM_EPS, DistilBertConfig
from .distilbert_config import PRESET_ALIASES as PRESET_ALIASES
from .distilbert_config import PRESETS as PRESETS
from .distilbert_config import preset_names as preset_names

__all__ = [
    "DistilBertConfig",
    "DistilBertForMaskedLM",
    "DistilBertForMultipleChoice",
    "DistilBertForQuestionAnswering",
    "DistilBertForSequenceClassification",
    "DistilBertForTokenClassification",
    "DistilBertModel",
    "DistilBertPreTrainedModel",
]


# ------------------------------------------------------------------------------------- modules
class DistilBertEmbeddings(nn.Module):
    """word + position embeddings (learned, or the frozen sin/cos table), LayerNorm, dropout."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.dim, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.dim)
        self.LayerNorm = nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS)
        self.dropout = Dropout(config.dropout)
        self.sinusoidal = config.sinusoidal_pos_embds
        if self.sinusoidal:
            self.position_embeddings.weight.requires_grad_(False)

    def reset_extra_parameters(self) -> None:
        # Runs after the tables' own initialisation (apply visits children first).
        if self.sinusoidal:
            with torch.no_grad():
                self.position_embeddings.weight.copy_(
                    sinusoidal_positions(*self.position_embeddings.weight.shape)
                )

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)  # (1, T)
        embeddings = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class DistilBertSelfAttention(nn.Module):
    """Multi-head attention with its output projection (``out_lin``); no residual, no norm.
    ``n_heads`` is fewer than the config's in a layer whose heads were pruned (bertforge.pruning)."""

    def __init__(self, config: DistilBertConfig, n_heads: int | None = None) -> None:
        super().__init__()
        self.n_heads = config.n_heads if n_heads is None else n_heads
        width = self.n_heads * config.head_dim  # dim unless pruned
        self.q_lin = nn.Linear(config.dim, width)
        self.k_lin = nn.Linear(config.dim, width)
        self.v_lin = nn.Linear(config.dim, width)
        self.out_lin = nn.Linear(width, config.dim)
        self.dropout_prob = config.attention_dropout

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        queries: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``attention_mask``: bool (B, 1, 1, T) or None; ``queries``: (B, P, H) rows to compute
        (default: all positions); keys and values always come from all of ``hidden_states``."""
        # Cast the fp32 LayerNorm output once, not once per projection.
        hidden_states = projection_input(hidden_states, self.q_lin.weight)
        if queries is not None:
            queries = queries.to(hidden_states.dtype)
        context, probs = multi_head_attention(
            self.q_lin(hidden_states if queries is None else queries),
            self.k_lin(hidden_states),
            self.v_lin(hidden_states),
            self.n_heads,
            attention_mask,
            self.dropout_prob,
            self.training,
            output_attentions,
        )
        return self.out_lin(context), probs


class DistilBertFFN(nn.Module):
    """lin1 -> activation -> lin2 -> dropout."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.dropout = Dropout(config.dropout)
        self.lin1 = nn.Linear(config.dim, config.hidden_dim)
        self.lin2 = nn.Linear(config.hidden_dim, config.dim)
        self.act = activation(config.activation)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.lin2(self.act(self.lin1(hidden_states))))


class DistilBertTransformerBlock(nn.Module):
    """One post-LN encoder layer: attention + residual + sa_layer_norm, FFN + residual + output_layer_norm.

    (DistilBERT applies no dropout to the attention output before the residual, unlike BERT.)
    """

    def __init__(self, config: DistilBertConfig, n_heads: int | None = None) -> None:
        super().__init__()
        self.attention = DistilBertSelfAttention(config, n_heads)
        self.sa_layer_norm = nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS)
        self.ffn = DistilBertFFN(config)
        self.output_layer_norm = nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, H) -> (B, T, H); with ``rows`` (B, P), only those positions' outputs (B, P, H) —
        exact, as in BertLayer: a position's output depends on its own query, residual and FFN."""
        residual = hidden_states if rows is None else gather_rows(hidden_states, rows)
        attended, probs = self.attention(
            hidden_states, attention_mask, output_attentions, None if rows is None else residual
        )
        attended = self.sa_layer_norm(attended + residual)
        return self.output_layer_norm(self.ffn(attended) + attended), probs


class DistilBertTransformer(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        # Each layer keeps its own head count: fewer where config.pruned_heads removed some.
        self.layer = nn.ModuleList(
            DistilBertTransformerBlock(config, config.attention_heads(i)) for i in range(config.n_layers)
        )
        self.gradient_checkpointing = False  # see PreTrainedModel.gradient_checkpointing_enable

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        last_layer_rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        all_hidden: list[torch.Tensor] | None = [hidden_states] if output_hidden_states else None
        all_attentions: list[torch.Tensor] | None = [] if output_attentions else None
        last = len(self.layer) - 1
        for index, layer in enumerate(self.layer):
            rows = last_layer_rows if index == last else None
            hidden_states, probs = run_layer(
                layer, self.gradient_checkpointing, hidden_states, attention_mask, output_attentions, rows
            )
            if all_hidden is not None:
                all_hidden.append(hidden_states)
            if all_attentions is not None:
                all_attentions.append(probs)  # type: ignore[arg-type]
        return (
            hidden_states,
            tuple(all_hidden) if all_hidden is not None else None,
            tuple(all_attentions) if all_attentions is not None else None,
        )


# -------------------------------------------------------------------------------------- models
class DistilBertPreTrainedModel(PreTrainedModel):
    """Base of DistilBertModel and every DistilBERT head: config class and checkpoint layout."""

    config: DistilBertConfig
    config_class = DistilBertConfig
    base_model_prefix = "distilbert"
    base_modules = ("embeddings", "transformer")
    required_modules = ("embeddings", "transformer")


class DistilBertModel(DistilBertPreTrainedModel):
    """The bare encoder: the last hidden state (no pooler; ``pooler_output`` is None)."""

    head_layout = HeadLayout(
        layer="transformer.layer.{}",
        attention="attention",
        rows=("q_lin", "k_lin", "v_lin"),
        columns="out_lin",
    )

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.embeddings = DistilBertEmbeddings(config)
            self.transformer = DistilBertTransformer(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BaseModelOutputWithPooling:
        return self._forward(input_ids, attention_mask, position_ids, output_hidden_states, output_attentions)

    def sequence_output(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The last hidden state (B, T, H). ``token_type_ids`` is accepted for a uniform signature
        across families and ignored: DistilBERT has no segments."""
        return self._forward(input_ids, attention_mask, None, False, False).last_hidden_state

    def forward_rows(
        self,
        input_ids: torch.Tensor,
        rows: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> BaseModelOutputWithPooling:
        """Like ``forward``, but the last layer computes only the (B, P) positions ``rows``
        (``last_hidden_state`` is (B, P, H)); see BertModel.forward_rows. ``token_type_ids`` ignored."""
        return self._forward(input_ids, attention_mask, None, False, False, rows)

    def _forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        output_hidden_states: bool,
        output_attentions: bool,
        last_layer_rows: torch.Tensor | None = None,
    ) -> BaseModelOutputWithPooling:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, seq_len), got shape {tuple(input_ids.shape)}")
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(
                f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings "
                f"({self.config.max_position_embeddings}); truncate the input (tokenizer max_length)"
            )
        hidden = self.embeddings(input_ids, position_ids)
        hidden, all_hidden, all_attentions = run_encoder(
            self.transformer, hidden, attention_mask, output_hidden_states, output_attentions, last_layer_rows
        )
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden, hidden_states=all_hidden, attentions=all_attentions
        )


class _DistilBertHead(EncoderHead):
    """What DistilBERT's heads do differently: no segments, and no pooler.

    Their forwards name no token_type_ids, so the callers that read a forward's signature
    (``auto.forward_kwargs``, the ONNX export, distillation) send none; each passes None to the
    shared forward (narrowing its signature, hence ``type: ignore[override]``), whose encoder call
    drops it here. ``pretraining_loss`` keeps the shared signature (pretraining batches carry
    token_type_ids) and ignores them.
    """

    distilbert: DistilBertModel
    pre_classifier: nn.Linear

    def _encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        output_hidden_states: bool,
        output_attentions: bool,
    ) -> BaseModelOutputWithPooling:
        return self.distilbert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )

    def _masked_lm_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        labels: torch.Tensor,
        with_cls: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        return masked_lm_inputs(self.distilbert, input_ids, attention_mask, None, labels, with_cls)

    def _sequence_logits(self, out: BaseModelOutputWithPooling) -> torch.Tensor:
        # In place of a pooler: the first token's hidden state -> pre_classifier -> ReLU -> dropout.
        pooled = self.dropout(F.relu(self.pre_classifier(out.last_hidden_state[:, 0])))
        return self.classifier(pooled)


class DistilBertForMaskedLM(_DistilBertHead, MaskedLMModel, DistilBertPreTrainedModel):
    """Masked-LM scores: vocab_transform -> activation -> vocab_layer_norm -> vocab_projector (tied
    to the word embeddings). Also the family's pretraining model (masked LM alone, no sentence head)."""

    tied_weights = {"vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight"}

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.distilbert = DistilBertModel(config)
            self.vocab_transform = nn.Linear(config.dim, config.dim)
            self.vocab_layer_norm = nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS)
            self.vocab_projector = nn.Linear(config.dim, config.vocab_size)
        self.act = activation(config.activation)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.vocab_projector

    def mlm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Vocabulary scores for hidden states of any leading shape, e.g. (M, H) masked rows only."""
        return self.vocab_projector(self.vocab_layer_norm(self.act(self.vocab_transform(hidden_states))))

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> MaskedLMOutput:
        return super().forward(
            input_ids, attention_mask, None, position_ids, labels, output_hidden_states, output_attentions
        )


class DistilBertForSequenceClassification(
    _DistilBertHead, SequenceClassificationHead, DistilBertPreTrainedModel
):
    """[CLS] hidden state -> pre_classifier -> ReLU -> dropout -> classifier; regression when num_labels == 1."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        with deferred_init():
            self.distilbert = DistilBertModel(config)
            self.pre_classifier = nn.Linear(config.dim, config.dim)
            self.classifier = nn.Linear(config.dim, config.num_labels)
            self.dropout = Dropout(config.seq_classif_dropout)
        self.post_init()

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> SequenceClassifierOutput:
        return super().forward(
            input_ids, attention_mask, None, position_ids, labels, output_hidden_states, output_attentions
        )


class DistilBertForTokenClassification(_DistilBertHead, TokenClassificationHead, DistilBertPreTrainedModel):
    """A linear layer over every token's hidden state (dropout = config.dropout)."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        with deferred_init():
            self.distilbert = DistilBertModel(config)
            self.dropout = Dropout(config.dropout)
            self.classifier = nn.Linear(config.dim, config.num_labels)
        self.post_init()

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> TokenClassifierOutput:
        return super().forward(
            input_ids, attention_mask, None, position_ids, labels, output_hidden_states, output_attentions
        )


class DistilBertForQuestionAnswering(_DistilBertHead, QuestionAnsweringHead, DistilBertPreTrainedModel):
    """Extractive QA: dropout (qa_dropout) then start and end logits for every token."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        if config.num_labels != 2:
            raise BertForgeError(
                f"DistilBertForQuestionAnswering needs num_labels = 2 (start and end), got {config.num_labels}"
            )
        self.config = config
        self.num_labels = config.num_labels
        with deferred_init():
            self.distilbert = DistilBertModel(config)
            self.qa_outputs = nn.Linear(config.dim, config.num_labels)
            self.dropout = Dropout(config.qa_dropout)
        self.post_init()

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> QuestionAnsweringModelOutput:
        return super().forward(
            input_ids,
            attention_mask,
            None,
            position_ids,
            start_positions,
            end_positions,
            output_hidden_states,
            output_attentions,
        )

    def _span_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.qa_outputs(self.dropout(hidden_states))


class DistilBertForMultipleChoice(_DistilBertHead, MultipleChoiceHead, DistilBertPreTrainedModel):
    """Inputs (B, C, T); per choice [CLS] -> pre_classifier -> ReLU -> dropout -> one logit."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.distilbert = DistilBertModel(config)
            self.pre_classifier = nn.Linear(config.dim, config.dim)
            self.classifier = nn.Linear(config.dim, 1)
            self.dropout = Dropout(config.seq_classif_dropout)
        self.post_init()

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> MultipleChoiceModelOutput:
        return super().forward(
            input_ids, attention_mask, None, position_ids, labels, output_hidden_states, output_attentions
        )
