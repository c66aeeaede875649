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

The tiled form's matrix products run at a chosen ``precision``, and its elementwise work on each
block can be compiled into fused kernels (``compile_elementwise``; ``unicl.objective.tiles``).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from unicl.objective.tiles import (
    TILE_PRECISIONS,
    add_block_gradients,
    compiled,
    matmul_precision,
    product,
    rounded,
)


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
    compile_elementwise: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The same as :func:`dense_logsumexp`, holding at most ``[M, tile_size]`` at a time, with
    the matrix products at ``precision`` (one of :data:`TILE_PRECISIONS`) and, with
    ``compile_elementwise``, each block's elementwise work compiled (``torch.compile``)."""
    if tile_size < 1:
        raise ValueError(f"tile_size must be a positive integer, got {tile_size}")
    if precision not in TILE_PRECISIONS:
        raise ValueError(f"precision must be one of {TILE_PRECISIONS}, got {precision!r}")
    row_lse, col_lse = _TiledLogSumExp.apply(
        a, b, tile_size, with_columns, precision, compile_elementwise
    )
    return row_lse, (col_lse if with_columns else None)


def block_logsumexp(
    block: torch.Tensor, with_columns: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A block's row log-sum-exp ``[M]`` and, `with_columns`, its column log-sum-exp ``[n]``."""
    rows = torch.logsumexp(block, dim=1)
    return rows, (torch.logsumexp(block, dim=0) if with_columns else None)


def softmax_weights(
    logits: torch.Tensor,
    row_lse: torch.Tensor,
    grad_row: torch.Tensor,
    col_lse: torch.Tensor | None,
    grad_col: torch.Tensor | None,
) -> torch.Tensor:
    """A block's ``G = g_row[:, None] * softmax_rows + g_col[None, :] * softmax_cols`` (the
    column term only with `col_lse`), computed in place of `logits`."""
    column_weights = None
    if col_lse is not None:
        column_weights = torch.sub(logits, col_lse[None, :]).exp_().mul_(grad_col[None, :])
    weights = logits.sub_(row_lse[:, None]).exp_().mul_(grad_row[:, None])
    return weights if column_weights is None else weights.add_(column_weights)


class _TiledLogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, tile_size, with_columns, precision, compile_elementwise):
        row_parts = []
        col_lse = a.new_empty(b.shape[0] if with_columns else 0)
        a_in, b_in = rounded(a, precision), rounded(b, precision)
        sums = compiled(block_logsumexp, compile_elementwise)
        with matmul_precision(precision):
            for start in range(0, b.shape[0], tile_size):
                block = product(a_in, b_in[start : start + tile_size].T, a.dtype)
                rows, columns = sums(block, with_columns)
                row_parts.append(rows)
                if with_columns:
                    col_lse[start : start + tile_size] = columns
                del block
        row_lse = torch.logsumexp(torch.stack(row_parts, dim=1), dim=1)
        ctx.save_for_backward(a, b, row_lse, col_lse)
        ctx.tile_size = tile_size
        ctx.with_columns = with_columns
        ctx.precision = precision
        ctx.compile_elementwise = compile_elementwise
        return row_lse, col_lse

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_row, grad_col):
        a, b, row_lse, col_lse = ctx.saved_tensors
        precision = ctx.precision
        a_in, b_in = rounded(a, precision), rounded(b, precision)
        grad_a = torch.zeros_like(a)
        grad_b = torch.empty_like(b)
        weigh = compiled(softmax_weights, ctx.compile_elementwise)
        with matmul_precision(precision):
            for start in range(0, b.shape[0], ctx.tile_size):
                stop = start + ctx.tile_size
                b_block = b_in[start:stop]
                logits = product(a_in, b_block.T, a.dtype)
                if ctx.with_columns:
                    weights = weigh(
                        logits, row_lse, grad_row, col_lse[start:stop], grad_col[start:stop]
                    )
                else:
                    weights = weigh(logits, row_lse, grad_row, None, None)
                add_block_gradients(
                    weights, a, a_in, b_block, grad_a, grad_b[start:stop], precision
                )
        return grad_a, grad_b, None, None, None, None
