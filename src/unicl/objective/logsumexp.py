"""Log-sum-exp over the rows and columns of a similarity matrix, dense or tiled.

For ``S = A @ B.T`` (``A: [M, D]``, ``B: [N, D]``; callers fold the logit scale into ``A``, which
costs ``O(M * D)`` instead of a pass over ``M x N``) this computes

    row_lse[i] = log sum_j exp(S[i, j])        col_lse[j] = log sum_i exp(S[i, j])

These are the only parts of the contrastive loss that need the whole ``M x N`` matrix. The dense
form materialises ``S`` (and autograd keeps ``M x N`` softmaxes for backward). The tiled form walks
over blocks of ``n`` columns, keeps only ``[M, n]`` at a time and recomputes each block in backward,
so its extra memory is ``O(M * n)``; with

    G = g_row[:, None] * softmax_rows(S) + g_col[None, :] * softmax_cols(S)

the gradients are ``dA = G @ B`` and ``dB = G.T @ A``, accumulated block by block. Values and
gradients equal the dense form's up to float rounding.

The tiled form's matrix products run at a chosen ``precision`` (:data:`TILE_PRECISIONS`): ``fp32``
(float32 products, TF32 only where PyTorch is told to use it for every matmul), ``tf32`` (float32
products at PyTorch's ``"high"`` precision: TF32 tensor cores on NVIDIA GPUs since Ampere, plain
float32 where there are none) or ``bf16`` (inputs rounded to bfloat16, products accumulated and
returned in float32: ``torch.mm(..., out_dtype=torch.float32)`` on CUDA, emulated with the same
rounding on other devices, where it is no faster). Whatever the precision, blocks, exponentials and
the log-sum-exp accumulation stay in float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch.autograd.function import once_differentiable

TILE_PRECISIONS = ("fp32", "tf32", "bf16")
"""The precisions of the tiled form's matrix products (see the module docstring)."""


def dense_logsumexp(
    a: torch.Tensor, b: torch.Tensor, *, with_columns: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(row_lse [M], col_lse [N] or None)`` of ``a @ b.T``, through autograd."""
    logits = a @ b.T
    row_lse = torch.logsumexp(logits, dim=1)
    col_lse = torch.logsumexp(logits, dim=0) if with_columns else None
    return row_lse, col_lse


def tiled_logsumexp(
    a: torch.Tensor,
    b: torch.Tensor,
    tile_size: int,
    *,
    with_columns: bool = True,
    precision: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The same as :func:`dense_logsumexp`, holding at most ``[M, tile_size]`` at a time, with
    the matrix products at ``precision`` (one of :data:`TILE_PRECISIONS`)."""
    if tile_size < 1:
        raise ValueError(f"tile_size must be a positive integer, got {tile_size}")
    if precision not in TILE_PRECISIONS:
        raise ValueError(f"precision must be one of {TILE_PRECISIONS}, got {precision!r}")
    row_lse, col_lse = _TiledLogSumExp.apply(a, b, tile_size, with_columns, precision)
    return row_lse, (col_lse if with_columns else None)


class _TiledLogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, tile_size, with_columns, precision):
        row_parts = []
        col_lse = a.new_empty(b.shape[0] if with_columns else 0)
        a_in, b_in = _rounded(a, precision), _rounded(b, precision)
        with _matmul_precision(precision):
            for start in range(0, b.shape[0], tile_size):
                block = _product(a_in, b_in[start : start + tile_size].T, a.dtype)
                row_parts.append(torch.logsumexp(block, dim=1))
                if with_columns:
                    col_lse[start : start + tile_size] = torch.logsumexp(block, dim=0)
                del block
        row_lse = torch.logsumexp(torch.stack(row_parts, dim=1), dim=1)
        ctx.save_for_backward(a, b, row_lse, col_lse)
        ctx.tile_size = tile_size
        ctx.with_columns = with_columns
        ctx.precision = precision
        return row_lse, col_lse

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_row, grad_col):
        a, b, row_lse, col_lse = ctx.saved_tensors
        precision = ctx.precision
        a_in, b_in = _rounded(a, precision), _rounded(b, precision)
        grad_a = torch.zeros_like(a)
        grad_b = torch.empty_like(b)
        with _matmul_precision(precision):
            for start in range(0, b.shape[0], ctx.tile_size):
                stop = start + ctx.tile_size
                b_block = b_in[start:stop]
                logits = _product(a_in, b_block.T, a.dtype)
                column_weights = None
                if ctx.with_columns:
                    column_weights = torch.sub(logits, col_lse[None, start:stop]).exp_()
                    column_weights.mul_(grad_col[None, start:stop])
                weights = logits.sub_(row_lse[:, None]).exp_().mul_(grad_row[:, None])
                if column_weights is not None:
                    weights.add_(column_weights)
                    del column_weights
                if precision == "bf16":
                    weights = _rounded(weights, precision)
                    grad_a += _product(weights, b_block, a.dtype)
                    grad_b[start:stop] = _product(weights.T, a_in, a.dtype)
                else:
                    grad_a.addmm_(weights, b_block)
                    torch.mm(weights.T, a, out=grad_b[start:stop])
        return grad_a, grad_b, None, None, None


def _rounded(tensor: torch.Tensor, precision: str) -> torch.Tensor:
    """The operand a product at `precision` reads: bfloat16 for `bf16`, else `tensor` itself."""
    return tensor.to(torch.bfloat16) if precision == "bf16" else tensor


def _product(x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
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
def _matmul_precision(precision: str) -> Iterator[None]:
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
