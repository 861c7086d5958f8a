"""The heads every family shares, written once: masked LM and pretraining (with the training-time
loss at the masked positions only), sequence classification (and regression), token
classification, extractive QA and multiple choice.

Each family's head class (``BertForTokenClassification``, ``AlbertForQuestionAnswering`` ...)
builds its encoder under its ``base_model_prefix`` and its head modules under transformers' names,
in transformers' order, then inherits its forward from one of the classes here:

>>> class AlbertForTokenClassification(TokenClassificationHead, AlbertPreTrainedModel):
...     def __init__(self, config):        # albert., dropout, classifier
...         ...

What differs between families is a hook, not a copy of the forward: the masked-LM head
(``mlm_logits``), pretraining's sentence-pair head (``_pair_logits``), how a whole sequence
becomes logits (``_sequence_logits``: BERT's and ALBERT's pooled [CLS], RoBERTa's classification
head, DistilBERT's pre_classifier over the first token), QA's span logits (DistilBERT drops out
first) and how the encoder is called (``_encode``: DistilBERT takes no token_type_ids).

The forwards take transformers' arguments (``labels``, ``start_positions`` ...) and return a loss
whenever labels are given; -100 labels are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .masked_lm import IGNORE_INDEX, masked_lm_inputs, masked_positions_loss, sentence_loss
from .outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    PreTrainingLossOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from .pretrained import PreTrainedModel


def _mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=IGNORE_INDEX
    )


def _pair_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    # The sentence-pair task (NSP, SOP): two classes, every label counts.
    return F.cross_entropy(logits.view(-1, 2).float(), labels.view(-1))


def pretraining_forward_loss(
    prediction_logits: torch.Tensor,
    labels: torch.Tensor | None,
    pair_logits: torch.Tensor,
    pair_labels: torch.Tensor | None,
) -> torch.Tensor | None:
    """A pretraining forward's loss: the sum of whichever of the masked-LM and the sentence-pair
    (NSP, SOP) losses has labels, or None."""
    loss = _mlm_loss(prediction_logits, labels) if labels is not None else None
    if pair_labels is not None:
        pair_loss = _pair_loss(pair_logits, pair_labels)
        loss = pair_loss if loss is None else loss + pair_loss
    return loss


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

    # Whether the training loss reads the padding's outputs: if so, training runs padded, not
    # packed (bertforge.ops.unpadded), which would change them.
    loss_reads_padding: ClassVar[bool] = False

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

    def _masked_lm_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        labels: torch.Tensor,
        with_cls: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The encoder's (M, H) states at the masked positions, their (M,) targets and the pooled
        [CLS] vector (see :func:`bertforge.masked_lm.masked_lm_inputs`)."""
        encoder = getattr(self, self.base_model_prefix)
        return masked_lm_inputs(encoder, input_ids, attention_mask, token_type_ids, labels, with_cls)

    def _sequence_logits(self, out: BaseModelOutputWithPooling) -> torch.Tensor:
        """(B, K) logits of whole sequences (K = num_labels; 1 per choice in multiple choice): the
        classifier over the pooled [CLS] vector (BERT, ALBERT, and RoBERTa's multiple choice);
        RoBERTa's sequence classification and DistilBERT override it."""
        return self.classifier(self.dropout(out.pooler_output))


class MaskedLMModel(EncoderHead):
    """Masked-LM scores for every position; also the pretraining model of the families that
    pretrain with masked LM alone (RoBERTa, DistilBERT)."""

    def mlm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Vocabulary scores for hidden states of any leading shape, e.g. (M, H) masked rows only:
        the family's masked-LM head (``cls.predictions``, ``lm_head``, ``predictions`` ...)."""
        raise NotImplementedError

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> MaskedLMOutput:
        out = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states, output_attentions
        )
        logits = self.mlm_logits(out.last_hidden_state)
        loss = _mlm_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)

    def pretraining_loss(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        accuracy: bool = True,
    ) -> PreTrainingLossOutput:
        """MLM loss computed only at the masked positions (``labels`` != -100): the encoder's last
        layer and the vocabulary projection run for those rows alone. Same value as ``forward``'s
        loss; no (B, T, V) logits are built. ``accuracy=False`` skips the correct-prediction count.
        No sentence head; a family without segments (DistilBERT) ignores ``token_type_ids``."""
        if labels is None:
            raise ValueError("pretraining_loss needs labels: token ids at masked positions, -100 elsewhere")
        hidden, targets, _ = self._masked_lm_inputs(
            input_ids, attention_mask, token_type_ids, labels, with_cls=False
        )
        loss, correct, count = masked_positions_loss(self.mlm_logits, hidden, targets, accuracy)
        return PreTrainingLossOutput(loss, loss, correct, count)


class PreTrainingModel(EncoderHead):
    """Masked LM plus a sentence-pair head over the pooled [CLS] vector (BERT's NSP, ALBERT's SOP):
    the training-time loss. Each family's forward returns its own output class."""

    # The family's masked-LM head, as MaskedLMModel.mlm_logits.
    mlm_logits: Callable[[torch.Tensor], torch.Tensor]

    def _pair_logits(self, pooled_output: torch.Tensor) -> torch.Tensor:
        """(B, H) pooled [CLS] -> (B, 2) sentence-pair logits."""
        raise NotImplementedError

    def pretraining_loss(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        accuracy: bool = True,
    ) -> PreTrainingLossOutput:
        """The training-time loss: MLM scores only at the masked positions (``labels`` != -100),
        plus NSP/SOP when ``next_sentence_label`` (for ALBERT the sentence-order label) is given;
        the sentence-pair parts fill the ``nsp_*`` fields. Same loss value as ``forward``; no
        (B, T, V) logits are ever built. ``accuracy=False`` skips the correct-prediction counts
        (``mlm_correct``/``nsp_correct`` are then None), which a training step does not need."""
        if labels is None:
            raise ValueError("pretraining_loss needs labels: token ids at masked positions, -100 elsewhere")
        hidden, targets, pooled = self._masked_lm_inputs(
            input_ids, attention_mask, token_type_ids, labels, with_cls=True
        )
        mlm_loss, mlm_correct, mlm_count = masked_positions_loss(self.mlm_logits, hidden, targets, accuracy)
        if next_sentence_label is None:
            return PreTrainingLossOutput(mlm_loss, mlm_loss, mlm_correct, mlm_count)
        assert pooled is not None
        pair_loss, pair_correct, pair_count = sentence_loss(self._pair_logits(pooled), next_sentence_label)
        return PreTrainingLossOutput(
            mlm_loss + pair_loss, mlm_loss, mlm_correct, mlm_count, pair_loss, pair_correct, pair_count
        )


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

    # The span loss, as transformers', is a softmax over every position, the padding included.
    loss_reads_padding = True

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
