"""What every model of every family shares: building on the meta device, BERT's weight
initialisation, and ``from_pretrained`` / ``save_pretrained`` in the Hugging Face layout (see
checkpoint.py).

A family declares, as class attributes, what the checkpoint code needs to know about its layout:
the attribute holding the encoder in head models (``base_model_prefix``: "bert", "roberta",
"albert", "distilbert"), the base model's sub-modules and which of them must be on disk, and the
parameters that are tied to or aliases of another (the MLM decoder and the word embeddings).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import torch
from torch import nn

from .config import PretrainedConfig

if TYPE_CHECKING:
    from .pruning import HeadLayout

# True while a model is being built inside an enclosing model or for from_pretrained: sub-modules are
# then created on the meta device and the outermost caller materialises and initialises them once.
_DEFERRED: ContextVar[bool] = ContextVar("bertforge_deferred_init", default=False)


@contextlib.contextmanager
def deferred_init() -> Iterator[None]:
    """Create modules on the meta device and skip their initialisation.

    2026-11: building bert-large the plain way spent 3 s in PyTorch's default initialisers and
    3 s initialising BERT's weights twice (encoder, then head model), all of it thrown away by
    from_pretrained. Under this context a model costs no memory and no initialisation until the
    outermost caller materialises it (:meth:`PreTrainedModel.post_init`, or the loader).
    """
    token = _DEFERRED.set(True)
    try:
        with torch.device("meta"):
            yield
    finally:
        _DEFERRED.reset(token)


ModelT = TypeVar("ModelT", bound="PreTrainedModel")


class PreTrainedModel(nn.Module):
    """Shared by every base model and head of every family: BERT's weight initialisation and
    checkpoint I/O.

    Subclasses create their sub-modules inside ``with deferred_init():`` and end ``__init__`` with
    ``self.post_init()``, which (for the outermost model only) allocates the weights and applies
    BERT's initialisation exactly once.
    """

    config: Any
    config_class: ClassVar[type[PretrainedConfig]]
    # The attribute holding the encoder inside a head model; the base model has no such attribute.
    base_model_prefix: ClassVar[str] = "bert"
    # Children of the base model (keys under them belong to the encoder, everything else to a head),
    # and those a checkpoint must contain (a missing pooler is initialised, a missing layer is an error).
    base_modules: ClassVar[tuple[str, ...]] = ("embeddings", "encoder", "pooler")
    required_modules: ClassVar[tuple[str, ...]] = ("embeddings", "encoder")
    # Parameter -> the one it is tied to when config.tie_word_embeddings, as transformers'
    # _tied_weights_keys: the MLM decoder's matrix to the word embeddings, its bias to the head's
    # bias. A tied parameter is not saved, and is loaded from either name.
    tied_weights: ClassVar[dict[str, str]] = {}
    # Where a base model's attention heads are, for head pruning (bertforge.pruning); None: not prunable.
    head_layout: ClassVar[HeadLayout | None] = None

    @property
    def is_base_model(self) -> bool:
        return not isinstance(getattr(self, self.base_model_prefix, None), nn.Module)

    def gradient_checkpointing_enable(self) -> None:
        """Activation checkpointing in every encoder layer while training (transformers' method
        name): each layer keeps only its input for the backward and runs its forward again there,
        trading about a third more compute for the activations of all layers but one."""
        self._set_gradient_checkpointing(True)

    def gradient_checkpointing_disable(self) -> None:
        self._set_gradient_checkpointing(False)

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) for m in self.modules())

    def _set_gradient_checkpointing(self, enabled: bool) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = enabled  # type: ignore[assignment]  # a bool, not a submodule

    @property
    def base_model(self) -> nn.Module:
        """The encoder: the model itself for a base model, ``self.<base_model_prefix>`` for a head."""
        return self if self.is_base_model else getattr(self, self.base_model_prefix)

    def post_init(self) -> None:
        if _DEFERRED.get():
            return  # an enclosing model, or the checkpoint loader, fills the weights
        self.to_empty(device=torch.get_default_device())
        self.init_weights()

    def init_weights(self) -> None:
        self.apply(self._init_module)
        self.tie_weights()

    def _init_module(self, module: nn.Module) -> None:
        """BERT's initialisation: normal(0, initializer_range) weights, zero biases, LayerNorm 1/0."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif callable(reset := getattr(module, "reset_extra_parameters", None)):
            reset()

    @classmethod
    def weight_ties(cls, config: Any) -> dict[str, str]:
        """The ties in force under ``config``: all of ``tied_weights`` when config.tie_word_embeddings,
        none otherwise. Untied, as in transformers 5, the MLM decoder keeps its own matrix and its
        own bias (the one in the logits), and the head's ``bias`` is a separate, unused parameter."""
        return dict(cls.tied_weights) if getattr(config, "tie_word_embeddings", True) else {}

    def tie_weights(self) -> None:
        """Re-establish the shared parameters of :meth:`weight_ties` (after materialising or loading).

        Untied, a head parameter that only exists to be shared (the head's ``bias``) is read by
        nothing: it is frozen, so that DDP does not wait for a gradient that never comes. It would
        never change anyway (it never has a gradient, here or in transformers) and is still saved.
        """
        ties = self.weight_ties(self.config)
        for name, owner in ties.items():
            module_name, _, attr = name.rpartition(".")
            setattr(self.get_submodule(module_name), attr, self.get_parameter(owner))
        encoder = f"{self.base_model_prefix}."
        for name, owner in self.tied_weights.items():
            if name not in ties and not owner.startswith(encoder):
                self.get_parameter(owner).requires_grad_(False)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Distinct parameters (a tied matrix counts once)."""
        params = {p.data_ptr(): p for p in self.parameters() if p.requires_grad or not trainable_only}
        return sum(p.numel() for p in params.values())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # Checkpoint I/O lives in checkpoint.py; these are thin, discoverable entry points.
    @classmethod
    def from_pretrained(
        cls: type[ModelT],
        path: str | os.PathLike[str],
        config: PretrainedConfig | None = None,
        **kwargs: Any,
    ) -> ModelT:
        """Load a Hugging Face-layout checkpoint directory; see :func:`bertforge.checkpoint.load_pretrained`
        for the options (dtype, device, ignore_mismatched_sizes, config overrides such as num_labels)."""
        from .checkpoint import load_pretrained

        return load_pretrained(cls, path, config=config, **kwargs)

    def save_pretrained(
        self,
        directory: str | os.PathLike[str],
        *,
        safe_serialization: bool = True,
        state_dict: dict[str, torch.Tensor] | None = None,
    ) -> list[Path]:
        """Write ``config.json`` + ``model.safetensors`` (or ``pytorch_model.bin``) into ``directory``;
        ``state_dict`` replaces the module's own (e.g. a full state dict gathered from shards)."""
        from .checkpoint import save_pretrained

        return save_pretrained(self, directory, safe_serialization=safe_serialization, state_dict=state_dict)
