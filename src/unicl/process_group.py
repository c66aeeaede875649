"""Facts about the process group a computation runs in, and the few collectives built on them.

Every question of the form "how many processes share this step, which one am I, do they all
agree" is answered here, for a group that the caller passes explicitly. The convention is
`torch.distributed`'s: ``group=None`` is the default group when ``torch.distributed`` is
initialised; when it is not, the computation is one process of rank 0 and every collective here
is the identity on it. Only ``spans_processes(group)`` says whether communication happens.

Collectives must be called by every rank of ``group`` in the same order. Flags and sums travel as
tensors on the caller's device, so they work with NCCL (CUDA tensors) and gloo (CPU tensors) alike.

This module sits at the bottom of the package: it imports only ``torch`` and ``unicl.errors``.
"""

from __future__ import annotations

import io
from typing import Any, TypeAlias

import torch
import torch.distributed as dist

from unicl.errors import UserInputError

Group: TypeAlias = "dist.ProcessGroup | None"
"""A process group, or None for the default one (when ``torch.distributed`` is initialised)."""


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank(group: Group = None) -> int:
    """This process's rank in ``group``; 0 when ``torch.distributed`` is not initialised."""
    return dist.get_rank(group) if _initialized() else 0


def world_size(group: Group = None) -> int:
    """The number of processes in ``group``; 1 when ``torch.distributed`` is not initialised."""
    return dist.get_world_size(group) if _initialized() else 1


def spans_processes(group: Group = None) -> bool:
    """True when ``group`` has more than one process, i.e. when collectives communicate."""
    return world_size(group) > 1


def true_on_all_ranks(flag: torch.Tensor, group: Group = None) -> bool:
    """Whether the boolean scalar ``flag`` holds on every rank of ``group`` (one host sync; one
    tiny all-reduce when the group spans processes, so that all ranks take the same branch)."""
    agreed = flag.detach().to(torch.int32).reshape(())
    if spans_processes(group):
        dist.all_reduce(agreed, op=dist.ReduceOp.MIN, group=group)
    return bool(agreed)


def flags_on_any_rank(
    flags: list[torch.Tensor | bool], device: torch.device, group: Group = None
) -> list[bool]:
    """For each boolean flag (a scalar tensor or a bool), whether it holds on at least one rank
    of ``group``: all flags in one all-reduce and one host sync, however many there are."""
    stacked = torch.stack(
        [torch.as_tensor(flag, device=device).detach().reshape(()) for flag in flags]
    ).to(torch.int32)
    if spans_processes(group):
        dist.all_reduce(stacked, op=dist.ReduceOp.MAX, group=group)
    return [bool(value) for value in stacked.tolist()]


def sum_over_ranks(tensor: torch.Tensor, group: Group = None) -> torch.Tensor:
    """The element-wise sum of ``tensor`` over the ranks of ``group``, as a new tensor (no
    gradient flows through it; ``tensor`` is left unchanged)."""
    total = tensor.detach().clone()
    if spans_processes(group):
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
    return total


def gather_sizes(local_size: int, device: torch.device, group: Group = None) -> list[int]:
    """Every rank's row count in rank order (one all-gather and one host sync across processes)."""
    if not spans_processes(group):
        return [local_size]
    size = torch.tensor([local_size], device=device)
    sizes = [torch.zeros_like(size) for _ in range(world_size(group))]
    dist.all_gather(sizes, size, group=group)
    return torch.cat(sizes).tolist()


def gather_rows(
    tensor: torch.Tensor, group: Group = None, sizes: list[int] | None = None
) -> torch.Tensor:
    """Every rank's ``[b_r, ...]`` tensor concatenated in rank order (no gradient). Ranks may hold
    different ``b_r`` (``sizes``, gathered when not given): each pads its rows to the largest,
    since an all-gather needs equal shapes, and the padding is trimmed. On one process: ``tensor``."""
    if not spans_processes(group):
        return tensor
    if sizes is None:
        sizes = gather_sizes(tensor.shape[0], tensor.device, group)
    largest = max(sizes)
    padded = tensor.contiguous()
    if tensor.shape[0] != largest:
        padded = tensor.new_zeros((largest, *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded, group=group)
    if all(size == largest for size in sizes):
        return torch.cat(parts)
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


def gather_objects(item: Any, group: Group = None) -> list[Any]:
    """Every rank's ``item`` in rank order (tensors and plain Python values). Items travel as
    ``torch.save`` bytes and are read back with ``weights_only=True``, so no code is unpickled."""
    if not spans_processes(group):
        return [item]
    buffer = io.BytesIO()
    torch.save(item, buffer)
    gathered: list[Any] = [None] * world_size(group)
    dist.all_gather_object(gathered, buffer.getvalue(), group=group)
    return [torch.load(io.BytesIO(data), weights_only=True) for data in gathered]


def resolve_device(
    preference: str, local_rank: int = 0, *, setting: str = "device"
) -> torch.device:
    """The device a process computes on: ``cpu``; ``cuda`` (CUDA device ``local_rank``, which must
    exist); ``cuda:N`` (that device); or ``auto`` (CUDA device ``local_rank`` when CUDA is
    available, else CPU). ``setting`` names the option in the error message (e.g. ``run.device``)."""
    kind, colon, index = preference.partition(":")
    if kind == "cuda" and colon and index.isdigit():
        if int(index) >= torch.cuda.device_count():
            raise UserInputError(
                f"{setting} is {preference!r} but {torch.cuda.device_count()} CUDA devices are "
                "visible; use auto, cpu or an existing cuda:N"
            )
        return torch.device("cuda", int(index))
    if preference not in ("auto", "cpu", "cuda"):
        raise UserInputError(f"{setting} is {preference!r}; use auto, cpu, cuda or cuda:N")
    if preference == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"{setting} is 'cuda' but no CUDA device is visible; use auto or cpu")
    if preference == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)
