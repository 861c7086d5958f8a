"""Fully sharded data parallelism (FSDP2, ``torch.distributed.fsdp.fully_shard``): each of N
processes keeps 1/N of the parameters, gradients and optimizer state, and gathers a block's full
weights only while that block runs.

``train.parallel = "fsdp"`` under torchrun. :func:`shard` gives every encoder block its own FSDP
group (one all-gather before it runs, one reduce-scatter of its gradients after its backward), then
makes the loss module the root: the embeddings, pooler and heads (the tied MLM decoder with the word
embeddings) form the root's group. Gradients are averaged across processes as DDP averages them, so
FSDP and DDP compute the same updates (tested with gloo on CPU: the same losses). With bf16 the
gathered weights are bf16 (half the traffic) and gradients are reduced in fp32; autocast still
chooses each op's precision, as in a DDP run.

Checkpoints keep the model and optimizer sharded: in :func:`save_sharded_checkpoint` every process
writes its own shards with ``torch.distributed.checkpoint`` (DCP) into the checkpoint's temporary
directory, then rank 0 adds the config, tokenizer, trainer state and manifest and renames it into
place, as for any checkpoint (:mod:`.checkpointing`). DCP records each tensor's global shape, so
:func:`load_sharded_state` reshards on load: a checkpoint written by 2 processes resumes on 1, 2 or
8, sharded or not. The final model is gathered whole on rank 0 (:func:`full_state_dict`) and written
as a plain ``model.safetensors`` in the Hugging Face layout.

Nothing here is specific to a device: the device mesh takes the run's device type (gloo on CPU,
NCCL on CUDA). Only the CPU path has been tested (no GPU was available).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from ..errors import BertForgeError
from ..fileio import start_temporary_directory, temporary_directory
from . import checkpointing as ckpt
from . import distributed as dist_utils

log = logging.getLogger(__name__)

# The root module's method that scores an evaluation batch; registered with FSDP so that calling
# it gathers the root's weights as ``forward`` does.
EVALUATION_METHOD = "evaluation_loss"


# ------------------------------------------------------------------------------------ wrapping
def encoder_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks of ``model``'s encoder: the outermost modules held in an ``nn.ModuleList``.

    BERT's and RoBERTa's ``encoder.layer[i]``, DistilBERT's ``transformer.layer[i]``, ALBERT's
    layer groups (one module run once per layer that shares it; FSDP gathers it at each run).
    """
    blocks: list[nn.Module] = []
    taken: set[int] = set()
    for module in model.modules():  # parents before children
        if id(module) in taken or not isinstance(module, nn.ModuleList):
            continue
        for block in module:
            blocks.append(block)
            taken.update(id(m) for m in block.modules())
    return blocks


