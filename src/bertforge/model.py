"""The BERT encoder: embeddings, self-attention, feed-forward, layers, pooler, and ``BertModel``.

Module and parameter names follow Hugging Face's ``modeling_bert.py`` one to one
(``embeddings.word_embeddings``, ``encoder.layer.N.attention.self.query``, ``...output.LayerNorm``,
``pooler.dense``), so a state dict moves between the two without a rename table.

Shapes in comments: B batch, T sequence length, H hidden size, N heads, D = H / N head size.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from .config import BertConfig, PretrainedConfig
from .ops import (
    Dropout,
    activation,
    dropout,
    gather_rows,
    key_padding_mask,
    multi_head_attention,
    projection_input,
    run_encoder,
    run_layer,
    sinusoidal_positions,
)
from .outputs import BaseModelOutputWithPooling
from .pretrained import PreTrainedModel, deferred_init
from .pruning import HeadLayout

# Re-exported: callers imported these from here before ops.py held the shared maths.
__all__ = [
    "BertEmbeddings",
    "BertPreTrainedModel",
    "BertEncoder",
    "BertLayer",
    "BertModel",
    "BertPooler",
    "BertSelfAttention",
    "Dropout",
    "activation",
    "dropout",
    "gather_rows",
    "key_padding_mask",
]


class BertPreTrainedModel(PreTrainedModel):
    """Base of BertModel and every BERT head: BERT's config class and checkpoint layout."""

    config: BertConfig
    # Wider than BertConfig: RobertaModel, a BertModel, sets RobertaConfig.
    config_class: ClassVar[type[PretrainedConfig]] = BertConfig
    base_model_prefix = "bert"


class BertEmbeddings(nn.Module):
    """token + learned absolute position + segment (token type) embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.sinusoidal = config.sinusoidal_pos_embds
        if self.sinusoidal:
            self.position_embeddings.weight.requires_grad_(False)

    def reset_extra_parameters(self) -> None:
        # Runs after the embedding tables' own initialisation (apply visits children first).
        if self.sinusoidal:
            table = sinusoidal_positions(*self.position_embeddings.weight.shape)
            with torch.no_grad():
                self.position_embeddings.weight.copy_(table)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        seq_len = input_ids.shape[1]
        if position_ids is None:
            # (1, T), broadcast over the batch
            position_ids = torch.arange(seq_len, device=input_ids.device).unsqueeze(0)
        # Summed in transformers' order (word + type, then position) so float rounding matches too.
        if token_type_ids is None:
            # All segment A: add row 0 once instead of looking up B*T zeros.
            embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
        else:
            embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention over the whole sequence (bidirectional).

    ``num_heads`` (default: the config's) is fewer in a layer whose heads were pruned: the
    projections then have ``num_heads * D`` output rows instead of H (see bertforge.pruning).
    """

    def __init__(self, config: BertConfig, num_heads: int | None = None) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads if num_heads is None else num_heads
        self.head_dim = config.head_dim
        self.all_head_size = self.num_heads * self.head_dim
        self.query = nn.Linear(config.hidden_size, self.all_head_size)
        self.key = nn.Linear(config.hidden_size, self.all_head_size)
        self.value = nn.Linear(config.hidden_size, self.all_head_size)
        self.dropout_prob = config.attention_probs_dropout_prob

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        queries: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``attention_mask``: bool (B, 1, 1, T), True where a key may be attended to, or None; or
        a :class:`bertforge.ops.Packing` of the rows ``hidden_states`` packs. ``queries``: (B, P, H) rows to compute the output for (default: every position); keys and
        values always come from all of ``hidden_states``."""
        # Three matmuls, not one fused (3H, H) one: measured 2026-11-23 on this CPU (fp32 and bf16,
        # inference and training), fusing was 1-3% slower once the weight concatenation is paid.
        # Autocast (or a bf16 inference model) would cast the fp32 LayerNorm output once per
        # projection, three times, and cast three gradients back; cast once instead.
        hidden_states = projection_input(hidden_states, self.query.weight)
        if queries is not None:
            queries = queries.to(hidden_states.dtype)
        # (B, T, N*D) context, T = P rows when queries are given; N*D = H unless pruned.
        return multi_head_attention(
            self.query(hidden_states if queries is None else queries),
            self.key(hidden_states),
            self.value(hidden_states),
            self.num_heads,
            attention_mask,
            self.dropout_prob,
            self.training,
            output_attentions,
        )


class _ProjectAddNorm(nn.Module):
    """dense -> dropout -> + residual -> LayerNorm: how both sub-blocks of a BERT layer end (post-LN)."""

    def __init__(self, config: BertConfig, in_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class BertSelfOutput(_ProjectAddNorm):
    """Projection after attention, N*D -> H (H -> H unless heads were pruned), with dropout,
    residual and LayerNorm."""

    def __init__(self, config: BertConfig, in_features: int | None = None) -> None:
        super().__init__(config, config.hidden_size if in_features is None else in_features)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig, num_heads: int | None = None) -> None:
        super().__init__()
        self.self = BertSelfAttention(config, num_heads)
        self.output = BertSelfOutput(config, self.self.all_head_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``rows``: (B, P) positions to compute the output for (default: all); see BertLayer."""
        queries = None if rows is None else gather_rows(hidden_states, rows)
        context, probs = self.self(hidden_states, attention_mask, output_attentions, queries)
        return self.output(context, hidden_states if queries is None else queries), probs


