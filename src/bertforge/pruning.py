"""Attention-head pruning: which weights belong to which head, gates on heads, and removing heads.

Head h of a layer (head size D) owns rows ``h*D:(h+1)*D`` of the query, key and value projections
(weights and biases) and the same input columns of the attention output projection. Removing the
head removes those rows and columns and nothing else, so a pruned model computes exactly what the
unpruned one computes with that head's output multiplied by zero (tested to 1e-5).

Heads keep their original numbering. ``config.pruned_heads`` maps a layer to the original indices
of its removed heads, ``{2: [0, 5]}`` (``"2"`` in config.json): transformers 4.x's key and meaning,
so those versions build the same smaller shapes when they load the checkpoint. Layer l keeps the
other heads in their original order, and :func:`bertforge.config.PretrainedConfig.attention_heads`
gives their count, from which every family's constructor builds the layer.

A family says where its head weights are with ``head_layout`` on its base model class (BERT and
RoBERTa: ``encoder.layer.N.attention`` with ``self.query`` ... ``output.dense``; DistilBERT:
``transformer.layer.N.attention`` with ``q_lin`` ... ``out_lin``). ALBERT declares none: its layers
share one set of parameters, so a head cannot leave one layer alone, and pruning it is refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .errors import BertForgeError

if TYPE_CHECKING:
    from .pretrained import PreTrainedModel

__all__ = ["HeadLayout", "head_gates", "head_layout", "heads_per_layer", "kept_heads", "prune_heads"]


@dataclass(frozen=True)
class HeadLayout:
    """Where a family keeps its attention heads, as module paths under the base model.

    ``attention`` is rebuilt when heads are removed, as ``type(module)(config, heads_kept)``; its
    ``rows`` (query, key, value) have one block of D output rows per head, its ``columns`` (the output
    projection) one block of D input columns per head.
    """

    layer: str  # layer N's path, "{}" standing for N: "encoder.layer.{}"
    attention: str  # under the layer: the module holding the four projections
    rows: tuple[str, str, str]  # under attention: the query, key and value nn.Linear
    columns: str  # under attention: the output projection nn.Linear

    def attention_path(self, layer: int) -> str:
        return f"{self.layer.format(layer)}.{self.attention}"


def head_layout(model: PreTrainedModel) -> HeadLayout:
    """The model's :class:`HeadLayout`, or a one-line error for a family that cannot be pruned."""
    layout: HeadLayout | None = getattr(model.base_model, "head_layout", None)
    if layout is None:
        model_type = getattr(model.config, "model_type", type(model).__name__)
        reason = (
            ": its layers share one set of parameters, so a head cannot be removed from one layer alone"
            if model_type == "albert"
            else ""
        )
        raise BertForgeError(
            f"pruning attention heads is not supported for {model_type}{reason}; prune a BERT, "
            "RoBERTa or DistilBERT checkpoint"
        )
    return layout


def kept_heads(config: Any, layer: int) -> list[int]:
    """The original indices of the heads layer ``layer`` still has, in order."""
    pruned = set(config.pruned_heads.get(layer, ()))
    return [h for h in range(config.num_attention_heads) if h not in pruned]


def heads_per_layer(model: PreTrainedModel) -> list[int]:
    """How many heads each layer has now."""
    config = model.config
    return [config.attention_heads(layer) for layer in range(config.num_hidden_layers)]


def _check_request(config: Any, heads: Mapping[int, Iterable[int]]) -> dict[int, list[int]]:
    """``heads`` as sorted lists, or an error naming a layer or head that does not exist or is gone."""
    layers, count = config.num_hidden_layers, config.num_attention_heads
    request: dict[int, list[int]] = {}
    for layer, chosen in heads.items():
        chosen = sorted({int(h) for h in chosen})
        if not chosen:
            continue
        if not 0 <= int(layer) < layers:
            raise BertForgeError(f"cannot prune layer {layer}: the model has layers 0-{layers - 1}")
        layer = int(layer)
        outside = [h for h in chosen if not 0 <= h < count]
        if outside:
            raise BertForgeError(
                f"cannot prune head(s) {outside} of layer {layer}: each layer has heads 0-{count - 1}"
            )
        gone = sorted(set(chosen) & set(config.pruned_heads.get(layer, ())))
        if gone:
            raise BertForgeError(
                f"head(s) {gone} of layer {layer} are already pruned; name heads it still has"
            )
        request[layer] = chosen
    return request


