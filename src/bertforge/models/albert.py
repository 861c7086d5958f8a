"""ALBERT (Lan et al., 2019): factorised embeddings and cross-layer parameter sharing.

Two changes to BERT, both in how parameters are laid out rather than in the maths:

* Factorised embeddings: tokens, positions and segments are embedded at ``embedding_size`` (E,
  128 in every published model) and projected to ``hidden_size`` (H) by
  ``encoder.embedding_hidden_mapping_in``; the MLM head projects back to E before its decoder,
  which is tied to the (V, E) word-embedding matrix.
* Cross-layer sharing: the encoder holds ``num_hidden_groups`` groups of ``inner_group_num``
  layers each, and runs ``num_hidden_layers`` times, layer ``i`` calling group
  ``int(i / (num_hidden_layers / num_hidden_groups))`` (transformers' arithmetic, float division
  included). A group's modules are called again and again: there is literally one set of
  parameters per group, and a gradient step on it changes every layer that uses it.

Module and parameter names are transformers' ``modeling_albert.py`` one to one
(``encoder.albert_layer_groups.G.albert_layers.I.attention.query``, ``...ffn``, ``...ffn_output``,
``...full_layer_layer_norm``, ``pooler``, ``predictions.decoder``, ``sop_classifier.classifier``),
so state dicts move between the two without a rename table. ``output_hidden_states`` gives the
projected embeddings plus one entry per layer *call* (``num_hidden_layers * inner_group_num``),
and ``output_attentions`` one entry per call, as transformers records them.

Like transformers (and unlike Google's TF code), the feed-forward output is not followed by
dropout; the published v2 models train with no dropout at all.

The configuration and its presets are in :mod:`bertforge.models.albert_config`.

Shapes in comments: B batch, T sequence length, E embedding size, H hidden size, N heads,
P selected rows, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..ops import (
    Dropout,
    activation,
    gather_rows,
    multi_head_attention,
    projection_input,
    run_encoder,
    run_layer,
)
from ..outputs import BaseModelOutputWithPooling, ModelOutput
from ..pretrained import PreTrainedModel, deferred_init
from ..task_heads import (
    MaskedLMModel,
    MultipleChoiceHead,
    PreTrainingModel,
    QuestionAnsweringHead,
    SequenceClassificationHead,
    TokenClassificationHead,
    pretraining_forward_loss,
)

# The config has its own module (transformers' configuration_albert.py); its names stay importable
# from here, where they lived first.
from .albert_config import ALBERT_PRESET_ALIASES as ALBERT_PRESET_ALIASES
from .albert_config import ALBERT_PRESETS, AlbertConfig, albert_preset_names

__all__ = [
    "ALBERT_PRESETS",
    "AlbertConfig",
    "AlbertEmbeddings",
    "AlbertForMaskedLM",
    "AlbertForMultipleChoice",
    "AlbertForPreTraining",
    "AlbertForPreTrainingOutput",
    "AlbertForQuestionAnswering",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertModel",
    "AlbertPreTrainedModel",
    "AlbertTransformer",
    "albert_preset_names",
]


# ----------------------------------------------------------------------------------------- modules
class AlbertPreTrainedModel(PreTrainedModel):
    """Base of AlbertModel and every ALBERT head: ALBERT's config class and checkpoint layout."""

    config: AlbertConfig
    config_class = AlbertConfig
    base_model_prefix = "albert"
    base_modules = ("embeddings", "encoder", "pooler")
    required_modules = ("embeddings", "encoder")


class AlbertEmbeddings(nn.Module):
    """token + learned absolute position + segment embeddings at ``embedding_size``, LayerNorm, dropout."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id
        )
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.embedding_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.embedding_size)
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T) ids -> (B, T, E)."""
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        # transformers' order (word + type, then position), so float rounding matches too.
        if token_type_ids is None:
            embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
        else:
            embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class AlbertAttention(nn.Module):
    """Self-attention with its output projection, dropout, residual and LayerNorm in one module
    (ALBERT names them ``query``/``key``/``value``/``dense``/``LayerNorm`` side by side)."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.dropout_prob = config.attention_probs_dropout_prob
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.output_dropout = Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, H) -> (B, T, H), or (B, P, H) for the (B, P) positions ``rows``; keys and values
        always come from every position. ``attention_mask``: bool (B, 1, 1, T) or None."""
        residual = hidden_states if rows is None else gather_rows(hidden_states, rows)
        inputs, queries = hidden_states, residual
        # Cast the fp32 LayerNorm output once, not once per projection.
        inputs = projection_input(inputs, self.query.weight)
        queries = queries.to(inputs.dtype)
        context, probs = multi_head_attention(
            self.query(queries),
            self.key(inputs),
            self.value(inputs),
            self.num_attention_heads,
            attention_mask,
            self.dropout_prob,
            self.training,
            output_attentions,
        )
        return self.LayerNorm(residual + self.output_dropout(self.dense(context))), probs


