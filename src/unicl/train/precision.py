"""Numeric precision of training: fp32, bf16 autocast (CPU or CUDA), fp16 autocast with a
dynamic gradient scaler (CUDA)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from unicl.errors import UserInputError


@dataclass
class Precision:
    """`autocast()` opens the forward region; `scaler` scales losses (a disabled scaler, whose
    methods pass through, unless fp16)."""

    autocast: Callable[[], contextlib.AbstractContextManager]
    scaler: torch.amp.GradScaler


def build_precision(name: str, device: torch.device) -> Precision:
    """The autocast region and gradient scaler for `name` in {fp32, bf16, fp16} on `device`."""
    if name == "fp16" and device.type != "cuda":
        raise UserInputError(
            f"run.precision 'fp16' needs a CUDA device, not {device.type}; use bf16 or fp32"
        )
    if name == "fp32":
        autocast = contextlib.nullcontext
    else:
        dtype = torch.bfloat16 if name == "bf16" else torch.float16
        autocast = functools.partial(torch.autocast, device_type=device.type, dtype=dtype)
    scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")
    return Precision(autocast, scaler)
