"""Data-parallel training with torch.distributed: one process per device, launched by ``torchrun``.

``torchrun --nproc-per-node N -m bertforge.cli pretrain ...`` sets RANK / WORLD_SIZE / LOCAL_RANK;
:func:`setup` reads them and joins the process group (NCCL on GPUs, gloo on CPU). Without them
everything here degrades to a single process and no collective is ever called.

The equivalence the trainer keeps: micro-batch ``i`` of a global step goes to rank ``i``, and DDP
averages gradients across ranks, so N processes with ``grad_accum=a`` compute the same update as
one process with ``grad_accum=N*a`` (each loss is a per-micro-batch mean). :func:`wrap` is DDP;
the sharded alternative (FSDP2, ``train.parallel = "fsdp"``) lives in :mod:`.fsdp`.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..errors import BertForgeError


@dataclass
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # True when setup() created the process group (so cleanup ends it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise BertForgeError("train.device is 'cuda' but no CUDA GPU is visible; use --train.device cpu")
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def use_bf16(dtype: str, device: torch.device) -> bool:
    """Whether to run in bfloat16: ``dtype`` "bf16" / "fp32", or "auto": on GPUs with bf16, and on
    CPUs with AMX tiles (Sapphire Rapids and later), where bf16 matmuls pay off; elsewhere CPU bf16
    autocast is slower than float32."""
    if dtype != "auto":
        return dtype == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def setup(device_preference: str = "auto") -> DistEnv:
    """Join the process group when launched by torchrun (or with RANK/WORLD_SIZE set)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    device = pick_device(device_preference, local_rank)
    if world_size == 1:
        return DistEnv(0, 1, 0, device)
    owns = False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
        owns = True
    return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, device, owns)


def cleanup(env: DistEnv) -> None:
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, env: DistEnv) -> nn.Module:
    """DDP-wrap ``module`` when running distributed; the module itself otherwise."""
    if not env.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [env.device.index] if env.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def no_sync(module: nn.Module, sync: bool) -> contextlib.AbstractContextManager[None]:
    """Skip the gradient reduction on all but the last micro-batch of an accumulation: DDP's
    all-reduce, FSDP's reduce-scatter (whose unsharded gradients then accumulate meanwhile)."""
    if sync:
        return contextlib.nullcontext()
    if hasattr(module, "no_sync"):
        return module.no_sync()  # type: ignore[no-any-return, operator]
    if hasattr(module, "set_requires_gradient_sync"):  # an FSDP2 module
        return _no_gradient_sync(module)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _no_gradient_sync(module: Any) -> Iterator[None]:
    module.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)


def all_reduce_sum(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()
