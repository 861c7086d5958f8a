"""The maths every encoder family shares: activations, fast dropout, attention, masks, row gathering,
fixed sinusoidal positions.

BERT, RoBERTa, ALBERT and DistilBERT differ in how they name and arrange their modules, not in these
operations; each family's layers call this module so a speed-up or a fix lands in all of them.

Shapes in comments: B batch, T sequence length, N heads, D head size, P selected rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
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
    threshold = round(p * 65536)  # drop where a uniform 16-bit value < threshold
    words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    keep = (words.view(torch.int16)[: x.numel()] >= threshold - 32768).view(x.shape)
    # One multiply by a scaled 0/1 mask in x's dtype: autograd saves the mask and the backward is
    # one multiply too (measured faster than torch.where or masked_fill).
    return x * keep.to(x.dtype).mul_(65536 / (65536 - threshold))


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
    P, D) context and, when ``output_attentions``, the (B, N, P, T) probabilities.
    """
    dropout_p = dropout_p if training else 0.0
    # SDPA does not return the probabilities, so compute them explicitly when asked; and on CPU
    # with attention dropout, SDPA runs this same math path but with the slow Bernoulli mask.
    if output_attentions or (dropout_p > 0.0 and query.device.type == "cpu"):
        # Scale the (B, N, T, D) query rather than the (B, N, T, T) scores: half the elements at T=128.
        scores = (query * (1.0 / math.sqrt(query.shape[-1]))) @ key.transpose(-1, -2)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)
        context = dropout(weights, dropout_p, training) @ value
        return context, (weights if output_attentions else None)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout_p), None


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
