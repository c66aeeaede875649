"""Building blocks shared by the transformer encoders: SDPA attention, MLP, pre-norm block, drop-path.

The MLP's nonlinearity is an `Activation`: `gelu` (exact GELU, the default) or `quick_gelu`
(`x * sigmoid(1.702 x)`, the approximation OpenAI's CLIP models were trained with).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention through `F.scaled_dot_product_attention`.

    Input and output `[*batch, N, dim]`. `attn_mask` is an additive float mask broadcastable to
    `[*batch, heads, N, N]`; `is_causal` masks future positions. Leading batch dimensions are
    flattened into one, so SDPA always sees 4-D inputs (which its fused kernels require).
    """

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        batch_shape, (length, dim) = x.shape[:-2], x.shape[-2:]
        qkv = self.qkv(x.reshape(-1, length, dim)).unflatten(-1, (3, self.heads, -1))
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        if attn_mask is not None:
            attn_mask = attn_mask.to(q.dtype).expand(*batch_shape, self.heads, length, length)
            attn_mask = attn_mask.reshape(-1, self.heads, length, length)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
        return self.proj(out.transpose(1, 2).reshape(*batch_shape, length, dim))


Activation = Literal["gelu", "quick_gelu"]
"""The MLP nonlinearity of a transformer family's blocks (a config key of the ViT and text
transformer families)."""


class QuickGELU(nn.Module):
    """CLIP's GELU approximation, `x * sigmoid(1.702 x)` (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "quick_gelu": QuickGELU}


class Mlp(nn.Sequential):
    """Linear -> activation -> Linear with hidden width `int(dim * ratio)`; the activation has no
    parameters, so the state-dict names (`0.*`, `2.*`) are the same for every `act`."""

    def __init__(self, dim: int, ratio: float = 4.0, act: Activation = "gelu"):
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), ACTIVATIONS[act](), nn.Linear(hidden, dim))


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch per sample with probability `p`, rescale the rest."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x)); `[*batch, N, dim]`.

    `norm_eps` is the LayerNorms' epsilon (PyTorch's 1e-5 by default)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        act: Activation = "gelu",
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, mlp_ratio, act)
        self.drop_path = DropPath(drop_path)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), attn_mask=attn_mask, is_causal=is_causal))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def run_blocks(
    blocks: nn.ModuleList, x: torch.Tensor, checkpointing: bool, **kwargs
) -> torch.Tensor:
    """Apply `blocks` in order, recomputing each in the backward pass when `checkpointing`."""
    for block in blocks:
        if checkpointing and torch.is_grad_enabled():
            x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False, **kwargs)
        else:
            x = block(x, **kwargs)
    return x


def drop_path_rates(total: float, depth: int) -> list[float]:
    """Stochastic-depth rates rising linearly from 0 to `total` over `depth` blocks."""
    return [total * i / max(depth - 1, 1) for i in range(depth)]