def _head_index(positions: list[int], head_dim: int, device: torch.device) -> torch.Tensor:
    """Row (or column) numbers of the heads at ``positions`` in the current projection."""
    return torch.cat([torch.arange(p * head_dim, (p + 1) * head_dim, device=device) for p in positions])


def prune_heads(model: PreTrainedModel, heads: Mapping[int, Iterable[int]]) -> PreTrainedModel:
    """Remove ``heads`` ({layer: original head indices}) from ``model`` in place and return it.

    The layers named get attention modules with fewer heads (the kept heads' rows and columns copied
    over, on the same device, dtype and train/eval mode); ``model.config.pruned_heads`` records the
    union of old and new, so ``save_pretrained`` writes it and ``from_pretrained`` rebuilds the shapes.
    Raises :class:`BertForgeError` for a layer or head that does not exist or is already pruned, for
    a layer left without heads, and for families without a :class:`HeadLayout` (ALBERT).
    """
    from .pretrained import deferred_init

    layout = head_layout(model)
    config: Any = model.config
    request = _check_request(config, heads)
    merged = {layer: list(pruned) for layer, pruned in config.pruned_heads.items()}
    for layer, chosen in request.items():
        merged[layer] = sorted({*merged.get(layer, ()), *chosen})
    updated = config.replace(pruned_heads=merged)  # validates: a layer may not lose every head
    head_dim: int = config.head_dim
    base: Any = model.base_model
    for layer, chosen in request.items():
        path = layout.attention_path(layer)
        old = base.get_submodule(path)
        before = kept_heads(config, layer)
        positions = [i for i, h in enumerate(before) if h not in chosen]
        reference = old.get_submodule(layout.columns).weight
        index = _head_index(positions, head_dim, reference.device)
        state = old.state_dict()
        for name in layout.rows:
            for suffix in ("weight", "bias"):
                state[f"{name}.{suffix}"] = state[f"{name}.{suffix}"].index_select(0, index)
        state[f"{layout.columns}.weight"] = state[f"{layout.columns}.weight"].index_select(1, index)
        with deferred_init():
            new = type(old)(updated, len(positions))
        new.to_empty(device=reference.device)
        new.load_state_dict(state)
        new.to(reference.dtype).train(old.training)
        parent, _, attribute = path.rpartition(".")
        setattr(base.get_submodule(parent), attribute, new)
    # One config object is shared by the head model and its encoder: change it, do not replace it.
    config.pruned_heads = updated.pruned_heads
    return model


@contextlib.contextmanager
def head_gates(
    model: PreTrainedModel, gates: list[torch.Tensor] | None = None
) -> Iterator[list[torch.Tensor]]:
    """Multiply each head's context by a gate while the block runs: ``gates[layer]`` has one value per
    head the layer has now (default: ones with ``requires_grad``, whose gradients rank the heads,
    Michel et al. 2019). A gate at 0 removes the head's contribution, as pruning it does.

    The gate sits in a forward pre-hook on each layer's output projection (its input is the heads'
    contexts side by side, (B, T, N*D)); outside this block no hook exists and the model runs with
    no extra work at all.
    """
    layout = head_layout(model)
    counts = heads_per_layer(model)
    if gates is None:
        gates = [torch.ones(n, requires_grad=True) for n in counts]
    if [g.numel() for g in gates] != counts:
        raise BertForgeError(
            f"gates have {[g.numel() for g in gates]} values per layer; the model has {counts} heads"
        )
    handles = []
    base: Any = model.base_model
    for layer, gate in enumerate(gates):
        projection = base.get_submodule(f"{layout.attention_path(layer)}.{layout.columns}")

        def gate_heads(
            module: nn.Module, args: tuple[Any, ...], gate: torch.Tensor = gate
        ) -> tuple[Any, ...]:
            context, *rest = args
            # (B, T, N*D) -> (B, T, N, D), scaled per head, back to (B, T, N*D)
            heads = context.unflatten(-1, (gate.numel(), -1))
            gated = (heads * gate.to(device=context.device, dtype=context.dtype)[:, None]).flatten(-2)
            return (gated, *rest)

        handles.append(projection.register_forward_pre_hook(gate_heads))
    try:
        yield gates
    finally:
        for handle in handles:
            handle.remove()