class AlbertLayer(nn.Module):
    """Attention block, then feed-forward (``ffn`` -> activation -> ``ffn_output``) added to its
    input and normalised by ``full_layer_layer_norm``."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.full_layer_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = AlbertAttention(config)
        self.ffn = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = activation(config.hidden_act)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, H) -> (B, T, H); with ``rows`` (B, P) only those positions, (B, P, H) (exact:
        a position's output depends on the others only through keys and values)."""
        attended, probs = self.attention(hidden_states, attention_mask, output_attentions, rows)
        ffn_output = self.ffn_output(self.activation(self.ffn(attended)))
        return self.full_layer_layer_norm(ffn_output + attended), probs


class AlbertLayerGroup(nn.Module):
    """``inner_group_num`` layers run in order: the unit whose parameters layers share."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.albert_layers = nn.ModuleList(AlbertLayer(config) for _ in range(config.inner_group_num))

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Returns the output and, when asked, each inner layer's output and attention
        probabilities. ``rows`` restricts the last inner layer to those positions."""
        all_hidden: list[torch.Tensor] = []
        all_attentions: list[torch.Tensor] = []
        last = len(self.albert_layers) - 1
        for index, layer in enumerate(self.albert_layers):
            hidden_states, probs = layer(
                hidden_states, attention_mask, output_attentions, rows if index == last else None
            )
            if output_hidden_states:
                all_hidden.append(hidden_states)
            if output_attentions:
                assert probs is not None
                all_attentions.append(probs)
        return hidden_states, all_hidden, all_attentions


class AlbertTransformer(nn.Module):
    """E -> H projection, then ``num_hidden_layers`` calls of the shared layer groups."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.num_hidden_layers = config.num_hidden_layers
        # Which group each layer runs, fixed by the config (transformers' float arithmetic).
        self.layer_to_group = tuple(config.group_index(i) for i in range(config.num_hidden_layers))
        self.embedding_hidden_mapping_in = nn.Linear(config.embedding_size, config.hidden_size)
        self.albert_layer_groups = nn.ModuleList(
            AlbertLayerGroup(config) for _ in range(config.num_hidden_groups)
        )
        self.gradient_checkpointing = False  # see PreTrainedModel.gradient_checkpointing_enable

    def group_for_layer(self, layer: int) -> AlbertLayerGroup:
        """The module (one object, shared) that layer ``layer`` runs."""
        return self.albert_layer_groups[self.layer_to_group[layer]]  # type: ignore[return-value]

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        last_layer_rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """(B, T, E) embeddings -> (B, T, H); ``last_layer_rows`` (B, P): the very last layer call
        computes only those positions, (B, P, H)."""
        hidden_states = self.embedding_hidden_mapping_in(hidden_states)
        all_hidden: list[torch.Tensor] | None = [hidden_states] if output_hidden_states else None
        all_attentions: list[torch.Tensor] | None = [] if output_attentions else None
        last = self.num_hidden_layers - 1
        for index in range(self.num_hidden_layers):
            hidden_states, hiddens, attentions = run_layer(
                self.group_for_layer(index),
                self.gradient_checkpointing,
                hidden_states,
                attention_mask,
                output_hidden_states,
                output_attentions,
                last_layer_rows if index == last else None,
            )
            if all_hidden is not None:
                all_hidden.extend(hiddens)
            if all_attentions is not None:
                all_attentions.extend(attentions)
        return (
            hidden_states,
            tuple(all_hidden) if all_hidden is not None else None,
            tuple(all_attentions) if all_attentions is not None else None,
        )


class AlbertModel(AlbertPreTrainedModel):
    """The bare encoder: last hidden state and the pooled [CLS] vector (``pooler`` + tanh)."""

    def __init__(self, config: AlbertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.embeddings = AlbertEmbeddings(config)
            self.encoder = AlbertTransformer(config)
            self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooling_layer else None
            self.pooler_activation = nn.Tanh() if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

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
        """The last hidden state (B, T, H) alone: no pooler, no output dataclass."""
        self._check_input(input_ids)
        hidden = self.embeddings(input_ids, token_type_ids)
        return run_encoder(self.encoder, hidden, attention_mask)[0]

    def forward_rows(
        self,
        input_ids: torch.Tensor,
        rows: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> BaseModelOutputWithPooling:
        """Like ``forward``, but the last layer call computes only the (B, P) positions ``rows``:
        ``last_hidden_state`` is (B, P, H) and the pooler reads row 0 (make it position 0, [CLS]).
        Exact; what :func:`bertforge.masked_lm.masked_lm_inputs` uses for the pretraining loss."""
        return self._forward(input_ids, attention_mask, token_type_ids, None, False, False, rows)

    def _check_input(self, input_ids: torch.Tensor) -> None:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, seq_len), got shape {tuple(input_ids.shape)}")
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(
                f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings "
                f"({self.config.max_position_embeddings}); truncate the input (tokenizer max_length)"
            )

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
        self._check_input(input_ids)
        hidden = self.embeddings(input_ids, token_type_ids, position_ids)
        hidden, all_hidden, all_attentions = run_encoder(
            self.encoder, hidden, attention_mask, output_hidden_states, output_attentions, last_layer_rows
        )
        pooled = None
        if self.pooler is not None:
            assert self.pooler_activation is not None
            pooled = self.pooler_activation(self.pooler(hidden[:, 0]))
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden,
            pooler_output=pooled,
            hidden_states=all_hidden,
            attentions=all_attentions,
        )


# ------------------------------------------------------------------------------------------- heads
@dataclass
class AlbertForPreTrainingOutput(ModelOutput):
    loss: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    sop_logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class AlbertMLMHead(nn.Module):
    """H -> E (dense, activation, LayerNorm), then the (V, E) decoder and its bias: tied to the word
    embeddings and to ``bias`` by the head model with config.tie_word_embeddings, the decoder's own
    untied (``bias`` then unused), as in transformers. Works on any leading shape, so the
    pretraining loss can project only the masked rows."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size)
        self.activation = activation(config.hidden_act)

    def reset_extra_parameters(self) -> None:
        nn.init.zeros_(self.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.LayerNorm(self.activation(self.dense(hidden_states))))


