"""classify / ner / qa pipelines on fine-tuned tiny models: labels with scores, entities with exact
character spans and merged sub-words, answers with spans and n-best lists; texts longer than the
model's 64 positions handled through windows; transformers models give the same results."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported

import numpy as np
import pytest
import torch

from _task_data import single_thread, trained  # noqa: F401
from bertforge import BertForgeError
from bertforge.pipelines import (
    InferenceSettings,
    classify,
    detect_task,
    entities_from_tags,
    fill_mask,  # noqa: F401  (the old entry point stays importable)
    load_task_model,
    ner,
    qa,
    sequence_scores,
)
from bertforge.tokenizer import BertTokenizer

LONG_FILLER = "the movie was very quite so " * 14  # ~84 tokens: past the 64 positions


def load(task: str) -> tuple:
    _, out = trained(task)
    model, detected = load_task_model(out)
    return model, BertTokenizer.from_pretrained(out), out, detected


# ----------------------------------------------------------------------------------- classify
def test_classify_gives_labels_with_probabilities_best_first() -> None:
    model, tokenizer, _, task = load("classification")
    assert task == "classification"
    (best,) = classify(model, tokenizer, "we saw this film today and it was good")
    assert best.label == "1" and best.score > 0.5
    both = classify(model, tokenizer, "it was bad", top_k=None)
    assert [s.label for s in both] == ["0", "1"] and sum(s.score for s in both) == pytest.approx(1.0)
    batch = classify(model, tokenizer, ["good film", "bad film"], top_k=1)
    assert [b[0].label for b in batch] == ["1", "0"]
    paired = classify(model, tokenizer, ["good film"], text_pair=["the plot"], top_k=2)
    assert len(paired[0]) == 2


def test_classify_long_text_averages_window_probabilities() -> None:
    model, tokenizer, _, _ = load("classification")
    text = LONG_FILLER + "good " + LONG_FILLER
    settings = InferenceSettings(max_length=64, stride=16)
    scores = sequence_scores(model, tokenizer, [text], settings=settings)[0]
    # By hand: the same windows, each through the model, probabilities averaged.
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    starts = list(range(0, len(ids), 62 - 16))
    windows = [ids[s : s + 62] for s in starts if s == 0 or s + 16 < len(ids)]
    assert len(windows) >= 3
    probs = []
    with torch.inference_mode():
        for window in windows:
            row = torch.tensor([[tokenizer.cls_token_id, *window, tokenizer.sep_token_id]])
            probs.append(model(row).logits.softmax(-1)[0].numpy())
    np.testing.assert_allclose(scores, np.mean(probs, axis=0), atol=1e-5)


def test_classify_rejects_bad_top_k() -> None:
    model, tokenizer, _, _ = load("classification")
    with pytest.raises(BertForgeError, match="top_k"):
        classify(model, tokenizer, "good", top_k=0)


def test_pipelines_accept_transformers_models_with_equal_scores() -> None:
    import transformers

    model, tokenizer, out, _ = load("classification")
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
    texts = ["good film", "bad", LONG_FILLER + "bad"]
    np.testing.assert_allclose(
        sequence_scores(model, tokenizer, texts), sequence_scores(theirs, tokenizer, texts), atol=1e-5
    )


# ---------------------------------------------------------------------------------------- ner
def test_ner_finds_entities_with_exact_character_spans() -> None:
    model, tokenizer, _, task = load("ner")
    assert task == "ner"
    text = "We saw John Smith in Paris then Mary."
    entities = ner(model, tokenizer, text)
    found = [(e.type, e.text, e.start, e.end) for e in entities]
    assert found == [("PER", "John Smith", 7, 17), ("LOC", "Paris", 21, 26), ("PER", "Mary", 32, 36)]
    assert all(text[e.start : e.end] == e.text and 0 < e.score <= 1 for e in entities)


def test_ner_merges_sub_words_into_their_word() -> None:
    model, tokenizer, _, _ = load("ner")
    assert tokenizer.tokenize("bobs") == ["bob", "##s"]
    (entity,) = ner(model, tokenizer, "the film saw bobs today")
    assert (entity.type, entity.text) == ("PER", "bobs")


def test_ner_on_a_text_longer_than_the_model_uses_windows() -> None:
    model, tokenizer, _, _ = load("ner")
    text = "john " + LONG_FILLER + "paris " + LONG_FILLER + "mary"
    entities = ner(model, tokenizer, text, settings=InferenceSettings(max_length=64, stride=16))
    assert [(e.type, e.text) for e in entities] == [("PER", "john"), ("LOC", "paris"), ("PER", "mary")]
    assert [text[e.start : e.end] for e in entities] == ["john", "paris", "mary"]


def test_entities_from_bio_and_bioes_tags() -> None:
    text = "a b c d e"
    spans = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    bio = entities_from_tags(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"], spans, text)
    assert [(e.type, e.text) for e in bio] == [("PER", "a b"), ("LOC", "d"), ("LOC", "e")]
    bioes = entities_from_tags(["B-PER", "E-PER", "S-LOC", "S-LOC", "O"], spans, text)
    assert [(e.type, e.start, e.end) for e in bioes] == [("PER", 0, 3), ("LOC", 4, 5), ("LOC", 6, 7)]
    scored = entities_from_tags(["B-X", "I-X", "O", "O", "O"], spans, text, [0.5, 1.0, 1, 1, 1])
    assert scored[0].score == pytest.approx(0.75)


# ----------------------------------------------------------------------------------------- qa
def test_qa_answers_with_span_score_and_n_best() -> None:
    model, tokenizer, _, task = load("qa")
    assert task == "qa"
    context = "we saw this film today and the colour is green then."
    prediction = qa(model, tokenizer, "what is the colour ?", context, top_k=3)
    assert prediction.answer.text == "green"
    assert context[prediction.answer.start : prediction.answer.end] == "green"
    assert len(prediction.n_best) == 3 and prediction.n_best[0].score >= prediction.n_best[1].score


def test_qa_finds_the_answer_in_a_late_window_of_a_long_context() -> None:
    model, tokenizer, out, _ = load("qa")
    context = LONG_FILLER + LONG_FILLER + "the colour is Yellow ."
    settings = InferenceSettings.for_checkpoint(out, "qa")
    assert (settings.max_length, settings.stride) == (64, 16)  # as fine-tuned
    prediction = qa(model, tokenizer, "what is the colour ?", context, settings=settings)
    assert prediction.answer.text == "Yellow"  # original casing, from the character offsets
    assert prediction.answer.start == context.index("Yellow")


# -------------------------------------------------------------------------------- task detection
def test_detect_task_refuses_a_checkpoint_without_a_task_head(tmp_path) -> None:
    from _task_data import workspace

    with pytest.raises(BertForgeError, match="cannot tell the task"):
        detect_task(workspace() / "tiny")