def shard(root: nn.Module, model: nn.Module, env: dist_utils.DistEnv, bf16: bool) -> nn.Module:
    """``fully_shard`` each encoder block of ``model``, then ``root`` (the module whose ``forward``
    is the training loss and which holds ``model``). Call before building the optimizer: the
    optimizer must see the sharded parameters."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    mesh = init_device_mesh(env.device.type, (env.world_size,))
    # cast_forward_inputs=False: a block's inputs keep their dtype and autocast decides, as in DDP.
    policy = (
        MixedPrecisionPolicy(torch.bfloat16, torch.float32, cast_forward_inputs=False)
        if bf16
        else MixedPrecisionPolicy()
    )
    blocks = encoder_blocks(model)
    for block in blocks:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(root, mesh=mesh, mp_policy=policy)
    register_fsdp_forward_method(root, EVALUATION_METHOD)
    log.info("FSDP: %d encoder blocks + the root sharded over %d processes", len(blocks), env.world_size)
    return root


# -------------------------------------------------------------------------------------- state
def _sharded_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    # Keys are parameter names (not the optimizer's indices), so the shards load into any wrapping.
    model_state, optimizer_state = get_state_dict(model, optimizer)
    return {"model": model_state, "optimizer": optimizer_state}


@contextlib.contextmanager
def _quiet_single_process(env: dist_utils.DistEnv) -> Iterator[None]:
    # DCP warns that it "assumes" a single process whenever it runs without a process group:
    # with one process that is what this run means.
    with warnings.catch_warnings():
        if not env.distributed:
            warnings.filterwarnings("ignore", "torch.distributed is disabled", UserWarning)
        yield


def save_sharded_state(
    directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer, env: dist_utils.DistEnv
) -> None:
    """Every process writes its shards of the model and optimizer state into ``directory`` (DCP)."""
    with _quiet_single_process(env):
        dcp.save(_sharded_state(model, optimizer), checkpoint_id=directory, no_dist=not env.distributed)


def load_sharded_state(
    directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer, env: dist_utils.DistEnv
) -> None:
    """Load DCP shards written by any number of processes into this run's (sharded or not) model
    and optimizer; every process calls it."""
    state = _sharded_state(model, optimizer)
    with _quiet_single_process(env):
        dcp.load(state, checkpoint_id=directory, no_dist=not env.distributed)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's weights, gathered on CPU on rank 0 (an empty dict on the other ranks);
    every process calls it."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    # full_state_dict: plain tensors, no DTensor shards
    return cast("dict[str, torch.Tensor]", get_model_state_dict(model, options=options))


def _missing_shards(directory: Path) -> list[str]:
    """Files named in the DCP index that this process cannot see."""
    metadata = dcp.FileSystemReader(str(directory)).read_metadata()
    names = {info.relative_path for info in (metadata.storage_data or {}).values()}
    return sorted(name for name in names if not (directory / name).is_file())


def _is_no_space(err: BaseException) -> bool:
    if isinstance(err, OSError):
        return err.errno == errno.ENOSPC
    failures = getattr(err, "failures", None)  # DCP's CheckpointException: (exception, trace) per rank
    return isinstance(failures, dict) and any(_is_no_space(exc) for exc, _ in failures.values())


def save_sharded_checkpoint(
    output_dir: str | Path,
    step: int,
    *,
    env: dist_utils.DistEnv,
    model: Any,
    optimizer: torch.optim.Optimizer,
    tokenizer: Any,
    trainer_state: dict[str, Any],
    config_text: str | None = None,
    keep_last: int = 2,
) -> Path | None:
    """Write ``OUT/checkpoint-{step:06d}`` with the model and optimizer as DCP shards; every process
    calls it, rank 0 returns the path. Atomic as :func:`.checkpointing.save_checkpoint`: the shards
    land in the temporary directory, and the rename follows the manifest that lists them.

    The output directory must be one every process sees (a shared filesystem across nodes)."""
    final = Path(output_dir) / ckpt.checkpoint_name(step)
    tmp = temporary_directory(final)
    if env.is_main:
        start_temporary_directory(final)
    dist_utils.barrier(env)
    try:
        save_sharded_state(tmp / ckpt.SHARDED_STATE, model, optimizer, env)
        # Checked by rank 0, agreed by all, so that no process waits on one that gave up.
        missing = _missing_shards(tmp / ckpt.SHARDED_STATE) if env.is_main else []
        flag = torch.tensor([float(bool(missing))], device=env.device)
        if float(dist_utils.all_reduce_max(flag, env)) > 0:
            shown = ", ".join(missing[:3]) or "(see rank 0's error)"
            raise BertForgeError(
                f"rank 0 cannot see the checkpoint shards {shown} that other processes wrote into "
                f"{tmp}; with several nodes, --output-dir must be on a filesystem every node shares"
            )
    except BaseException as err:
        if env.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        if _is_no_space(err):
            raise ckpt.no_space_error(final) from err
        raise
    path = None
    if env.is_main:
        path = ckpt.save_checkpoint(
            output_dir, step, model=model, tokenizer=tokenizer, trainer_state=trainer_state,
            config_text=config_text, keep_last=keep_last, sharded=True,
        )  # fmt: skip
    dist_utils.barrier(env)
    return path
