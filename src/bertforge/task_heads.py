"""The fine-tuning task heads, written once for every family: sequence classification (and
regression), token classification, extractive QA and multiple choice.

Each family's head class (``BertForTokenClassification``, ``AlbertForQuestionAnswering`` ...)
builds its encoder under its ``base_model_prefix`` and its head modules under transformers' names,
in transformers' order, then inherits its forward from one of the classes here:

>>> class AlbertForTokenClassification(TokenClassificationHead, AlbertPreTrainedModel):
...     def __init__(self, config):        # albert., dropout, classifier
...         ...

What differs between families is a hook, not a copy of the forward: how a whole sequence becomes
logits (``_sequence_logits``: BERT's and ALBERT's pooled [CLS], RoBERTa's classification head,
DistilBERT's pre_classifier over the first token), QA's span logits (DistilBERT drops out first)
and how the encoder is called (``_encode``: DistilBERT takes no token_type_ids).

The forwards take transformers' arguments (``labels``, ``start_positions`` ...) and return a loss
whenever labels are given; -100 labels are ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .masked_lm import IGNORE_INDEX
from .outputs import (
    BaseModelOutputWithPooling,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from .pretrained import PreTrainedModel


def span_loss(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    start_positions: torch.Tensor | None,
    end_positions: torch.Tensor | None,
) -> torch.Tensor | None:
    """Extractive QA's loss: the mean of the start and end cross-entropies, or None without both
    labels. Positions outside the window (answer truncated away) are clamped to T and ignored."""
    if start_positions is None or end_positions is None:
        return None
    ignored = start_logits.shape[1]
    start = start_positions.view(-1).clamp(0, ignored)
    end = end_positions.view(-1).clamp(0, ignored)
    return (
        F.cross_entropy(start_logits.float(), start, ignore_index=ignored)
        + F.cross_entropy(end_logits.float(), end, ignore_index=ignored)
    ) / 2


def _flat_choices(t: torch.Tensor | None) -> torch.Tensor | None:
    # (B, C, T) -> (B*C, T): every choice is its own sequence
    return t.reshape(-1, t.shape[-1]) if t is not None else None


class EncoderHead(PreTrainedModel):
    """A head model over any family's encoder, kept at ``self.<base_model_prefix>``."""

    # Set by each family's __init__; the head modules the default hooks read.
    num_labels: int
    dropout: nn.Module
    classifier: nn.Module

    def _encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        output_hidden_states: bool,
        output_attentions: bool,
    ) -> BaseModelOutputWithPooling:
        encoder = getattr(self, self.base_model_prefix)
        return encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )

    def _sequence_logits(self, out: BaseModelOutputWithPooling) -> torch.Tensor:
        """(B, num_labels) logits of whole sequences: the classifier over the pooled [CLS] vector
        (BERT, ALBERT, and RoBERTa's multiple choice); RoBERTa's and DistilBERT's other heads
        override it."""
        return self.classifier(self.dropout(out.pooler_output))


class SequenceClassificationHead(EncoderHead):
    """Classification, or regression when num_labels == 1, from one vector per sequence."""

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> SequenceClassifierOutput:
        out = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states, output_attentions
        )
        logits = self._sequence_logits(out)
        loss = self._loss(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # Same rule as transformers when problem_type is unset: one label -> regression,
        # integer labels -> single-label cross-entropy, float labels -> multi-label BCE.
        problem = self.config.problem_type
        if problem is None:
            if self.num_labels == 1:
                problem = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
        if problem == "regression":
            if self.num_labels == 1:
                return F.mse_loss(logits.squeeze().float(), labels.squeeze().to(torch.float32))
            return F.mse_loss(logits.float(), labels.float())
        if problem == "single_label_classification":
            return F.cross_entropy(
                logits.view(-1, self.num_labels).float(), labels.view(-1), ignore_index=IGNORE_INDEX
            )
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


class TokenClassificationHead(EncoderHead):
    """``classifier`` over every token's dropped-out hidden state: tagging such as NER."""

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> TokenClassifierOutput:
        out = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states, output_attentions
        )
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits.view(-1, self.num_labels).float(), labels.view(-1), ignore_index=IGNORE_INDEX
            )
        return TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class QuestionAnsweringHead(EncoderHead):
    """Extractive QA: ``qa_outputs`` gives start and end logits for every token (the answer span
    is chosen outside)."""

    qa_outputs: nn.Linear

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> QuestionAnsweringModelOutput:
        out = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states, output_attentions
        )
        # (B, T, 2) -> two (B, T)
        start_logits, end_logits = (
            t.squeeze(-1).contiguous() for t in self._span_logits(out.last_hidden_state).split(1, -1)
        )
        loss = span_loss(start_logits, end_logits, start_positions, end_positions)
        return QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)

    def _span_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> (B, T, 2); DistilBERT applies dropout first."""
        return self.qa_outputs(hidden_states)


class MultipleChoiceHead(EncoderHead):
    """Scores C candidates: inputs (B, C, T), each choice encoded as its own sequence, one logit
    per choice from :meth:`_sequence_logits` (a classifier with one output)."""

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> MultipleChoiceModelOutput:
        if input_ids.dim() != 3:
            raise ValueError(
                f"input_ids must be (batch, num_choices, seq_len), got shape {tuple(input_ids.shape)}"
            )
        num_choices = input_ids.shape[1]
        out = self._encode(
            input_ids.reshape(-1, input_ids.shape[-1]),
            _flat_choices(attention_mask),
            _flat_choices(token_type_ids),
            _flat_choices(position_ids),
            output_hidden_states,
            output_attentions,
        )
        logits = self._sequence_logits(out).view(-1, num_choices)
        loss = F.cross_entropy(logits.float(), labels.view(-1)) if labels is not None else None
        return MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions)
