"""Checkpoints in the Hugging Face layout: ``config.json`` + ``model.safetensors`` (or ``pytorch_model.bin``).

Parameter names are already Hugging Face's, so loading is a direct ``load_state_dict`` after a small
normalisation for what real checkpoints contain:

* legacy TensorFlow-era names ``LayerNorm.gamma`` / ``LayerNorm.beta``;
* stray buffers (``embeddings.position_ids``, ``embeddings.token_type_ids``);
* with or without the ``bert.`` prefix (a bare ``BertModel`` checkpoint into a head, and back);
* the MLM decoder's matrix and bias missing on disk because they are tied (to the word embeddings,
  to ``cls.predictions.bias``), or a tie stored under the other name (transformers ties either way).
  With ``tie_word_embeddings = false`` nothing is tied: the decoder's own matrix and bias and the
  unused ``cls.predictions.bias`` are loaded and saved as they are, as transformers 5 does.

Head weights absent from the checkpoint (a classifier on top of a base model) are initialised
and logged; a missing encoder weight or a shape mismatch is an error naming the tensor.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .config import PretrainedConfig
from .errors import BertForgeError
from .fileio import atomic_path
from .pretrained import ModelT, PreTrainedModel, deferred_init

logger = logging.getLogger(__name__)

SAFE_WEIGHTS_NAME = "model.safetensors"
TORCH_WEIGHTS_NAME = "pytorch_model.bin"
SAFE_INDEX_NAME = "model.safetensors.index.json"
TORCH_INDEX_NAME = "pytorch_model.bin.index.json"

# Buffers some checkpoints carry that are recomputed, never learned.
_STRAY_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")


# ---------------------------------------------------------------------------------------- reading
def read_state_dict(directory: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory, from safetensors (preferred) or a torch pickle."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BertForgeError(
            f"checkpoint directory {directory} does not exist; pass a folder holding config.json and weights"
        )
    for index_name in (SAFE_INDEX_NAME, TORCH_INDEX_NAME):
        index = directory / index_name
        if index.is_file():
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            state: dict[str, torch.Tensor] = {}
            for shard in sorted(set(weight_map.values())):
                state.update(_read_weights_file(directory / shard))
            return state
    for name in (SAFE_WEIGHTS_NAME, TORCH_WEIGHTS_NAME):
        if (directory / name).is_file():
            return _read_weights_file(directory / name)
    raise BertForgeError(
        f"no weights in {directory}: expected {SAFE_WEIGHTS_NAME} or {TORCH_WEIGHTS_NAME} "
        "(save a model there with save_pretrained)"
    )


def checkpoint_keys(directory: str | os.PathLike[str]) -> list[str]:
    """Tensor names in a checkpoint, read from the safetensors header alone when possible."""
    directory = Path(directory)
    for index_name in (SAFE_INDEX_NAME, TORCH_INDEX_NAME):
        if (directory / index_name).is_file():
            return list(json.loads((directory / index_name).read_text(encoding="utf-8"))["weight_map"])
    if (directory / SAFE_WEIGHTS_NAME).is_file():
        try:
            with safe_open(str(directory / SAFE_WEIGHTS_NAME), framework="pt") as handle:
                return list(handle.keys())
        except (SafetensorError, OSError) as err:
            raise BertForgeError(
                f"cannot read {directory / SAFE_WEIGHTS_NAME} ({err}); the file is corrupt"
            ) from None
    return list(read_state_dict(directory))


def _read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.name.endswith(".safetensors"):
            return load_file(str(path), device="cpu")
        # weights_only: a checkpoint is data, and must not be able to run code when loaded.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, RuntimeError, OSError, EOFError, pickle.UnpicklingError, IndexError) as err:
        # torch's weights-only unpickler reports garbage bytes as UnpicklingError or IndexError.
        raise BertForgeError(
            f"cannot read weights file {path} ({err}); the file is corrupt or not a checkpoint"
        ) from None
    if not isinstance(state, dict):
        raise BertForgeError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return state


def normalize_state_dict(
    state: dict[str, torch.Tensor], prefix: str, layout: type[PreTrainedModel] | None = None
) -> dict[str, torch.Tensor]:
    """Rename legacy keys and put encoder keys under ``prefix`` (the family's prefix, "bert", for a
    head model; "" for a base model). ``layout`` is the model class whose base modules apply
    (BERT's when None). Tied names are left as they are: which ties hold depends on the config
    (see :meth:`PreTrainedModel.weight_ties`)."""
    if layout is None:
        from .heads import BertForPreTraining

        layout = BertForPreTraining  # BERT's layout
    family = layout.base_model_prefix
    base_modules = tuple(f"{name}." for name in layout.base_modules)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith(_STRAY_SUFFIXES):
            continue
        if key.endswith("LayerNorm.gamma"):
            key = key[: -len("gamma")] + "weight"
        elif key.endswith("LayerNorm.beta"):
            key = key[: -len("beta")] + "bias"
        if prefix:
            if key.startswith(base_modules):
                key = f"{prefix}.{key}"
        elif key.startswith(f"{family}."):
            key = key[len(family) + 1 :]
        out[key] = tensor
    return out


# ---------------------------------------------------------------------------------------- loading
def load_pretrained(
    cls: type[ModelT],
    path: str | os.PathLike[str],
    config: PretrainedConfig | None = None,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    ignore_mismatched_sizes: bool = False,
    **config_overrides: Any,
) -> ModelT:
    """Build ``cls`` from the checkpoint directory ``path``.

    ``config_overrides`` change config fields before the model is built, e.g. ``num_labels=3``.
    ``ignore_mismatched_sizes`` re-initialises head weights whose shape differs from the
    checkpoint (a classifier with a new label count) instead of raising.
    """
    path = Path(path)
    if not path.is_dir():
        raise BertForgeError(
            f"checkpoint directory {path} does not exist; pass a folder holding config.json and weights"
        )
    if config is None:
        config = cls.config_class.from_pretrained(path, **config_overrides)
    elif config_overrides:
        config = config.replace(**config_overrides)
    state = read_state_dict(path)
    with deferred_init():
        model = cls(config)  # on the meta device: no memory, no initialisation thrown away
    model.to_empty(device="cpu")
    model.tie_weights()
    prefix = "" if model.is_base_model else model.base_model_prefix
    load_state_dict_into(
        model, normalize_state_dict(state, prefix, type(model)), ignore_mismatched_sizes, source=str(path)
    )
    if dtype is not None or device is not None:
        model.to(device=device, dtype=dtype)
    model.eval()
    return model


def _prefix_holding(missing: list[str], state: dict[str, torch.Tensor], prefix: str) -> str | None:
    """The name the checkpoint keeps the missing weights under instead (``bert`` for a BERT's
    weights behind a config.json that says roberta), or None when they are simply absent."""
    wanted = {key.removeprefix(f"{prefix}.") for key in missing}
    for key in state:
        head, _, rest = key.partition(".")
        if rest in wanted and head != prefix:
            return head
    return None


def _fold_tied_weight(state: dict[str, torch.Tensor], tied: str, owner: str, source: str) -> None:
    """Keep one tensor for a tie under the owner's name. transformers ties either way round: a
    checkpoint holding only the tied name (``decoder.bias`` without ``predictions.bias``) loads."""
    tensor = state.pop(tied, None)
    if tensor is None:
        return
    if owner not in state:
        state[owner] = tensor
    elif not torch.equal(tensor, state[owner]):
        # transformers would leave this one pair untied; one tensor under two names is our model.
        logger.warning(
            "%s: %s and %s differ, but config.json ties them (tie_word_embeddings = true); loading %s "
            "for both. Set tie_word_embeddings to false in config.json to keep them apart",
            source,
            tied,
            owner,
            owner,
        )


def load_state_dict_into(
    model: PreTrainedModel,
    state: dict[str, torch.Tensor],
    ignore_mismatched_sizes: bool = False,
    source: str = "checkpoint",
) -> None:
    """Copy a normalised state dict into ``model``; initialise absent head weights, refuse the rest."""
    expected = dict(model.state_dict())
    for tied, owner in model.weight_ties(model.config).items():
        expected.pop(tied, None)  # filled through its owner
        _fold_tied_weight(state, tied, owner, source)
    is_base = model.is_base_model
    required = tuple(f"{name}." for name in model.required_modules)

    def belongs_to_encoder(key: str) -> bool:
        bare = key if is_base else key.removeprefix(f"{model.base_model_prefix}.")
        return bare.startswith(required)

    for key, tensor in list(state.items()):
        if key in expected and tuple(tensor.shape) != tuple(expected[key].shape):
            if ignore_mismatched_sizes and not belongs_to_encoder(key):
                logger.warning(
                    "%s: %s has shape %s, model needs %s; re-initialising it",
                    source,
                    key,
                    tuple(tensor.shape),
                    tuple(expected[key].shape),
                )
                del state[key]
                continue
            raise BertForgeError(
                f"shape mismatch for {key}: checkpoint {source} has {tuple(tensor.shape)}, "
                f"the model expects {tuple(expected[key].shape)}; check config.json "
                "(or pass ignore_mismatched_sizes=True to re-initialise a task head)"
            )
    missing = [k for k in expected if k not in state]
    missing_encoder = [k for k in missing if belongs_to_encoder(k)]
    if missing_encoder:
        shown = ", ".join(f"{k} {tuple(expected[k].shape)}" for k in missing_encoder[:5])
        more = f" and {len(missing_encoder) - 5} more" if len(missing_encoder) > 5 else ""
        model_type = model.config.model_type
        elsewhere = _prefix_holding(missing_encoder, state, model.base_model_prefix)
        why = (
            f"its encoder weights are named '{elsewhere}.*', not '{model.base_model_prefix}.*': "
            f"config.json's model_type '{model_type}' is likely wrong for these weights"
            if elsewhere is not None
            else f"it is not a complete {model_type} checkpoint or was saved with a different "
            "num_hidden_layers"
        )
        raise BertForgeError(f"checkpoint {source} lacks encoder weight(s) {shown}{more}; {why}")
    unexpected = [k for k in state if k not in expected]
    loadable = {k: v for k, v in state.items() if k in expected}
    # Initialise the modules that own absent weights first; loading then overwrites whatever the
    # checkpoint does have, so a module with one weight on disk and one missing ends up right.
    for module_name in dict.fromkeys(key.rpartition(".")[0] for key in missing):
        model._init_module(model.get_submodule(module_name))
    with torch.no_grad():
        model.load_state_dict(loadable, strict=False)
    model.tie_weights()
    if missing:
        logger.warning(
            "%s: newly initialised weights (train them before use): %s", source, ", ".join(missing)
        )
    if unexpected:
        logger.info("%s: unused checkpoint weights: %s", source, ", ".join(unexpected))


# ----------------------------------------------------------------------------------------- saving
def save_pretrained(
    model: PreTrainedModel,
    directory: str | os.PathLike[str],
    *,
    safe_serialization: bool = True,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> list[Path]:
    """Write ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``) into ``directory``.

    Each file is written to a temporary name and renamed, so an interrupted save never leaves a
    truncated file under the real name. Tied parameters are written once, under the owner's name
    (``cls.predictions.bias``, not ``cls.predictions.decoder.bias``), as transformers does.
    ``state_dict``: the weights to write instead of ``model.state_dict()`` (the full state dict
    gathered from a sharded model, whose own state dict holds only this process's shards).
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise BertForgeError(f"{directory} exists and is not a directory; choose another output path")
    directory.mkdir(parents=True, exist_ok=True)
    if state_dict is None:
        state_dict = model.state_dict()
    state = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    for tied in model.weight_ties(model.config):
        state.pop(tied, None)

    written = []
    if safe_serialization:
        weights = directory / SAFE_WEIGHTS_NAME
        with atomic_path(weights) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
    else:
        weights = directory / TORCH_WEIGHTS_NAME
        with atomic_path(weights) as tmp:
            torch.save(state, tmp)
    written.append(weights)
    written.append(save_config(model, directory))
    return written


def save_config(model: PreTrainedModel, directory: str | os.PathLike[str]) -> Path:
    """``config.json`` with ``architectures`` naming the model's class, as transformers writes it."""
    config = model.config.replace(extra={**model.config.extra, "architectures": [type(model).__name__]})
    return config.save_pretrained(directory)  # type: ignore[no-any-return]
