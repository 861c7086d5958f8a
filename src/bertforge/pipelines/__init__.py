"""Inference pipelines that turn a checkpoint and text into answers.

* :func:`fill_mask` — the tokens behind [MASK] (masked-LM checkpoints).
* :func:`classify` — labels with probabilities for texts or pairs, regression values; long texts in
  overlapping windows whose probabilities are averaged.
* :func:`ner` — entities with type, text, character span and score; long texts in windows, each
  token predicted by the window where it is most central.
* :func:`qa` — the answer span, its score and the n-best list; long contexts in sliding windows;
  "no answer" for SQuAD 2.0 models.

:func:`load_task_model` loads a fine-tuned checkpoint and detects its task from config.json;
:class:`InferenceSettings` holds window sizes (read from the checkpoint's ``finetune_config.json``
by :meth:`InferenceSettings.for_checkpoint`). Every pipeline takes bertforge or transformers models.
"""

from ..tasks.preprocess_qa import Answer, QAPrediction
from .classification import LabelScore, choice_scores, classify, sequence_scores
from .common import InferenceSettings, detect_task, load_task_model
from .evaluation import evaluate_examples, predict_examples, read_examples
from .mlm import MaskPrediction, fill_mask, load_masked_lm
from .qa import answer_questions, qa
from .tagging import Entity, entities_from_tags, ner, word_tags

__all__ = [
    "Answer",
    "Entity",
    "InferenceSettings",
    "LabelScore",
    "MaskPrediction",
    "QAPrediction",
    "answer_questions",
    "choice_scores",
    "classify",
    "detect_task",
    "entities_from_tags",
    "evaluate_examples",
    "fill_mask",
    "load_masked_lm",
    "load_task_model",
    "ner",
    "predict_examples",
    "qa",
    "read_examples",
    "sequence_scores",
    "word_tags",
]
