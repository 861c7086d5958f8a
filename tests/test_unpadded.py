"""Unpadded inference (``ops.unpadded_inference``): every family's base model and heads give the
padded run's outputs at the real tokens, zeros at the padding, and run packed only where that is
safe (eval mode, no hidden states or attentions asked for, something padded)."""

from __future__ import annotations

import pytest
import torch

import bertforge
from _helpers import LENGTHS, TINY, assert_close, padded_batch
from bertforge import ops

CONFIGS = {
    "bert": lambda: bertforge.BertConfig(**TINY),
    "roberta": lambda: bertforge.RobertaConfig(**{**TINY, "max_position_embeddings": 66}, type_vocab_size=1),
    "albert": lambda: bertforge.AlbertConfig(**TINY, embedding_size=16, num_hidden_groups=2),
    "distilbert": lambda: bertforge.DistilBertConfig(
        vocab_size=TINY["vocab_size"],
        dim=32,
        n_layers=2,
        n_heads=4,
        hidden_dim=37,
        max_position_embeddings=64,
    ),
}
PREFIX = {"bert": "Bert", "roberta": "Roberta", "albert": "Albert", "distilbert": "DistilBert"}


def model_of(family: str, head: str = "Model", **overrides: object) -> torch.nn.Module:
    torch.manual_seed(0)
    config = CONFIGS[family]()
    for name, value in overrides.items():
        setattr(config, name, value)
    return getattr(bertforge, PREFIX[family] + head)(config).eval()


def inputs(family: str) -> dict[str, torch.Tensor]:
    batch = padded_batch()
    if family in ("roberta", "distilbert"):
        batch.pop("token_type_ids")
    return batch


def real(t: torch.Tensor) -> torch.Tensor:
    """The real tokens' rows of a (B, T, ...) output, concatenated."""
    return torch.cat([t[row, :length] for row, length in enumerate(LENGTHS)])


@pytest.mark.parametrize("family", CONFIGS)
def test_base_model_gives_the_padded_outputs_at_real_tokens_and_zeros_at_padding(family):
    model = model_of(family)
    batch = inputs(family)
    with torch.inference_mode():
        padded = model(**batch)
        with ops.unpadded_inference():
            unpadded = model(**batch)
    assert_close(real(unpadded.last_hidden_state), real(padded.last_hidden_state), atol=1e-5)
    for row, length in enumerate(LENGTHS):
        assert not unpadded.last_hidden_state[row, length:].any()
    if padded.pooler_output is not None:
        assert_close(unpadded.pooler_output, padded.pooler_output, atol=1e-5)
    sequence_output = model.sequence_output(
        batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")
    )
    with ops.unpadded_inference():
        unpadded_sequence = model.sequence_output(
            batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")
        )
    assert_close(real(unpadded_sequence), real(sequence_output), atol=1e-5)


@pytest.mark.parametrize("family", CONFIGS)
@pytest.mark.parametrize(
    "head", ["ForTokenClassification", "ForQuestionAnswering", "ForSequenceClassification"]
)
def test_heads_read_the_same_numbers_at_real_tokens(family, head):
    model = model_of(family, head, num_labels=3 if head != "ForQuestionAnswering" else 2)
    batch = inputs(family)
    with torch.inference_mode():
        padded = model(**batch)
        with ops.unpadded_inference():
            unpadded = model(**batch)
    if head == "ForSequenceClassification":
        assert_close(unpadded.logits, padded.logits, atol=1e-5)
    elif head == "ForTokenClassification":
        assert_close(real(unpadded.logits), real(padded.logits), atol=1e-5)
    else:
        assert_close(real(unpadded.start_logits), real(padded.start_logits), atol=1e-5)
        assert_close(real(unpadded.end_logits), real(padded.end_logits), atol=1e-5)


def test_runs_packed_only_in_eval_mode_for_the_last_hidden_state_of_a_padded_batch(monkeypatch):
    packed_calls: list[int] = []
    real_pack = ops.Packing.pack
    monkeypatch.setattr(ops.Packing, "pack", lambda self, t: packed_calls.append(1) or real_pack(self, t))
    model = model_of("bert")
    batch = padded_batch()
    with ops.unpadded_inference():
        model(**batch)
        assert len(packed_calls) == 1
        model(**batch, output_hidden_states=True)
        model(**batch, output_attentions=True)
        model(**{**batch, "attention_mask": torch.ones_like(batch["attention_mask"])})  # nothing padded
        model.train()
        model(**batch)
        model.eval()
        assert len(packed_calls) == 1
    model(**batch)  # outside the block
    assert len(packed_calls) == 1


def test_packing_round_trips_and_packs_attention_heads_in_row_order():
    mask = padded_batch()["attention_mask"]
    packing = ops.Packing.of(mask)
    assert packing is not None and packing.sequences.numel() == sum(LENGTHS)
    padded = torch.randn(*mask.shape, 5) * mask[..., None]
    assert torch.equal(packing.unpack(packing.pack(padded)), padded)
    context = torch.randn(mask.shape[0], 4, mask.shape[1], 8)  # (B, N, T, D)
    assert torch.equal(packing.pack_heads(context), packing.pack(ops.merge_heads(context)))
    assert ops.Packing.of(torch.ones_like(mask)) is None


def test_the_pipelines_model_loop_and_the_embedder_run_unpadded(monkeypatch):
    from bertforge.embed import Embedder
    from bertforge.pipelines.common import run_features

    packed: list[int] = []
    real_pack = ops.Packing.pack
    monkeypatch.setattr(ops.Packing, "pack", lambda self, t: packed.append(t.shape[0]) or real_pack(self, t))
    model = model_of("bert", "ForSequenceClassification", num_labels=2)
    features = [
        {"input_ids": [2, 5, 6, 3], "attention_mask": [1, 1, 1, 1]},
        {"input_ids": [2, 7, 3], "attention_mask": [1, 1, 1]},
    ]
    assert len(list(run_features(model, features, pad_token_id=0))) == 2
    assert packed == [2]

    class Tokenizer:
        pad_token_id = 0
        model_max_length = 64

        def __call__(self, texts, truncation, max_length):  # type: ignore[no-untyped-def]
            return {"input_ids": [[2] + [5] * len(text) + [3] for text in texts]}

    embedder = Embedder(model_of("bert"), Tokenizer())  # type: ignore[arg-type]
    vectors = embedder(["abc", "a", "abcdef"])
    assert packed == [2, 3]
    one_by_one = torch.stack([embedder(text) for text in ["abc", "a", "abcdef"]])
    assert_close(vectors, one_by_one, atol=1e-5)
