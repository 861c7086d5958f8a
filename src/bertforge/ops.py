"""The maths every encoder family shares: activations, fast dropout, attention, masks, row gathering,
fixed sinusoidal positions.

BERT, RoBERTa, ALBERT and DistilBERT differ in how they name and arrange their modules, not in these
operations; each family's layers call this module so a speed-up or a fix lands in all of them.

Shapes in comments: B batch, T sequence length, N heads, D head size, P selected rows.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,  # exact, erf-based: what BERT's checkpoints were trained with
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}
ACTIVATIONS = tuple(_ACTIVATIONS)


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    return _ACTIVATIONS[name]


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout; on CPU with a mask drawn 4 elements per 64-bit random word.

    2026-11-23, this 2-core AVX-512 CPU: ``F.dropout`` spends ~27 ms on a (32, 8, 128, 128) tensor
    drawing one Bernoulli per element; filling int64 words with ``random_`` and reading them as four
    16-bit uniforms takes ~5 ms, and dropout was 15% of a bert-small pretraining step. The drop rate
    is quantised to 1/65536 (0.1 -> 0.100006) and the scale uses that exact rate, so the output stays
    unbiased. The mask comes from torch's generator, so ``torch.manual_seed`` reproduces it. CUDA
    keeps ``F.dropout`` (Philox, already fast).
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not 0.0 < p < 1.0:
        return F.dropout(x, p, training)
    threshold = round(p * 65536)
    keep = _keep_mask(x.shape, threshold)
    # One multiply by a scaled 0/1 mask in x's dtype: autograd saves the mask and the backward is
    # one multiply too (measured faster than torch.where or masked_fill).
    return x * keep.to(x.dtype).mul_(65536 / (65536 - threshold))


def _keep_mask(
    shape: tuple[int, ...] | torch.Size, threshold: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Bool ``shape`` mask, False where a uniform 16-bit value < ``threshold`` (dropped).

    The values are read four per 64-bit word from ``generator`` (default: torch's) in row-major
    order, so drawing a tensor in consecutive pieces of a multiple of 4 elements gives the same
    mask as drawing it whole.
    """
    numel = math.prod(shape)
    words = torch.empty((numel + 3) // 4, dtype=torch.int64).random_(-(2**63), None, generator=generator)
    return (words.view(torch.int16)[:numel] >= threshold - 32768).view(shape)


class Dropout(nn.Dropout):
    """``nn.Dropout`` with the fast CPU mask of :func:`dropout`; same name, no parameters."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return dropout(input, self.p, self.training)


def split_heads(projected: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, T, N*D) -> (B, N, T, D); a view, SDPA takes the strides as they are."""
    batch, seq_len, width = projected.shape
    return projected.view(batch, seq_len, num_heads, width // num_heads).transpose(1, 2)


def merge_heads(context: torch.Tensor) -> torch.Tensor:
    """(B, N, T, D) -> (B, T, N*D)."""
    batch, heads, seq_len, head_dim = context.shape
    return context.transpose(1, 2).reshape(batch, seq_len, heads * head_dim)


def multi_head_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    num_heads: int,
    mask: torch.Tensor | Packing | None,
    dropout_p: float,
    training: bool,
    output_attentions: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`attention` over projections with the heads side by side: (B, P, N*D) queries over
    (B, T, N*D) keys and values -> the (B, P, N*D) context, and the (B, N, P, T) probabilities when
    ``output_attentions``.

    ``mask``: as :func:`attention`'s, or a :class:`Packing`: then the projections and the context
    are the packed (R, N*D) rows of the batch's real tokens, padded only around the attention."""
    packing, key_mask = (mask, mask.key_mask) if isinstance(mask, Packing) else (None, mask)
    if packing is not None:
        query, key, value = (packing.unpack(t) for t in (query, key, value))
    context, probs = attention(
        split_heads(query, num_heads),
        split_heads(key, num_heads),
        split_heads(value, num_heads),
        key_mask,
        dropout_p,
        training,
        output_attentions,
    )
    return (merge_heads(context) if packing is None else packing.pack_heads(context)), probs


def attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    dropout_p: float,
    training: bool,
    output_attentions: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scaled dot-product attention: (B, N, P, D) queries over (B, N, T, D) keys and values.

    ``mask``: bool (B, 1, 1, T), True where a key may be attended to, or None. Returns the (B, N,
    P, D) context and, when ``output_attentions``, the (B, N, P, T) probabilities. Training with
    attention dropout on CPU, scores larger than ``EXPLICIT_SCORES_BYTES`` go through
    :func:`chunked_dropout_attention`, which keeps no (B, N, P, T) tensor for the backward.
    """
    dropout_p = dropout_p if training else 0.0
    cpu_dropout = dropout_p > 0.0 and query.device.type == "cpu"
    if cpu_dropout and not output_attentions and _scores_bytes(query, key) > EXPLICIT_SCORES_BYTES:
        return chunked_dropout_attention(query, key, value, mask, dropout_p), None
    # SDPA does not return the probabilities, so compute them explicitly when asked; and on CPU
    # with attention dropout, SDPA runs this same math path but with the slow Bernoulli mask.
    if output_attentions or cpu_dropout:
        # Scale the (B, N, T, D) query rather than the (B, N, T, T) scores: half the elements at T=128.
        scores = (query * (1.0 / math.sqrt(query.shape[-1]))) @ key.transpose(-1, -2)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)
        context = dropout(weights, dropout_p, training) @ value
        return context, (weights if output_attentions else None)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout_p), None


# Attention dropout on CPU without keeping (B, N, P, T) tensors for the backward.
#
# 2026-11-29, this 2-core EPYC (AVX2, 32 MiB L3), one thread: the explicit path above keeps three
# (B, N, P, T) tensors per layer for the backward (probabilities, scaled mask, dropped
# probabilities): 680 MB per layer for QA fine-tuning at 384 x 32 with 12 heads, 4.1 GB of the
# 7.4 GB peak with all-MiniLM-L6-v2 (benchmarks/memory.py; 3.1 GB in chunks). Once a layer's
# scores outgrow the cache, the explicit path's (B, N, P, T) passes run from memory and it is the
# slower one: attention forward + backward at (B, N, T, D) = (32, 12, 256, 64) took 5.1 s explicit
# against 3.2 s in chunks, at (32, 12, 384, 32) 8.2 s against 5.6 s; at (32, 12, 128, 32), 25 MB
# of scores, the explicit path was faster, 0.59 s against 0.69 s (the chunks recompute the scores).
EXPLICIT_SCORES_BYTES = 32 * 2**20  # up to this size of one layer's scores, the explicit path
CHUNK_SCORES_ELEMENTS = 2**21  # scores per chunk (8 MiB in fp32); 2**20 to 2**22 measured alike


def _scores_bytes(query: torch.Tensor, key: torch.Tensor) -> int:
    """Size of the (B, N, P, T) attention scores of these queries and keys."""
    return math.prod(query.shape[:-1]) * key.shape[-2] * query.element_size()


def chunked_dropout_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    dropout_p: float,
) -> torch.Tensor:
    """Attention with dropout on the probabilities, computed a few sequences at a time, keeping only
    the queries, keys and values for the backward, which recomputes each chunk's probabilities.

    Shapes and ``mask`` as :func:`attention`; ``0 < dropout_p < 1``. The dropout mask is
    :func:`dropout`'s, drawn from torch's generator in the same order as the explicit path draws it
    for the whole (B, N, P, T) tensor, so under the same seed both paths drop the same
    probabilities and leave the generator in the same state; the backward replays it from a copy of
    the generator's state taken before the forward. Under autocast the inputs are cast to its dtype
    first, as the explicit path's matmuls would.
    """
    if torch.is_autocast_enabled("cpu"):
        dtype = torch.get_autocast_dtype("cpu")
        query, key, value = query.to(dtype), key.to(dtype), value.to(dtype)
    result: torch.Tensor = _ChunkedDropoutAttention.apply(query, key, value, mask, dropout_p)
    return result


def _chunk_size(batch: int, scores_per_sequence: int) -> int:
    """Sequences per chunk: about CHUNK_SCORES_ELEMENTS scores, and a multiple of 4 scores unless it
    is the last chunk, so that chunk by chunk the dropout mask is drawn exactly as in one piece."""
    size = max(1, CHUNK_SCORES_ELEMENTS // scores_per_sequence)
    while size < batch and size * scores_per_sequence % 4:
        size += 1
    return min(size, batch)


class _ChunkedDropoutAttention(torch.autograd.Function):
    """softmax(q k^T / sqrt(D) + mask) * keep / (1 - p) @ v, chunked over the batch.

    Per chunk, with W the probabilities, K the 0/1 keep mask, s = 1 / (1 - p) and Y = W * K:
    forward O = s Y V. Backward (G = dO V^T): dV = s Y^T dO, and through the dropout and the
    softmax dS = s (G*Y - W * rowsum(G*Y)), then dQ = dS K / sqrt(D), dK = dS^T Q / sqrt(D). The
    constant factors are applied once to the (B, N, P, D) results, not to (B, N, P, T) tensors.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None,
        dropout_p: float,
    ) -> torch.Tensor:
        threshold = round(dropout_p * 65536)  # as dropout(): the rate quantised to 1/65536
        ctx.rng_state = torch.default_generator.get_state()
        ctx.threshold, ctx.keep_scale = threshold, 65536 / (65536 - threshold)
        ctx.chunk = _chunk_size(query.shape[0], math.prod(query.shape[1:-1]) * key.shape[-2])
        ctx.save_for_backward(query, key, value, mask)
        out = torch.empty(*query.shape[:-1], value.shape[-1], dtype=query.dtype)
        with torch.autocast("cpu", enabled=False):
            for rows, weights in _chunk_probabilities(query, key, mask, ctx.chunk):
                torch.matmul(weights.mul_(_keep_mask(weights.shape, threshold)), value[rows], out=out[rows])
        return out.mul_(ctx.keep_scale)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        query, key, value, mask = ctx.saved_tensors
        replay = torch.Generator()
        replay.set_state(ctx.rng_state)
        grad_query, grad_key, grad_value = (torch.empty(t.shape, dtype=t.dtype) for t in (query, key, value))
        with torch.autocast("cpu", enabled=False):
            for rows, weights in _chunk_probabilities(query, key, mask, ctx.chunk):
                kept = weights * _keep_mask(weights.shape, ctx.threshold, replay)  # Y
                torch.matmul(kept.transpose(-1, -2), grad_out[rows], out=grad_value[rows])
                grad_scores = torch.matmul(grad_out[rows], value[rows].transpose(-1, -2)).mul_(kept)
                del kept
                grad_scores.addcmul_(weights, grad_scores.sum(-1, keepdim=True), value=-1.0)
                torch.matmul(grad_scores, key[rows], out=grad_query[rows])
                torch.matmul(grad_scores.transpose(-1, -2), query[rows], out=grad_key[rows])
        score_scale = ctx.keep_scale / math.sqrt(query.shape[-1])
        return (
            grad_query.mul_(score_scale),
            grad_key.mul_(score_scale),
            grad_value.mul_(ctx.keep_scale),
            None,
            None,
        )


def _chunk_probabilities(
    query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None, chunk: int
) -> Iterator[tuple[slice, torch.Tensor]]:
    """(rows, W) per ``chunk`` sequences: the batch rows and their (C, N, P, T) probabilities."""
    scale = 1.0 / math.sqrt(query.shape[-1])
    for start in range(0, query.shape[0], chunk):
        rows = slice(start, start + chunk)
        # Scale the (C, N, P, D) queries rather than the (C, N, P, T) scores.
        scores = torch.matmul(query[rows] * scale, key[rows].transpose(-1, -2))
        if mask is not None:
            scores.masked_fill_(
                ~mask[rows if mask.shape[0] > 1 else slice(None)], torch.finfo(scores.dtype).min
            )
        yield rows, scores.softmax(dim=-1)


def run_layer(layer: nn.Module, checkpointed: bool, *args: Any) -> Any:
    """``layer(*args)``; with ``checkpointed``, while training with gradients, under activation
    checkpointing: the layer keeps only its inputs for the backward, which runs its forward again
    (torch's generator state replayed, so dropout drops the same units). Every encoder family calls
    its layers through this; ``PreTrainedModel.gradient_checkpointing_enable`` turns it on.

    2026-11-29, this 2-core AVX2 CPU, QA fine-tuning at 32 x 384 (benchmarks/memory.py): bert-base
    peaked at 9.85 GB without, see the README for with; the price is a second forward per layer."""
    if checkpointed and layer.training and torch.is_grad_enabled():
        return torch.utils.checkpoint.checkpoint(layer, *args, use_reentrant=False)
    return layer(*args)


def gather_rows(hidden_states: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """(B, T, H) gathered at (B, P) positions -> (B, P, H)."""
    return hidden_states.gather(1, rows.unsqueeze(-1).expand(-1, -1, hidden_states.shape[-1]))


def projection_input(hidden_states: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``hidden_states`` in the dtype the attention projections multiply in: autocast's when it is
    on, else their weights' (a model converted by :mod:`bertforge.inference` keeps bf16 weights and
    float32 LayerNorm outputs). Cast once here, not once in each of the three projections."""
    device_type = hidden_states.device.type
    if torch.is_autocast_enabled(device_type):
        return hidden_states.to(torch.get_autocast_dtype(device_type))
    return hidden_states.to(weight.dtype)


def key_padding_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, T) 1/0 mask -> bool (B, 1, 1, T) for SDPA, or None when nothing is padded.

    Returning None for an all-ones mask lets SDPA take its unmasked fast path.
    """
    if attention_mask is None:
        return None
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (batch, seq_len), got shape {tuple(attention_mask.shape)}")
    mask = attention_mask.bool()
    # A graph being exported (ONNX, torch.export) cannot branch on the mask's values: it keeps the
    # mask, which attends exactly as None does when nothing is padded.
    if not _exporting() and bool(mask.all()):
        return None
    return mask[:, None, None, :]


# ------------------------------------------------------------------------------ unpadded batches
@dataclass(frozen=True)
class Packing:
    """Where the real tokens of a padded (B, T) batch go when packed into (R, ...) rows.

    Every layer of an encoder but the attention treats tokens one by one (projections, feed-forward,
    residuals, LayerNorm), so on packed rows it does the same work on the real tokens only and
    none on the padding; the attention unpacks its projections around itself
    (:func:`multi_head_attention`). Rows are in (sequence, position) order.
    """

    sequences: torch.Tensor  # (R,) the batch row of each real token
    positions: torch.Tensor  # (R,) its position in that row
    batch: int
    length: int
    key_mask: torch.Tensor  # bool (B, 1, 1, T), True at real tokens

    @classmethod
    def of(cls, attention_mask: torch.Tensor) -> Packing | None:
        """The packing of a (B, T) 1/0 mask, or None when nothing is padded."""
        mask = attention_mask.bool()
        if bool(mask.all()):
            return None
        sequences, positions = mask.nonzero(as_tuple=True)
        return cls(sequences, positions, mask.shape[0], mask.shape[1], mask[:, None, None, :])

    def pack(self, padded: torch.Tensor) -> torch.Tensor:
        """(B, T, ...) -> (R, ...)."""
        return padded[self.sequences, self.positions]

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """(R, ...) -> (B, T, ...), zeros at the padding."""
        padded = packed.new_zeros(self.batch, self.length, *packed.shape[1:])
        padded[self.sequences, self.positions] = packed
        return padded

    def pack_heads(self, context: torch.Tensor) -> torch.Tensor:
        """(B, N, T, D) attention context -> (R, N*D), gathered in one pass from the transposed view."""
        return context.transpose(1, 2)[self.sequences, self.positions].flatten(1)


_UNPADDED = contextvars.ContextVar("bertforge_unpadded", default=False)


@contextlib.contextmanager
def unpadded() -> Iterator[None]:
    """Within this block, a base model of any family runs a padded batch on its real tokens only
    (:class:`Packing`), unless asked for hidden states or attentions, for some rows of its last layer
    only (``forward_rows``), or while exported.

    The real tokens' outputs are the padded run's (the same matmuls on the same rows; within float
    rounding, as matmuls over fewer rows may block differently); the padding positions' outputs are
    zeros where a padded run leaves numbers nobody reads. Training is as exact, but for dropout: its
    masks are drawn for the real tokens only, so the same seed drops other units than padded.

    What the pipelines, ``embed``, ``predict``, ``evaluate``, the server and fine-tuning's training
    steps run under. 2026-11-29, this 2-core AVX2 CPU, one thread, fp32, all-MiniLM-L6-v2 forward on
    real text in batches of 32 (benchmarks/forward.py): length-sorted batches (86% real tokens)
    1.1-1.35x the padded run, batches in arrival order (40% real tokens) 1.6x.
    """
    token = _UNPADDED.set(True)
    try:
        yield
    finally:
        _UNPADDED.reset(token)


def run_encoder(
    encoder: nn.Module,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None,
    output_hidden_states: bool = False,
    output_attentions: bool = False,
    last_layer_rows: torch.Tensor | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
    """A family's encoder stack on (B, T, ...) embeddings and the (B, T) 1/0 ``attention_mask``:
    (last hidden state, all hidden states, attentions), the encoder's own return.

    Under :func:`unpadded`, an encoder asked for the last hidden state of every position alone runs
    packed and its output is unpacked; otherwise the bool key padding mask is passed."""
    packing = None
    if (
        _UNPADDED.get()
        and attention_mask is not None
        and not (output_hidden_states or output_attentions)
        and last_layer_rows is None
        and not _exporting()
    ):
        packing = Packing.of(attention_mask)
    if packing is None:
        return encoder(  # type: ignore[no-any-return]
            hidden_states,
            key_padding_mask(attention_mask),
            output_hidden_states,
            output_attentions,
            last_layer_rows,
        )
    packed = encoder(packing.pack(hidden_states), packing)[0]
    return packing.unpack(packed), None, None


def _exporting() -> bool:
    """True while torch.export / torch.onnx.export trace the model (eager calls: False)."""
    return bool(torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export())


def sinusoidal_positions(num_positions: int, dim: int) -> torch.Tensor:
    """The fixed sin/cos position table of "Attention Is All You Need", as DistilBERT builds it:
    even columns sin(pos / 10000^(2i/dim)), odd columns cos of the same angle. (num_positions, dim)."""
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    exponent = 2 * (torch.arange(dim, dtype=torch.float64) // 2) / dim
    angles = position / torch.pow(10000.0, exponent)[None, :]
    table = torch.empty(num_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.float()
