"""Distributed data-parallel set-up through PyTorch's own engine (``torchrun``).

``torchrun --nproc_per_node N tools/train.py ...`` sets RANK / WORLD_SIZE /
LOCAL_RANK; NCCL is used on GPUs, gloo on the CPU. Without them everything
runs as a single process (rank 0 of 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

import torch
import torch.distributed as dist

from taxdet.core.errors import ConfigError, InputError

T = TypeVar("T")
RANK0_WAIT = timedelta(hours=24)  # how long the other ranks wait for rank 0's merge


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(name: str, info: DistInfo) -> torch.device:
    """``auto`` -> this rank's GPU when CUDA is present, else the CPU. A device this machine
    does not have (``cuda`` without CUDA, ``cuda:3`` with 2 GPUs) or no device name at all is
    a ``ConfigError``, here where the device is picked."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r}: not a device name (auto, cpu, cuda or "
                          "cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: CUDA is not available on this machine "
                              "(use --device cpu, or auto)")
        if device.index is None:
            device = torch.device("cuda", info.local_rank)
        if device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: this machine has {torch.cuda.device_count()} "
                              f"CUDA device(s), numbered from 0")
        torch.cuda.set_device(device)
    return device


def init(device_name: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun; return this rank's info and device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = pick_device(device_name, info)
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_gather_objects(obj: T, info: DistInfo) -> list[T]:
    """Every rank's ``obj`` on every rank (the per-rank image shares of an epoch)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def gather_objects(obj: T, info: DistInfo) -> list[T] | None:
    """Every rank's ``obj`` in rank order on rank 0; ``None`` on the other ranks."""
    if not info.enabled:
        return [obj]
    out: list[Any] | None = [None] * info.world_size if info.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_object(obj: T, info: DistInfo) -> T:
    """Rank 0's ``obj`` on every rank (the others pass anything, e.g. None)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_state(module: torch.nn.Module, info: DistInfo) -> None:
    """Overwrite ``module``'s parameters and buffers with rank 0's, in place.

    Without SyncBatchNorm each rank's batch-norm running statistics (and so its EMA copy)
    follow its own batches; validating this way evaluates rank 0's model, the one saved.
    """
    if not info.enabled:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def sum_over_ranks(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The sum of every rank's ``tensor`` (a new tensor; every rank must call this)."""
    total = tensor.detach().clone()
    if info.enabled:
        dist.all_reduce(total)
    return total


def in_group(info: DistInfo) -> bool:
    """True when ``info`` is one of several ranks and their process group is up (a DistInfo
    made by hand, e.g. to compute a rank's share in a test, has none)."""
    return info.enabled and dist.is_available() and dist.is_initialized()


def run_on_rank0(work: Callable[[], T], info: DistInfo, timeout: timedelta = RANK0_WAIT
                 ) -> T | None:
    """``work()`` on rank 0 only, while the other ranks wait (up to ``timeout``, on a CPU
    process group of their own, so a long merge does not trip the default group's timeout).

    Returns ``work()``'s result on rank 0 and None elsewhere. When ``work`` raises on rank 0,
    it re-raises there and the other ranks raise an ``InputError`` quoting it (none is left
    waiting). Without a process group it is just ``work()``.
    """
    if not in_group(info):
        return work()
    # every rank joins, so it is a group (never GroupMember.NON_GROUP_MEMBER)
    group = cast("dist.ProcessGroup", dist.new_group(backend="gloo", timeout=timeout))
    try:
        if info.is_main:
            try:
                result = work()
            except BaseException as exc:
                dist.broadcast_object_list([f"{type(exc).__name__}: {exc}"], src=0, group=group)
                raise
            dist.broadcast_object_list([None], src=0, group=group)
            return result
        box = [None]
        dist.broadcast_object_list(box, src=0, group=group)
        if box[0] is not None:
            raise InputError(f"rank 0 failed, so rank {info.rank} stops too: {box[0]}")
        return None
    finally:
        dist.destroy_process_group(group)


def all_ranks_true(flag: bool) -> bool:
    """True iff ``flag`` is True on every rank (one all-reduce when a process group is up).

    Lets every rank take the same branch, e.g. all stop on a non-finite loss instead of the
    others blocking in the gradient all-reduce.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def shutdown(info: DistInfo | None = None) -> None:
    """Leave the process group (``info=None``: whenever one is initialised)."""
    if (info is None or info.enabled) and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
