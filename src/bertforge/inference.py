"""Running a model for inference in bfloat16 (or float16): the matmul weights converted once, no autocast.

``torch.autocast`` keeps every weight in float32 and casts it to bf16 each time a linear layer runs
(a bert-base forward casts its 85M matmul weights on every batch), and dispatches every op through
its cast policy. :func:`inference_model` instead makes, once, a copy whose linear layers hold their
weights in bf16 and cast their input to it; it is reused while the source's weights are unchanged.
:func:`convert_for_inference` does the same in place, for a model loaded only to run.

What stays float32, and why (measured 2026-11-29): everything but the linear layers: LayerNorm, the
embeddings, and so the residual stream between layers. Rounding the residual stream to bf16 after
every sub-block (a fully bf16 model, ``model.to(torch.bfloat16)``) put a random bert-base's last
hidden state 1.2e-2 from float32 (relative L2 error over the real tokens; the worst token 1.3e-2);
keeping it in float32 gives 5.4e-3 (worst token 5.9e-3), the same numbers autocast gives, bit for
bit, since autocast also runs linear layers (and SDPA) in bf16 and LayerNorm in float32. The price is a cast of the LayerNorm output before the next matmul, an
element-wise pass over (tokens, H); the attention casts once for its three projections
(:func:`bertforge.ops.projection_input`). Where bf16 tensors are reduced, torch's CPU kernels already
accumulate in float32 (SDPA's flash attention keeps float accumulators; softmax and GELU compute in
float), so no casts are added for them.
"""

from __future__ import annotations

import copy
import functools
import itertools
import logging
import weakref
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

logger = logging.getLogger(__name__)

# What inference accepts besides float32; float16 for GPUs (CPU float16 matmuls are slow).
INFERENCE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

ModelT = TypeVar("ModelT")


@dataclass
class _Converted:
    """A converted copy and the state of the weights it was made from."""

    dtype: torch.dtype
    device: torch.device
    source: _WeightsState
    model: nn.Module


# Source model -> its converted copy. Weak keys: the copy goes with the model it was made from (it
# holds no reference to that module: its own linear weights, and detached aliases of the rest).
_CONVERTED: weakref.WeakKeyDictionary[nn.Module, _Converted] = weakref.WeakKeyDictionary()


def inference_model(
    model: ModelT, dtype: torch.dtype | None = None, device: str | torch.device | None = None
) -> ModelT:
    """``model`` ready to run with its matmuls in ``dtype`` on ``device`` (None: as it is): the model
    itself when it already is, else a converted copy (see the module docstring) in eval mode,
    without gradients.

    The copy is made once per model, dtype and device, and returned again by later calls while the
    model's weights are unchanged: an optimizer step or ``load_state_dict`` in between (fine-tuning
    evaluating its dev set every epoch) makes a fresh one. Tied weights stay tied. The caller's
    model is never changed. Anything that is not an ``nn.Module`` (an ONNX model) is returned as it is.
    """
    if not isinstance(model, nn.Module):
        return model
    _check_dtype(dtype)
    linears, tensors = _inventory(model)
    reference = _reference_weight(linears, tensors)
    if reference is None:
        return model
    target_dtype = dtype or reference.dtype
    target_device = torch.device(device) if device is not None else reference.device
    if target_dtype == reference.dtype and target_device == reference.device:
        return model
    state = _WeightsState.of(linears, tensors, moved=target_device != reference.device)
    cached = _CONVERTED.get(model)
    if (
        cached is not None
        and (cached.dtype, cached.device) == (target_dtype, target_device)
        and cached.source.same_as(state)
    ):
        return cached.model  # type: ignore[return-value]
    converted = _converted_copy(model, target_dtype, target_device)
    _CONVERTED[model] = _Converted(target_dtype, target_device, state, converted)
    return converted  # type: ignore[return-value]


def convert_for_inference(model: ModelT, dtype: torch.dtype | None) -> ModelT:
    """Convert ``model``'s own linear layers to ``dtype`` (as :func:`inference_model` converts its
    copy), put it in eval mode without gradients, and return it. For a model loaded only to run
    (``bertforge predict``, ``evaluate``, ``serve``): no second copy of the weights. None or the
    model's own dtype leaves the weights as they are."""
    if not isinstance(model, nn.Module):
        return model
    _check_dtype(dtype)
    linears, tensors = _inventory(model)
    reference = _reference_weight(linears, tensors)
    if dtype is not None and reference is not None and dtype != reference.dtype:
        _warn_if_slow(dtype, reference.device)
        with torch.no_grad():
            for linear in linears:
                linear.to(dtype)
                _cast_inputs(linear)
    model.eval().requires_grad_(False)
    return model


def inference_dtype(model: Any) -> torch.dtype:
    """The dtype a model multiplies in: its linear layers' (float32 for anything without them)."""
    reference = _reference_weight(*_inventory(model)) if isinstance(model, nn.Module) else None
    return reference.dtype if reference is not None else torch.float32


