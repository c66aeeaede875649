"""Row sums of softplus over a biased similarity matrix, dense or tiled.

For ``X = A @ B.T + b`` (``A: [M, D]``, ``B: [N, D]``, ``b`` a scalar; callers fold the logit scale
into ``A``) this computes

    row[i] = sum_j softplus(X[i, j])

the only part of the sigmoid loss that needs the whole ``M x N`` matrix. The dense form
materialises ``X`` through autograd. The tiled form walks over blocks of ``n`` columns, keeps only
``[M, n]`` at a time and recomputes each block in backward; with ``G = g_row[:, None] *
sigmoid(X)`` the gradients are ``dA = G @ B``, ``dB = G.T @ A`` and ``db = sum(G)``, accumulated
block by block. The blocks' products run at a ``precision`` of ``unicl.objective.tiles``, whose
``compile_elementwise`` fuses each block's elementwise work; the sums accumulate in the inputs'
dtype (float32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from unicl.objective.tiles import (
    TILE_PRECISIONS,
    add_block_gradients,
    compiled,
    matmul_precision,
    product,
    rounded,
)


def dense_softplus_sums(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``row [M]`` of ``softplus(a @ b.T + bias)``, through autograd."""
    return F.softplus(a @ b.T + bias).sum(dim=1)


def tiled_softplus_sums(
    a: torch.Tensor,
    b: torch.Tensor,
    bias: torch.Tensor,
    tile_size: int,
    precision: str = "fp32",
    compile_elementwise: bool = False,
) -> torch.Tensor:
    """The same as :func:`dense_softplus_sums`, holding at most ``[M, tile_size]`` at a time."""
    if tile_size < 1:
        raise ValueError(f"tile_size must be a positive integer, got {tile_size}")
    if precision not in TILE_PRECISIONS:
        raise ValueError(f"precision must be one of {TILE_PRECISIONS}, got {precision!r}")
    return _TiledSoftplusSums.apply(a, b, bias, tile_size, precision, compile_elementwise)


def block_softplus_sums(block: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``[M]``: the row sums of ``softplus(block + bias)``, in place of `block`."""
    return F.softplus(block.add_(bias)).sum(dim=1)


def sigmoid_weights(
    logits: torch.Tensor, bias: torch.Tensor, grad_rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A block's ``G = g_row[:, None] * sigmoid(logits + bias)``, in place of `logits`, and its
    sum (the block's share of the bias gradient)."""
    weights = logits.add_(bias).sigmoid_().mul_(grad_rows[:, None])
    return weights, weights.sum()


class _TiledSoftplusSums(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, bias, tile_size, precision, compile_elementwise):
        rows = a.new_zeros(a.shape[0])
        a_in, b_in = rounded(a, precision), rounded(b, precision)
        sums = compiled(block_softplus_sums, compile_elementwise)
        with matmul_precision(precision):
            for start in range(0, b.shape[0], tile_size):
                block = product(a_in, b_in[start : start + tile_size].T, a.dtype)
                rows += sums(block, bias)
                del block
        ctx.save_for_backward(a, b, bias)
        ctx.tile_size = tile_size
        ctx.precision = precision
        ctx.compile_elementwise = compile_elementwise
        return rows

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_rows):
        a, b, bias = ctx.saved_tensors
        precision = ctx.precision
        a_in, b_in = rounded(a, precision), rounded(b, precision)
        grad_a = torch.zeros_like(a)
        grad_b = torch.empty_like(b)
        grad_bias = a.new_zeros(())
        weigh = compiled(sigmoid_weights, ctx.compile_elementwise)
        with matmul_precision(precision):
            for start in range(0, b.shape[0], ctx.tile_size):
                stop = start + ctx.tile_size
                b_block = b_in[start:stop]
                weights, total = weigh(product(a_in, b_block.T, a.dtype), bias, grad_rows)
                grad_bias += total
                add_block_gradients(
                    weights, a, a_in, b_block, grad_a, grad_b[start:stop], precision
                )
        return grad_a, grad_b, grad_bias.reshape(bias.shape), None, None, None
