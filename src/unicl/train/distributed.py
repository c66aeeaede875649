"""Process-group set-up from the environment that `torchrun` (or SLURM via torchrun) exports:
`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`. No `--local_rank` flag."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from unicl.errors import UserInputError


@dataclass(frozen=True)
class ProcessContext:
    """Where this process runs: its rank among `world_size` and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes logs, checkpoints and reports."""
        return self.rank == 0


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """`auto` -> this process's CUDA device if there is one, else CPU."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise UserInputError("run.device is 'cuda' but no CUDA device is visible; use auto or cpu")
    if preference == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def init_process(device_preference: str) -> ProcessContext:
    """Join the process group when launched with WORLD_SIZE > 1 (NCCL on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method="env://", device_id=_device_id(device))
    return ProcessContext(rank, world_size, local_rank, device)


def close_process() -> None:
    """Leave the process group (if one was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def _device_id(device: torch.device) -> torch.device | None:
    return device if device.type == "cuda" else None
