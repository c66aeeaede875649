"""Swin Transformer trunks (Liu et al. 2021) returning average-pooled final-norm features.

`SwinTransformer(...)(images [B,3,H,W]) -> [B, width]` for any input of at least one patch: feature
maps are zero-padded to whole windows and even sizes before merging, and a stage whose map is no
larger than the window attends over the whole map without shifting (as the official code does).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unicl.models.layers import Attention, DropPath, Mlp, drop_path_rates, run_blocks
from unicl.models.registry import register_image_family
from unicl.models.tower import Count, DropRate, ImageSize, ImageTower, Ratio, Span, Width

MASKED = -100.0


def relative_position_index(window: int, table_window: int, device: torch.device) -> torch.Tensor:
    """Index `[N, N]` (N = window**2) into a `(2*table_window-1)**2` bias table, for window <= table."""
    coords = torch.stack(
        torch.meshgrid(
            torch.arange(window, device=device), torch.arange(window, device=device), indexing="ij"
        )
    ).flatten(1)
    relative = coords[:, :, None] - coords[:, None, :] + table_window - 1
    return relative[0] * (2 * table_window - 1) + relative[1]


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """`[B, H, W, C]` -> `[B, (H/w)*(W/w), w*w, C]`."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).transpose(2, 3)
    return x.reshape(b, -1, window * window, c)


def window_merge(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `window_partition`: `[B, nW, w*w, C]` -> `[B, H, W, C]`."""
    b, c = windows.shape[0], windows.shape[-1]
    x = windows.view(b, h // window, w // window, window, window, c).transpose(2, 3)
    return x.reshape(b, h, w, c)


def shifted_window_mask(h: int, w: int, window: int, shift: int, device) -> torch.Tensor:
    """Additive mask `[nW, 1, N, N]` keeping attention within regions that were adjacent pre-roll."""
    regions = torch.zeros(1, h, w, 1, device=device)
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for label, (rows, cols) in enumerate((r, c) for r in bounds for c in bounds):
        regions[:, rows, cols] = label
    ids = window_partition(regions, window)[0, :, :, 0]
    return torch.where(ids[:, :, None] == ids[:, None, :], 0.0, MASKED).unsqueeze(1)


class SwinBlock(nn.Module):
    """(Shifted-)window attention with relative position bias, then an MLP; `[B, H, W, C]`."""

    def __init__(self, dim, heads, window, shifted, mlp_ratio=4.0, drop_path=0.0):
        super().__init__()
        self.window, self.shifted = window, shifted
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.relative_position_bias = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias, std=0.02)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h, w, _ = x.shape
        window = min(self.window, h, w)
        shift = window // 2 if self.shifted and min(h, w) > self.window else 0
        pad_h, pad_w = (-h) % window, (-w) % window
        y = F.pad(self.norm1(x), (0, 0, 0, pad_w, 0, pad_h))
        if shift:
            y = torch.roll(y, (-shift, -shift), dims=(1, 2))
        index = relative_position_index(window, self.window, x.device)
        mask = self.relative_position_bias[index].permute(2, 0, 1)
        if shift:
            mask = mask + shifted_window_mask(h + pad_h, w + pad_w, window, shift, x.device)
        y = self.attn(window_partition(y, window), attn_mask=mask)
        y = window_merge(y, window, h + pad_h, w + pad_w)
        if shift:
            y = torch.roll(y, (shift, shift), dims=(1, 2))
        x = x + self.drop_path(y[:, :h, :w])
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 neighbourhood concat -> LayerNorm -> linear 4C -> 2C; `[B,H,W,C]` -> `[B,H/2,W/2,2C]`."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[1:3]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class SwinTransformer(ImageTower):
    """Patch embedding, stages of Swin blocks separated by patch merging, final norm, mean pool.

    Any input size works (see the module docstring), so `image_size` is only recorded.
    """

    def __init__(
        self,
        embed_dim: Width = 96,
        depths: Sequence[Count] = (2, 2, 6, 2),
        heads: Sequence[Count] = (3, 6, 12, 24),
        window: Span = 7,
        patch_size: Span = 4,
        mlp_ratio: Ratio = 4.0,
        drop_path: DropRate = 0.0,
        image_size: ImageSize = 224,
    ):
        super().__init__(image_size)
        self.patch_size = patch_size
        self.patch_embed = nn.Conv2d(3, embed_dim, patch_size, patch_size)
        self.patch_norm = nn.LayerNorm(embed_dim)
        rates = iter(drop_path_rates(drop_path, sum(depths)))
        self.stages, self.merges = nn.ModuleList(), nn.ModuleList()
        dim = embed_dim
        for index, (depth, n_heads) in enumerate(zip(depths, heads, strict=True)):
            self.stages.append(
                nn.ModuleList(
                    SwinBlock(dim, n_heads, window, i % 2 == 1, mlp_ratio, next(rates))
                    for i in range(depth)
                )
            )
            if index < len(depths) - 1:
                self.merges.append(PatchMerging(dim))
                dim *= 2
        self.norm = nn.LayerNorm(dim)
        self.width = dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        pad = (0, (-w) % self.patch_size, 0, (-h) % self.patch_size)
        x = self.patch_norm(self.patch_embed(F.pad(images, pad)).permute(0, 2, 3, 1))
        for index, blocks in enumerate(self.stages):
            x = run_blocks(blocks, x, self.grad_checkpointing)
            if index < len(self.merges):
                x = self.merges[index](x)
        return self.norm(x).mean(dim=(1, 2))

    def no_weight_decay(self) -> set[str]:
        """Every block's relative-position bias table."""
        return {
            f"{name}.relative_position_bias"
            for name, module in self.named_modules()
            if isinstance(module, SwinBlock)
        }

    def layer_groups(self) -> list[list[str]]:
        """The patch embedding and its norm, then each stage's blocks followed by the patch
        merging after it, then the final norm."""
        groups: list[str | tuple[str, ...]] = [("patch_embed", "patch_norm")]
        for s, blocks in enumerate(self.stages):
            groups += [f"stages.{s}.{b}" for b in range(len(blocks))]
            groups += [f"merges.{s}"] if s < len(self.merges) else []
        return self.groups_by_prefix([*groups, "norm"])


VARIANTS = {
    "swin-t": dict(embed_dim=96, depths=[2, 2, 6, 2], heads=[3, 6, 12, 24], drop_path=0.2),
    "swin-s": dict(embed_dim=96, depths=[2, 2, 18, 2], heads=[3, 6, 12, 24], drop_path=0.3),
    "swin-b": dict(embed_dim=128, depths=[2, 2, 18, 2], heads=[4, 8, 16, 32], drop_path=0.5),
}

register_image_family("swin", SwinTransformer, VARIANTS)