# ------------------------------------------------------------------------------------ internals
def _check_dtype(dtype: torch.dtype | None) -> None:
    if dtype is not None and dtype not in INFERENCE_DTYPES:
        raise ValueError(
            f"dtype {dtype} is not supported; use torch.float32, torch.bfloat16 or torch.float16"
        )


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def _inventory(model: nn.Module) -> tuple[list[nn.Linear], list[torch.Tensor]]:
    """The model's linear layers and its distinct parameters and buffers, in one walk over its
    modules: ``parameters()`` walks them again per call (bert-base: ~5 ms for both lists)."""
    linears: list[nn.Linear] = []
    tensors: dict[int, torch.Tensor] = {}
    for module in model.modules():
        if isinstance(module, nn.Linear):
            linears.append(module)
        for tensor in itertools.chain(module._parameters.values(), module._buffers.values()):
            if tensor is not None:
                tensors.setdefault(id(tensor), tensor)
    return linears, list(tensors.values())


def _reference_weight(linears: list[nn.Linear], tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """The first linear layer's weight: what the model multiplies in, and where."""
    if linears:
        return linears[0].weight
    return next((t for t in tensors if t.is_floating_point()), None)


@dataclass
class _WeightsState:
    """Enough of a model's weights to tell that its converted copy is stale, read in ~1 ms (bert-base).

    Where each tensor lives (a ``.data`` assignment or ``.to()`` moves it) and its version counter
    (in-place changes seen by autograd: ``copy_``, ``load_state_dict``, foreach optimizers); and, as
    fused optimizers (bertforge fine-tunes with fused AdamW) and changes through ``.data`` leave the
    counter alone, 16 values of each linear weight. Only those need sampling: they are what the copy
    holds of its own; every other tensor of a copy on the same device is the source's, so it cannot
    go stale (a copy on another device holds them all: then every tensor is sampled).
    """

    where: tuple[tuple[int, int], ...]
    sample: torch.Tensor

    @classmethod
    def of(cls, linears: list[nn.Linear], tensors: list[torch.Tensor], moved: bool) -> _WeightsState:
        where = tuple((t.data_ptr(), t._version) for t in tensors if t.numel())
        sampled = [t for t in tensors if t.numel()] if moved else [linear.weight for linear in linears]
        with torch.no_grad():
            flat = [t.reshape(-1) for t in sampled]
            sample = torch.cat([f[:: max(1, f.numel() // 16)].to(torch.float64) for f in flat])
        return cls(where, sample)

    def same_as(self, other: _WeightsState) -> bool:
        return self.where == other.where and torch.equal(self.sample, other.sample)


def _cast_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook of a converted linear layer: its float32 input (a LayerNorm output) to the
    weight's dtype; an input already in it passes untouched."""
    first, *rest = args
    if isinstance(first, torch.Tensor) and first.is_floating_point():
        first = first.to(module.weight.dtype)  # type: ignore[arg-type]
    return (first, *rest)


def _cast_inputs(linear: nn.Linear) -> None:
    if _cast_input not in linear._forward_pre_hooks.values():
        linear.register_forward_pre_hook(_cast_input)


@torch.no_grad()
def _converted_copy(model: nn.Module, dtype: torch.dtype, device: torch.device) -> nn.Module:
    """A deep copy whose linear weights are converted while copying: the memo hands ``deepcopy``
    the converted tensor in place of each original, so no full-precision copy of them is made first
    and a tensor shared by two modules (a tied decoder and word embeddings) stays shared."""
    _warn_if_slow(dtype, device)
    linear_tensors = {id(t) for linear in _linears(model) for t in linear.parameters()}
    memo: dict[int, Any] = {}
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if id(tensor) in memo:
            continue
        target = dtype if id(tensor) in linear_tensors else tensor.dtype
        # Only the linear weights are new memory: the float32 rest (embeddings, LayerNorm) is a
        # detached alias of the source's, read-only here, so it follows the source's in-place
        # changes (a replaced tensor shows in _WeightsState.where).
        converted = tensor.detach().to(device=device, dtype=target)
        memo[id(tensor)] = (
            nn.Parameter(converted, requires_grad=False) if isinstance(tensor, nn.Parameter) else converted
        )
    converted_model: nn.Module = copy.deepcopy(model, memo)
    for linear in _linears(converted_model):
        _cast_inputs(linear)
    return converted_model.eval()


def _warn_if_slow(dtype: torch.dtype, device: torch.device) -> None:
    if dtype == torch.bfloat16 and device.type == "cpu" and not _cpu_has_bf16():
        _warn_slow_bf16()


@functools.cache
def _warn_slow_bf16() -> None:
    """Once per process. 2026-11-29, a 2-core AMD EPYC (AVX2 only), torch 2.13, one thread: bf16
    linear layers ran at 3 GFLOP/s against float32's 16; AVX512-BF16 and AMX CPUs run them faster
    than float32 (AMX: ~6x)."""
    logger.warning(
        "this CPU has no bfloat16 matrix instructions (AVX512-BF16 or AMX): bfloat16 inference runs "
        "several times slower than float32 here; use float32 on this machine"
    )


def _cpu_has_bf16() -> bool:
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check()) if check is not None else True
