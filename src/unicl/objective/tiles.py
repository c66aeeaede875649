"""What the tiled kernels share: the precision of their matrix products, their block gradients,
and the fusion of their elementwise work.

A tiled kernel's matrix products run at a chosen ``precision`` (:data:`TILE_PRECISIONS`): ``fp32``
(float32 products, TF32 only where PyTorch is told to use it for every matmul), ``tf32`` (float32
products at PyTorch's ``"high"`` precision: TF32 tensor cores on NVIDIA GPUs since Ampere, plain
float32 where there are none) or ``bf16`` (inputs rounded to bfloat16, products accumulated and
returned in float32: ``torch.mm(..., out_dtype=torch.float32)`` on CUDA, emulated with the same
rounding on other devices, where it is no faster). Whatever the precision, blocks, exponentials and
the accumulations stay in float32.

Between the products, each block gets elementwise work (shifts, exponentials, row and column
sums): eagerly one pass over the ``[M, n]`` block per operation, which bounds a GPU's speed by
memory traffic rather than arithmetic. With ``compile_elementwise`` it runs through
``torch.compile`` (:func:`compiled`), which fuses each such step into one or two kernels with the
same float32 arithmetic.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

TILE_PRECISIONS = ("fp32", "tf32", "bf16")
"""The precisions of the tiles' matrix products."""

F = TypeVar("F", bound=Callable)


def compiled(function: F, enabled: bool) -> F:
    """`function` (a block's elementwise work), or when `enabled` its ``torch.compile``d form,
    made once per function. Each new block shape compiles on its first call (seconds); after a
    second shape PyTorch compiles one graph for all shapes."""
    return _compile(function) if enabled else function


@functools.cache
def _compile(function: F) -> F:
    return torch.compile(function)


def rounded(tensor: torch.Tensor, precision: str) -> torch.Tensor:
    """The operand a product at `precision` reads: bfloat16 for `bf16`, else `tensor` itself."""
    return tensor.to(torch.bfloat16) if precision == "bf16" else tensor


def product(x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x @ y`` in `dtype` (the caller's float32 or float64). Bfloat16 operands are multiplied
    with `dtype` accumulation and output: in one cuBLAS call on CUDA (PyTorch >= 2.8), or as
    `dtype` copies of the rounded values elsewhere (the same products, exact in float32, and
    sums, at `dtype` speed)."""
    if x.dtype == dtype:
        return x @ y
    if x.is_cuda and dtype == torch.float32:
        try:
            return torch.mm(x, y, out_dtype=dtype)
        except TypeError:  # PyTorch < 2.8 has no mixed-precision mm
            pass
    return x.to(dtype) @ y.to(dtype)


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """PyTorch's float32 matmul precision set to ``"high"`` (TF32 where available) inside for
    `tf32`, left as it is otherwise; restored after."""
    if precision != "tf32":
        yield
        return
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def add_block_gradients(
    weights: torch.Tensor,
    a: torch.Tensor,
    a_in: torch.Tensor,
    b_block: torch.Tensor,
    grad_a: torch.Tensor,
    grad_b_block: torch.Tensor,
    precision: str,
) -> None:
    """One column block's share of a tiled kernel's gradients, with ``G = weights [M, n]``:
    ``grad_a += G @ b_block`` and ``grad_b_block = G.T @ a`` (in place), the products at
    `precision` (``a_in``, ``b_block``: the operands as `rounded` gives them)."""
    if precision == "bf16":
        weights = rounded(weights, precision)
        grad_a += product(weights, b_block, a.dtype)
        grad_b_block.copy_(product(weights.T, a_in, a.dtype))
    else:
        grad_a.addmm_(weights, b_block)
        torch.mm(weights.T, a, out=grad_b_block)