class AlbertSOPHead(nn.Module):
    """Sentence-order prediction over the pooled [CLS] vector: 0 = A then B, 1 = swapped."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.dropout = Dropout(_classifier_dropout(config))
        # transformers sizes it by num_labels (2 for pretraining); kept so checkpoints match.
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled_output))


def _classifier_dropout(config: AlbertConfig) -> float:
    p = config.classifier_dropout_prob
    return p if p is not None else config.hidden_dropout_prob


class _TiedAlbertDecoder:
    """The MLM decoder's matrix is the word embeddings' and its bias ``predictions.bias``
    (config.tie_word_embeddings; transformers' ties)."""

    tied_weights = {
        "predictions.decoder.weight": "albert.embeddings.word_embeddings.weight",
        "predictions.decoder.bias": "predictions.bias",
    }
    predictions: AlbertMLMHead

    def get_output_embeddings(self) -> nn.Linear:
        return self.predictions.decoder

    def mlm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.predictions(hidden_states)


class AlbertForPreTraining(_TiedAlbertDecoder, PreTrainingModel, AlbertPreTrainedModel):
    """ALBERT's pretraining model: masked-LM scores for every position plus sentence-order logits."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.albert = AlbertModel(config)
            self.predictions = AlbertMLMHead(config)
            self.sop_classifier = AlbertSOPHead(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        sentence_order_label: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        next_sentence_label: torch.Tensor | None = None,
    ) -> AlbertForPreTrainingOutput:
        """``labels`` (B, T): token ids at masked positions, -100 elsewhere; ``sentence_order_label``
        (B,) (alias ``next_sentence_label``, the name bertforge's pretraining batches use): 0 = A
        then B, 1 = swapped. The loss sums whichever of the two losses has labels, as BERT's does
        (transformers returns one only when both are given; the value is then the same)."""
        if sentence_order_label is None:
            sentence_order_label = next_sentence_label
        out = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states, output_attentions
        )
        prediction_logits = self.predictions(out.last_hidden_state)
        sop_logits = self.sop_classifier(out.pooler_output)
        loss = pretraining_forward_loss(prediction_logits, labels, sop_logits, sentence_order_label)
        return AlbertForPreTrainingOutput(
            loss, prediction_logits, sop_logits, out.hidden_states, out.attentions
        )

    def _pair_logits(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.sop_classifier(pooled_output)


class AlbertForMaskedLM(_TiedAlbertDecoder, MaskedLMModel, AlbertPreTrainedModel):
    """Masked-LM scores for every position (no pooler, as in transformers)."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.albert = AlbertModel(config, add_pooling_layer=False)
            self.predictions = AlbertMLMHead(config)
        self.post_init()


class AlbertForSequenceClassification(SequenceClassificationHead, AlbertPreTrainedModel):
    """A linear layer over the pooled [CLS] vector: classification, or regression when num_labels == 1."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        with deferred_init():
            self.albert = AlbertModel(config)
            self.dropout = Dropout(_classifier_dropout(config))
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


class AlbertForTokenClassification(TokenClassificationHead, AlbertPreTrainedModel):
    """A linear layer over every token's hidden state: tagging such as NER."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        with deferred_init():
            self.albert = AlbertModel(config, add_pooling_layer=False)
            self.dropout = Dropout(_classifier_dropout(config))
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


class AlbertForQuestionAnswering(QuestionAnsweringHead, AlbertPreTrainedModel):
    """Extractive QA: start and end logits for every token."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        with deferred_init():
            self.albert = AlbertModel(config, add_pooling_layer=False)
            self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


class AlbertForMultipleChoice(MultipleChoiceHead, AlbertPreTrainedModel):
    """Scores C candidates: inputs (B, C, T), one logit per choice from the pooled output."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.albert = AlbertModel(config)
            self.dropout = Dropout(_classifier_dropout(config))
            self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()
