"""Task heads on top of :class:`BertModel`: pretraining (MLM + NSP), MLM, NSP, sequence and token
classification, extractive QA and multiple choice.

Each class mirrors its Hugging Face namesake: the encoder lives at ``self.bert`` and the head's
parameters carry the same names (``cls.predictions.*``, ``cls.seq_relationship``, ``classifier``,
``qa_outputs``), the forward arguments are transformers' (``labels``, ``next_sentence_label``,
``start_positions`` ...), and a loss is returned whenever labels are given (-100 is ignored).
The classes build their modules here; the forwards and losses they share with the other families
(masked LM, the pretraining loss, the fine-tuning heads) are :mod:`bertforge.task_heads`'.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import BertConfig
from .model import BertModel, BertPreTrainedModel, Dropout, activation
from .outputs import (
    BertForPreTrainingOutput,
    NextSentencePredictorOutput,
)
from .pretrained import PreTrainedModel, deferred_init
from .task_heads import (
    EncoderHead,
    MaskedLMModel,
    MultipleChoiceHead,
    PreTrainingModel,
    QuestionAnsweringHead,
    SequenceClassificationHead,
    TokenClassificationHead,
    _pair_loss,
    pretraining_forward_loss,
)


class BertPredictionHeadTransform(nn.Module):
    """dense + activation + LayerNorm applied to hidden states before the vocabulary projection."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(hidden_states)))


class BertLMPredictionHead(nn.Module):
    """Masked-LM scores: transform, then the (V, H) decoder and its bias.

    With config.tie_word_embeddings (every published checkpoint) the head model ties the decoder's
    matrix to the word embeddings and its bias to ``bias``, one tensor under two names, as
    transformers does; untied, the decoder keeps its own of both and ``bias`` goes unused.
    Works on hidden states of any leading shape, so a caller may gather the masked positions first
    and project only those (the 30k-wide matmul is the most expensive op of pretraining).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def reset_extra_parameters(self) -> None:
        nn.init.zeros_(self.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden_states))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        return self.predictions(sequence_output)


class BertOnlyNSPHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.seq_relationship(pooled_output)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(
        self, sequence_output: torch.Tensor, pooled_output: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.predictions(sequence_output), self.seq_relationship(pooled_output)


class _TiedDecoderMixin:
    """The MLM decoder's matrix is the word embeddings' and its bias ``cls.predictions.bias``
    (config.tie_word_embeddings; transformers' ties)."""

    tied_weights = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def _lm_head(self) -> BertLMPredictionHead:
        return self.cls.predictions  # type: ignore[attr-defined, no-any-return]

    def get_output_embeddings(self) -> nn.Linear:
        return self._lm_head().decoder

    def mlm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self._lm_head()(hidden_states)


def _classifier_dropout(config: BertConfig) -> float:
    return config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob


class BertForPreTraining(_TiedDecoderMixin, PreTrainingModel, BertPreTrainedModel):
    """BERT's pretraining model: masked-LM scores for every position plus next-sentence logits."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.bert = BertModel(config)
            self.cls = BertPreTrainingHeads(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BertForPreTrainingOutput:
        """``labels`` (B, T): token ids at masked positions, -100 elsewhere; ``next_sentence_label`` (B,):
        0 = B follows A, 1 = B is random. The loss sums whichever of the two losses has labels."""
        out = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states, output_attentions
        )
        prediction_logits, seq_relationship_logits = self.cls(out.last_hidden_state, out.pooler_output)
        loss = pretraining_forward_loss(
            prediction_logits, labels, seq_relationship_logits, next_sentence_label
        )
        return BertForPreTrainingOutput(
            loss, prediction_logits, seq_relationship_logits, out.hidden_states, out.attentions
        )

    def _pair_logits(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.cls.seq_relationship(pooled_output)


class BertForMaskedLM(_TiedDecoderMixin, MaskedLMModel, BertPreTrainedModel):
    """Masked-LM scores for every position (no pooler, as in transformers); ``pretraining_loss`` is
    the objective of RoBERTa-style pretraining, with no sentence head."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.bert = BertModel(config, add_pooling_layer=False)
            self.cls = BertOnlyMLMHead(config)
        self.post_init()


class BertForNextSentencePrediction(EncoderHead, BertPreTrainedModel):
    """Is segment B the continuation of segment A? Logits (B, 2): 0 = yes, 1 = random."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.bert = BertModel(config)
            self.cls = BertOnlyNSPHead(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        next_sentence_label: torch.Tensor | None = None,
    ) -> NextSentencePredictorOutput:
        labels = labels if labels is not None else next_sentence_label
        out = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states, output_attentions
        )
        logits = self.cls(out.pooler_output)
        loss = _pair_loss(logits, labels) if labels is not None else None
        return NextSentencePredictorOutput(loss, logits, out.hidden_states, out.attentions)


class BertForSequenceClassification(SequenceClassificationHead, BertPreTrainedModel):
    """A linear layer over the pooled [CLS] vector: classification, or regression when num_labels == 1."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        with deferred_init():
            self.bert = BertModel(config)
            self.dropout = Dropout(_classifier_dropout(config))
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


class BertForTokenClassification(TokenClassificationHead, BertPreTrainedModel):
    """A linear layer over every token's hidden state: tagging such as NER."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        with deferred_init():
            self.bert = BertModel(config, add_pooling_layer=False)
            self.dropout = Dropout(_classifier_dropout(config))
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


class BertForQuestionAnswering(QuestionAnsweringHead, BertPreTrainedModel):
    """Extractive QA: start and end logits for every token (the answer span is chosen outside)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        with deferred_init():
            self.bert = BertModel(config, add_pooling_layer=False)
            self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


class BertForMultipleChoice(MultipleChoiceHead, BertPreTrainedModel):
    """Scores C candidate continuations: inputs (B, C, T), one logit per choice from the pooled output."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        with deferred_init():
            self.bert = BertModel(config)
            self.dropout = Dropout(_classifier_dropout(config))
            self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()


HEAD_CLASSES: dict[str, type[PreTrainedModel]] = {
    cls.__name__: cls
    for cls in (
        BertModel,
        BertForPreTraining,
        BertForMaskedLM,
        BertForNextSentencePrediction,
        BertForSequenceClassification,
        BertForTokenClassification,
        BertForQuestionAnswering,
        BertForMultipleChoice,
    )
}
