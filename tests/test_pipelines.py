"""fill_mask and load_masked_lm: ranking, scores, filled-in sequences, several masks, truncation,
refusing checkpoints without a masked-LM head, and agreement with transformers' fill-mask pipeline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported

import pytest
import torch

from bertforge import BertConfig, BertForgeError, BertForMaskedLM, BertForPreTraining, BertModel
from bertforge.pipelines import MaskPrediction, fill_mask, load_masked_lm
from bertforge.tokenizer import BertTokenizer

CORPUS = [
    "the cat sat on the mat and the dog sat on the log",
    "a quick brown fox jumps over the lazy dog near the river bank",
    "paris is the capital of france. berlin is the capital of germany.",
    "the model reads tokens and writes hidden states",
    "rivers run to the sea and the sea runs to the sky",
    "猫坐在垫子上。狗在木头上。",
]
TARGET = "capital"


# ------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tokenizer() -> BertTokenizer:
    return BertTokenizer.train_from_iterator(CORPUS, vocab_size=173, min_frequency=1)


def tiny_config(tokenizer: BertTokenizer) -> BertConfig:
    return BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    )


@pytest.fixture(scope="module")
def target_id(tokenizer) -> int:
    assert TARGET in tokenizer.get_vocab()
    return tokenizer.convert_tokens_to_ids(TARGET)


@pytest.fixture(scope="module")
def rigged_model(tokenizer, target_id) -> BertForMaskedLM:
    """A random BertForMaskedLM whose decoder bias makes TARGET win at every position."""
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config(tokenizer)).eval()
    with torch.no_grad():
        model.cls.predictions.bias[target_id] = 8.0
    return model


@pytest.fixture(scope="module")
def random_model(tokenizer) -> BertForMaskedLM:
    torch.manual_seed(1)
    model = BertForMaskedLM(tiny_config(tokenizer)).eval()
    with torch.no_grad():
        # Large (tied) word embeddings spread the scores so the ranking is unambiguous and depends
        # on the context, not on the bias alone: each [MASK] position then ranks tokens differently.
        model.bert.embeddings.word_embeddings.weight.normal_(0.0, 1.0)
        model.cls.predictions.bias.normal_(0.0, 0.1)
    return model


def hand_probabilities(model: BertForMaskedLM, tokenizer: BertTokenizer, text: str) -> torch.Tensor:
    """Softmax over the vocabulary at every [MASK] position, in text order: (masks, vocab)."""
    encoding = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = model(**encoding).logits[0]
    positions = encoding["input_ids"][0] == tokenizer.mask_token_id
    return logits[positions].softmax(-1)


# ------------------------------------------------------------------------------------------ ranking
def test_the_rigged_token_comes_first_with_the_highest_score(rigged_model, tokenizer, target_id):
    (candidates,) = fill_mask(rigged_model, tokenizer, "paris is the [MASK] of france .")
    assert all(isinstance(c, MaskPrediction) for c in candidates)
    assert candidates[0].token_id == target_id
    assert candidates[0].token == TARGET
    assert candidates[0].score == max(c.score for c in candidates)
    assert candidates[0].score > 0.5


def test_scores_are_sorted_descending_distinct_and_sum_to_at_most_one(random_model, tokenizer):
    (candidates,) = fill_mask(random_model, tokenizer, "the [MASK] sat on the mat", top_k=10)
    scores = [c.score for c in candidates]
    assert len(candidates) == 10
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 < s <= 1.0 for s in scores)
    assert sum(scores) <= 1.0 + 1e-6
    assert len({c.token_id for c in candidates}) == 10


def test_scores_and_ids_equal_the_softmax_of_the_model_logits(random_model, tokenizer):
    text = "the dog sat on the [MASK] near the river"
    (candidates,) = fill_mask(random_model, tokenizer, text, top_k=7)
    probs = hand_probabilities(random_model, tokenizer, text)[0]
    scores, ids = probs.topk(7)
    assert [c.token_id for c in candidates] == ids.tolist()
    torch.testing.assert_close(torch.tensor([c.score for c in candidates]), scores, atol=1e-6, rtol=0)
    assert [c.token for c in candidates] == tokenizer.convert_ids_to_tokens(ids.tolist())


def test_sequence_is_the_text_with_the_token_filled_in(rigged_model, tokenizer):
    (candidates,) = fill_mask(rigged_model, tokenizer, "Paris is the [MASK] of France.")
    assert candidates[0].sequence == "paris is the capital of france."
    for candidate in candidates:
        filled = tokenizer(f"paris is the {candidate.token} of france.")["input_ids"]
        if not candidate.token.startswith("##") and candidate.token not in tokenizer.all_special_tokens:
            assert candidate.sequence == tokenizer.decode(filled, skip_special_tokens=True)


def test_default_top_k_is_five(rigged_model, tokenizer):
    (candidates,) = fill_mask(rigged_model, tokenizer, "the [MASK] sat")
    assert len(candidates) == 5


def test_top_k_larger_than_the_vocabulary_returns_every_token(random_model, tokenizer):
    (candidates,) = fill_mask(random_model, tokenizer, "the [MASK] sat", top_k=10_000)
    assert len(candidates) == tokenizer.vocab_size
    assert sum(c.score for c in candidates) == pytest.approx(1.0, abs=1e-4)


def test_two_masks_give_two_lists_in_text_order(random_model, tokenizer):
    text = "the [MASK] sat on the mat and the dog sat on the [MASK]"
    predictions = fill_mask(random_model, tokenizer, text, top_k=4)
    assert len(predictions) == 2
    probs = hand_probabilities(random_model, tokenizer, text)
    for candidates, row in zip(predictions, probs, strict=True):
        assert [c.token_id for c in candidates] == row.topk(4).indices.tolist()
    assert [c.token_id for c in predictions[0]] != [c.token_id for c in predictions[1]]


def test_two_masks_with_a_rigged_model_fill_each_mask_separately(rigged_model, tokenizer, target_id):
    first, second = fill_mask(rigged_model, tokenizer, "[MASK] is the [MASK] of france")
    assert first[0].token_id == second[0].token_id == target_id
    # Each sequence fills its own mask; the other [MASK] is a special token and is dropped.
    assert first[0].sequence == "capital is the of france"
    assert second[0].sequence == "is the capital of france"


# ----------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("text", ["no mask here", "", "[mask] in lower case is not the mask token"])
def test_text_without_mask_raises_bertforge_error(rigged_model, tokenizer, text):
    with pytest.raises(BertForgeError, match=r"\[MASK\]"):
        fill_mask(rigged_model, tokenizer, text)


@pytest.mark.parametrize("top_k", [0, -1])
def test_top_k_below_one_raises_bertforge_error(rigged_model, tokenizer, top_k):
    with pytest.raises(BertForgeError, match="top_k"):
        fill_mask(rigged_model, tokenizer, "the [MASK] sat", top_k=top_k)


def test_a_text_longer_than_the_model_is_truncated_to_its_positions(rigged_model, tokenizer, target_id):
    # 64 positions, while the tokenizer's model_max_length is 512.
    text = "the [MASK] sat " + "on the mat " * 60
    (candidates,) = fill_mask(rigged_model, tokenizer, text)
    assert candidates[0].token_id == target_id


def test_a_mask_truncated_away_raises_bertforge_error(rigged_model, tokenizer):
    text = "on the mat " * 60 + "the [MASK] sat"
    with pytest.raises(BertForgeError, match="truncated"):
        fill_mask(rigged_model, tokenizer, text)


# ------------------------------------------------------------------------------------ load_masked_lm
def test_load_masked_lm_refuses_a_bare_bert_model_checkpoint(tmp_path, tokenizer):
    BertModel(tiny_config(tokenizer)).save_pretrained(tmp_path)
    with pytest.raises(BertForgeError, match="masked-LM head"):
        load_masked_lm(tmp_path)


def test_load_masked_lm_accepts_a_pretraining_checkpoint_with_equal_predictions(tmp_path, tokenizer):
    torch.manual_seed(3)
    pretraining = BertForPreTraining(tiny_config(tokenizer)).eval()
    with torch.no_grad():
        pretraining.cls.predictions.bias.normal_()
    pretraining.save_pretrained(tmp_path)
    loaded = load_masked_lm(tmp_path)
    assert isinstance(loaded, BertForMaskedLM)
    encoding = tokenizer(
        ["the [MASK] sat on the mat", "paris is the [MASK]"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        expected = pretraining(**encoding).prediction_logits
        actual = loaded.eval()(**encoding).logits
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


def test_load_masked_lm_round_trips_a_masked_lm_checkpoint(tmp_path, rigged_model, tokenizer, target_id):
    rigged_model.save_pretrained(tmp_path)
    loaded = load_masked_lm(tmp_path).eval()
    text = "paris is the [MASK] of france"
    assert fill_mask(loaded, tokenizer, text) == fill_mask(rigged_model, tokenizer, text)
    assert fill_mask(loaded, tokenizer, text)[0][0].token_id == target_id


def test_load_masked_lm_of_a_missing_directory_raises_bertforge_error(tmp_path):
    with pytest.raises(BertForgeError):
        load_masked_lm(tmp_path / "missing")


# ------------------------------------------------------------------------------------- transformers
def test_fill_mask_agrees_with_the_transformers_fill_mask_pipeline(tmp_path, random_model, tokenizer):
    transformers = pytest.importorskip("transformers")
    random_model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    hf = transformers.pipeline("fill-mask", model=str(tmp_path), tokenizer=str(tmp_path), device="cpu")
    text = "the dog sat on the [MASK] near the river"
    theirs = hf(text, top_k=6)
    (ours,) = fill_mask(random_model, tokenizer, text, top_k=6)
    assert [c.token_id for c in ours] == [t["token"] for t in theirs]
    assert [tokenizer.decode([c.token_id]) for c in ours] == [t["token_str"] for t in theirs]
    assert [c.sequence for c in ours] == [t["sequence"] for t in theirs]
    torch.testing.assert_close(
        torch.tensor([c.score for c in ours]), torch.tensor([t["score"] for t in theirs]), atol=1e-5, rtol=0
    )