class BertIntermediate(nn.Module):
    """First feed-forward layer, H -> intermediate_size, with the activation."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(hidden_states))


class BertOutput(_ProjectAddNorm):
    """Second feed-forward layer, intermediate_size -> H, with dropout, residual and LayerNorm."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config, config.intermediate_size)


class BertLayer(nn.Module):
    """One Transformer encoder layer: self-attention block then feed-forward block."""

    def __init__(self, config: BertConfig, num_heads: int | None = None) -> None:
        super().__init__()
        self.attention = BertAttention(config, num_heads)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, H) -> (B, T, H); with ``rows`` (B, P), only those positions' outputs, (B, P, H).

        Each position's output depends on every position's keys and values but on its own query,
        residual and feed-forward alone, so computing a subset of rows is exact, not approximate.
        """
        attended, probs = self.attention(hidden_states, attention_mask, output_attentions, rows)
        return self.output(self.intermediate(attended), attended), probs


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        # Each layer keeps its own head count: fewer where config.pruned_heads removed some.
        self.layer = nn.ModuleList(
            BertLayer(config, config.attention_heads(i)) for i in range(config.num_hidden_layers)
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
        """``last_layer_rows`` (B, P): the last layer computes only these positions (B, P, H)."""
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
                all_attentions.append(probs)
        return (
            hidden_states,
            tuple(all_hidden) if all_hidden is not None else None,
            tuple(all_attentions) if all_attentions is not None else None,
        )


class BertPooler(nn.Module):
    """dense + tanh over the [CLS] vector: the sentence representation for NSP and classifiers."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # pooler reads only [CLS], position 0
        return self.activation(self.dense(hidden_states[:, 0]))


class BertModel(BertPreTrainedModel):
    """The bare encoder: returns the last hidden state and the pooled [CLS] vector."""

    # A family whose encoder is BERT's but whose embeddings differ (RoBERTa) swaps the class here.
    embeddings_class: ClassVar[type[nn.Module]] = BertEmbeddings
    head_layout = HeadLayout(
        layer="encoder.layer.{}",
        attention="attention",
        rows=("self.query", "self.key", "self.value"),
        columns="output.dense",
    )

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.embeddings = self.embeddings_class(config)
            self.encoder = BertEncoder(config)
            self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    @property
    def position_offset(self) -> int:
        """Position-table rows before the first token's (RoBERTa numbers from padding_idx + 1)."""
        return 0

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BaseModelOutputWithPooling:
        return self._forward(
            input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states, output_attentions
        )

    def sequence_output(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The last hidden state (B, T, H) alone: no pooler, no output dataclass. Every family's
        base model has this method; embedding and other pooled uses call it."""
        hidden = self.embeddings(input_ids, token_type_ids)
        return run_encoder(self.encoder, hidden, attention_mask)[0]

    def forward_rows(
        self,
        input_ids: torch.Tensor,
        rows: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> BaseModelOutputWithPooling:
        """Like ``forward``, but the last layer computes only the (B, P) positions ``rows``:
        ``last_hidden_state`` is (B, P, H), and the pooler reads row 0 (make it position 0, [CLS]).

        Pretraining needs the last layer only at the ~15% masked positions (and [CLS] for NSP);
        skipping the rest saves that layer's query, output and feed-forward matmuls for ~85% of
        the tokens — 2026-11-23: 17% of the encoder's FLOPs for a 4-layer model. Exact: the rows
        computed are the same numbers ``forward`` gives at those positions.
        """
        return self._forward(input_ids, attention_mask, token_type_ids, None, False, False, rows)

    def _forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        output_hidden_states: bool,
        output_attentions: bool,
        last_layer_rows: torch.Tensor | None = None,
    ) -> BaseModelOutputWithPooling:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, seq_len), got shape {tuple(input_ids.shape)}")
        offset = self.position_offset
        if input_ids.shape[1] + offset > self.config.max_position_embeddings:
            reserved = f" less the {offset} reserved positions" if offset else ""
            raise ValueError(
                f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings "
                f"({self.config.max_position_embeddings}){reserved}; truncate the input (tokenizer max_length)"
            )
        hidden = self.embeddings(input_ids, token_type_ids, position_ids)
        hidden, all_hidden, all_attentions = run_encoder(
            self.encoder, hidden, attention_mask, output_hidden_states, output_attentions, last_layer_rows
        )
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden,
            pooler_output=pooled,
            hidden_states=all_hidden,
            attentions=all_attentions,
        )
