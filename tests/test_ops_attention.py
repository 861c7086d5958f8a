"""Attention with dropout on CPU in chunks (``ops.chunked_dropout_attention``): the same outputs,
gradients and dropout masks as the explicit path under the same seed, a backward that passes
gradcheck, unbiased dropout, no (B, N, T, T) tensor kept for the backward, and the dispatch by size."""

from __future__ import annotations

import pytest
import torch

from _helpers import SEQ, TINY, assert_close, padded_batch, tiny_config
from bertforge import BertForQuestionAnswering, ops


def qkv(batch: int, heads: int, rows: int, keys: int, head_dim: int, dtype=torch.float32, seed: int = 0):  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, heads, rows, head_dim, generator=gen, dtype=dtype, requires_grad=True)
    key, value = (
        torch.randn(batch, heads, keys, head_dim, generator=gen, dtype=dtype, requires_grad=True)
        for _ in range(2)
    )
    return query, key, value


def padding_mask(lengths: list[int], keys: int) -> torch.Tensor:
    return (torch.arange(keys)[None, :] < torch.tensor(lengths)[:, None])[:, None, None, :]


def explicit(query, key, value, mask, p):  # type: ignore[no-untyped-def]
    """The explicit path, whatever the size (output_attentions forces it)."""
    return ops.attention(query, key, value, mask, p, training=True, output_attentions=True)[0]


