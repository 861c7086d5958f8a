"""Unpadded batches (``ops.unpadded``): every family's base model and heads give the padded run's
outputs at the real tokens and zeros at the padding, training computes the padded run's losses and
gradients, and a model runs packed only where that is safe (no hidden states or attentions asked
for, not for some rows of the last layer only, something padded)."""

from __future__ import annotations

import contextlib

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
        with ops.unpadded():
            unpadded = model(**batch)
    assert_close(real(unpadded.last_hidden_state), real(padded.last_hidden_state), atol=1e-5)
    for row, length in enumerate(LENGTHS):
        assert not unpadded.last_hidden_state[row, length:].any()
    if padded.pooler_output is not None:
        assert_close(unpadded.pooler_output, padded.pooler_output, atol=1e-5)
    sequence_output = model.sequence_output(
        batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")
    )
    with ops.unpadded():
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
        with ops.unpadded():
            unpadded = model(**batch)
    if head == "ForSequenceClassification":
        assert_close(unpadded.logits, padded.logits, atol=1e-5)
    elif head == "ForTokenClassification":
        assert_close(real(unpadded.logits), real(padded.logits), atol=1e-5)
    else:
        assert_close(real(unpadded.start_logits), real(padded.start_logits), atol=1e-5)
        assert_close(real(unpadded.end_logits), real(padded.end_logits), atol=1e-5)


def test_runs_packed_only_for_the_last_hidden_state_of_every_position_of_a_padded_batch(monkeypatch):
    packed_calls: list[int] = []
    real_pack = ops.Packing.pack
    monkeypatch.setattr(ops.Packing, "pack", lambda self, t: packed_calls.append(1) or real_pack(self, t))
    model = model_of("bert")
    batch = padded_batch()
    with ops.unpadded():
        model(**batch)
        model.train()
        model(**batch)
        model.eval()
        assert len(packed_calls) == 2
        model(**batch, output_hidden_states=True)
        model(**batch, output_attentions=True)
        model(**{**batch, "attention_mask": torch.ones_like(batch["attention_mask"])})  # nothing padded
        model.forward_rows(batch["input_ids"], torch.tensor([[0, 1]] * 3), batch["attention_mask"])
        assert len(packed_calls) == 2
    model(**batch)  # outside the block
    assert len(packed_calls) == 2


@pytest.mark.parametrize("family", CONFIGS)
@pytest.mark.parametrize("head", ["ForTokenClassification", "ForSequenceClassification"])
def test_a_training_step_without_dropout_gives_the_padded_loss_and_gradients(family, head):
    model = model_of(family, head, num_labels=3).train()
    batch = inputs(family)
    if head == "ForTokenClassification":
        batch["labels"] = torch.randint(0, 3, batch["input_ids"].shape).masked_fill(
            batch["attention_mask"] == 0, -100
        )
    else:
        batch["labels"] = torch.tensor([0, 2, 1])
    for module in model.modules():  # no dropout: packed, other units would be dropped
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if hasattr(module, "dropout_prob"):  # the attention's
            module.dropout_prob = 0.0
    results = []
    for block in (contextlib.nullcontext, ops.unpadded):
        model.zero_grad()
        with block():
            loss = model(**batch).loss
        loss.backward()
        results.append(
            (loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        )
    (loss, grads), (unpadded_loss, unpadded_grads) = results
    assert_close(unpadded_loss, loss, atol=1e-6)
    assert grads.keys() == unpadded_grads.keys()
    for name, grad in grads.items():
        assert_close(unpadded_grads[name], grad, atol=1e-5)


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


def test_fine_tuning_runs_packed_except_for_the_span_loss_of_qa(monkeypatch):
    """QA's loss, as transformers', is a softmax over every position, padding included: packed,
    the padding's logits would change, so its training steps run padded."""
    from bertforge.train.finetune import training_step

    packed: list[int] = []
    real_pack = ops.Packing.pack
    monkeypatch.setattr(ops.Packing, "pack", lambda self, t: packed.append(1) or real_pack(self, t))
    spans = {"start_positions": torch.tensor([1, 2, 0]), "end_positions": torch.tensor([3, 5, 2])}
    for head, labels in (
        ("ForSequenceClassification", {"labels": torch.tensor([0, 1, 1])}),
        ("ForQuestionAnswering", spans),
    ):
        model = model_of("bert", head, num_labels=2).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        training_step(model, {**padded_batch(), **labels}, optimizer, scheduler)
    assert packed == [1]
