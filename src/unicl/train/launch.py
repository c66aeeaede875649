"""Joining and leaving the process group of a training run.

`torchrun` (or SLURM through torchrun) exports `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`
and `MASTER_PORT`; with `WORLD_SIZE > 1` the process joins the default group from them (NCCL on
CUDA, gloo on CPU). There is no `--local_rank` flag. Questions about the group once it exists
(rank, size, agreement) are answered by `unicl.process_group`.
"""

from __future__ import annotations

import atexit
import datetime
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from unicl import process_group
from unicl.process_group import Group


@dataclass(frozen=True)
class ProcessContext:
    """Where this process trains: its `device`, its CUDA `local_rank` on the node, and the process
    `group` whose ranks share every global batch (None: the default group, if initialised)."""

    device: torch.device
    local_rank: int = 0
    group: Group = None

    @property
    def rank(self) -> int:
        """This process's rank in `group` (0 on one process)."""
        return process_group.rank(self.group)

    @property
    def world_size(self) -> int:
        """The number of processes in `group` (1 on one process)."""
        return process_group.world_size(self.group)

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes logs, checkpoints and reports."""
        return self.rank == 0


def init_process(device_preference: str, timeout_minutes: float = 30.0) -> ProcessContext:
    """This process's context; joins the default group when launched with `WORLD_SIZE > 1`.
    `device_preference` is `run.device` (`auto`, `cpu` or `cuda`); `timeout_minutes`
    (`run.timeout_minutes`) is how long a collective waits for the other ranks before failing."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = process_group.resolve_device(device_preference, local_rank, setting="run.device")
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        device_id = device if device.type == "cuda" else None
        dist.init_process_group(
            backend,
            init_method="env://",
            device_id=device_id,
            timeout=datetime.timedelta(minutes=timeout_minutes),
        )
        atexit.register(_close_before_exit)
    return ProcessContext(device=device, local_rank=local_rank)


def _close_before_exit() -> None:
    """Free what still holds the process group (a DDP module in a reference cycle) and leave the
    group while the interpreter is whole. Left to interpreter finalization, gloo's threads can
    abort the process (SIGABRT, "terminate called without an active exception") after a run that
    succeeded."""
    gc.collect()
    close_process()
    gc.collect()


def close_process() -> None:
    """Leave the default group (if one was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()