# (B, N, P, T, D): P < T is the pretraining case of queries at the masked rows only. 2 * 3 * 7 = 42
# scores per sequence is not a multiple of 4, so chunks must widen to keep the mask stream aligned.
SHAPES = [(3, 4, 11, 11, 8), (5, 2, 3, 7, 4), (4, 3, 16, 16, 8)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("chunk_scores", [1, 100, 2**30])
def test_chunked_attention_equals_the_explicit_path_under_the_same_seed(
    shape, padded, chunk_scores, monkeypatch
):
    monkeypatch.setattr(ops, "CHUNK_SCORES_ELEMENTS", chunk_scores)
    batch, heads, rows, keys, head_dim = shape
    query, key, value = qkv(*shape)
    mask = padding_mask([max(1, keys - 3 * i) for i in range(batch)], keys) if padded else None
    grad_out = torch.randn(batch, heads, rows, head_dim, generator=torch.Generator().manual_seed(1))
    results = []
    for attend in (explicit, ops.chunked_dropout_attention):
        torch.manual_seed(5)
        out = attend(query, key, value, mask, 0.3)
        grads = torch.autograd.grad(out, (query, key, value), grad_out)
        results.append((out, grads, torch.rand(4)))  # the generator's state after forward and backward
    (out, grads, after), (chunked_out, chunked_grads, chunked_after) = results
    assert_close(chunked_out, out, atol=1e-6)
    for chunked_grad, grad in zip(chunked_grads, grads, strict=True):
        assert_close(chunked_grad, grad, atol=2e-6)
    assert torch.equal(chunked_after, after)


def test_chunked_attention_gradients_pass_gradcheck(monkeypatch):
    monkeypatch.setattr(ops, "CHUNK_SCORES_ELEMENTS", 48)  # chunks of 2 sequences, then 1
    query, key, value = qkv(3, 2, 3, 4, 2, dtype=torch.float64)
    mask = padding_mask([4, 3, 1], 4)

    def seeded(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(7)  # the same dropout mask at every evaluation
        return ops.chunked_dropout_attention(q, k, v, mask, 0.4)

    assert torch.autograd.gradcheck(seeded, (query, key, value))


def test_chunked_attention_drops_at_the_rate_and_is_unbiased(monkeypatch):
    monkeypatch.setattr(ops, "CHUNK_SCORES_ELEMENTS", 5000)
    keys, p = 64, 0.25
    # Equal scores and identity values: the output is the dropped probabilities themselves, 1/T or 0.
    query = torch.zeros(8, 4, keys, 1)
    value = torch.eye(keys).expand(8, 4, keys, keys)
    torch.manual_seed(0)
    out = ops.chunked_dropout_attention(query, query, value, None, p)
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - p) < 0.01  # 131,072 draws: binomial sd 1.2e-3
    assert abs(out.sum(-1).mean().item() - 1.0) < 0.01  # rows still sum to 1 in expectation
    values = out.unique().tolist()
    assert (
        len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(65536 / (65536 - 16384) / keys)
    )


def test_chunked_attention_backward_leaves_torch_generator_alone():
    query, key, value = qkv(2, 2, 5, 5, 4)
    torch.manual_seed(3)
    out = ops.chunked_dropout_attention(query, key, value, None, 0.5)
    state = torch.get_rng_state()
    out.sum().backward()
    assert torch.equal(torch.get_rng_state(), state)


def test_chunked_attention_under_bf16_autocast_is_close_to_the_explicit_path():
    query, key, value = qkv(2, 3, 9, 9, 8)
    outputs = []
    for attend in (explicit, ops.chunked_dropout_attention):
        torch.manual_seed(2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = attend(query, key, value, None, 0.2)
        grads = torch.autograd.grad(out.float().sum(), (query, key, value))
        assert out.dtype == torch.bfloat16 and all(g.dtype == torch.float32 for g in grads)
        outputs.append((out.float(), grads))
    (out, grads), (chunked_out, chunked_grads) = outputs
    assert_close(chunked_out, out, atol=2e-2)
    for chunked_grad, grad in zip(chunked_grads, grads, strict=True):
        assert_close(chunked_grad, grad, atol=5e-2)


# ------------------------------------------------------------------------------ in a real model
def saved_shapes(model: BertForQuestionAnswering, batch: dict[str, torch.Tensor]) -> list[tuple[int, ...]]:
    """Shapes of every tensor autograd keeps for the backward of one training forward."""
    shapes: list[tuple[int, ...]] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(tensor.shape))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(**batch).loss.backward()
    return shapes


@pytest.fixture
def qa_model() -> BertForQuestionAnswering:
    torch.manual_seed(0)
    return BertForQuestionAnswering(tiny_config(attention_probs_dropout_prob=0.2)).train()


@pytest.fixture
def qa_batch() -> dict[str, torch.Tensor]:
    return {
        **padded_batch(),
        "start_positions": torch.tensor([1, 2, 0]),
        "end_positions": torch.tensor([3, 5, 0]),
    }


def test_training_keeps_no_scores_sized_tensor_in_chunks_and_three_per_layer_explicitly(
    qa_model, qa_batch, monkeypatch
):
    def scores_sized(shapes: list[tuple[int, ...]]) -> int:  # (B, N, T, T), or (B*N, T, T) in a bmm
        return sum(shape[-2:] == (SEQ, SEQ) for shape in shapes)

    monkeypatch.setattr(ops, "EXPLICIT_SCORES_BYTES", 2**62)
    # probabilities, the scaled dropout mask, the dropped probabilities
    assert scores_sized(saved_shapes(qa_model, qa_batch)) == 3 * TINY["num_hidden_layers"]
    monkeypatch.setattr(ops, "EXPLICIT_SCORES_BYTES", 0)
    assert scores_sized(saved_shapes(qa_model, qa_batch)) == 0


def test_a_training_step_in_chunks_matches_the_explicit_path(qa_model, qa_batch, monkeypatch):
    results = []
    for limit in (2**62, 0):
        monkeypatch.setattr(ops, "EXPLICIT_SCORES_BYTES", limit)
        qa_model.zero_grad()
        torch.manual_seed(11)
        loss = qa_model(**qa_batch).loss
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in qa_model.named_parameters()}))
    (loss, grads), (chunked_loss, chunked_grads) = results
    assert_close(chunked_loss, loss, atol=1e-6)
    for name, grad in grads.items():
        assert_close(chunked_grads[name], grad, atol=1e-5)


def test_attention_takes_the_chunked_path_only_when_training_with_dropout_on_large_scores(monkeypatch):
    calls: list[int] = []
    real = ops.chunked_dropout_attention
    monkeypatch.setattr(ops, "chunked_dropout_attention", lambda *args: calls.append(1) or real(*args))
    query, key, value = qkv(2, 2, 8, 8, 4)
    monkeypatch.setattr(ops, "EXPLICIT_SCORES_BYTES", 2 * 2 * 8 * 8 * 4 - 1)  # just under these scores
    ops.attention(query, key, value, None, 0.1, training=True)
    assert len(calls) == 1
    ops.attention(query, key, value, None, 0.1, training=False)
    ops.attention(query, key, value, None, 0.0, training=True)
    ops.attention(query, key, value, None, 0.1, training=True, output_attentions=True)  # needs the weights
    assert len(calls) == 1
    monkeypatch.setattr(ops, "EXPLICIT_SCORES_BYTES", 2 * 2 * 8 * 8 * 4)  # exactly these scores
    ops.attention(query, key, value, None, 0.1, training=True)
    assert len(calls) == 1
