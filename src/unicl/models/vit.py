"""Vision Transformer trunks (Dosovitskiy et al. 2021) returning the final-norm class token.

`VisionTransformer(...)(images [B,3,H,W]) -> [B, width]` for any H, W divisible by the patch size:
the learned position embeddings, stored for the `image_size` grid, are resized bicubically to the
input's grid when it differs.

Three options make the family represent CLIP's image tower exactly (OpenAI's `VisionTransformer`,
Hugging Face's `CLIPVisionModel`): `pre_norm=True` adds CLIP's `ln_pre` (a LayerNorm over every
token after the position embeddings, before the blocks), `patch_bias=False` drops the patch
convolution's bias, and `act="quick_gelu"` uses CLIP's activation in the MLPs. The defaults build
the plain ViT, with the same parameters as before these options existed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unicl.models.layers import Activation, Block, drop_path_rates, run_blocks
from unicl.models.registry import register_image_family
from unicl.models.tower import Count, DropRate, ImageSize, ImageTower, Ratio, Span, Width


class VisionTransformer(ImageTower):
    """Patch embedding, class token, learned position embeddings, [pre-norm,] blocks, final norm.

    Parameters (names as in the state dict): `patch_embed` (Conv2d 3 -> width, kernel = stride =
    `patch_size`, bias unless `patch_bias=False`), `cls_token [1, 1, width]`, `pos_embed
    [1, 1 + grid * grid, width]` stored for the `image_size` grid, `norm_pre` (LayerNorm, only
    with `pre_norm=True`), `blocks.N.*` (`layers.Block` with activation `act`), `norm` (the final
    LayerNorm, applied to the class token only).
    """

    def __init__(
        self,
        patch_size: Span = 16,
        width: Width = 768,
        depth: Count = 12,
        heads: Count = 12,
        mlp_ratio: Ratio = 4.0,
        image_size: ImageSize = 224,
        drop_path: DropRate = 0.0,
        act: Activation = "gelu",
        pre_norm: bool = False,
        patch_bias: bool = True,
    ):
        super().__init__(image_size)
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch {patch_size}")
        self.patch_size = patch_size
        self.width = width
        self.patch_embed = nn.Conv2d(3, width, patch_size, patch_size, bias=patch_bias)
        grid = image_size // patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, width) * 0.02)
        self.norm_pre = nn.LayerNorm(width) if pre_norm else nn.Identity()
        self.blocks = nn.ModuleList(
            Block(width, heads, mlp_ratio, rate, act) for rate in drop_path_rates(drop_path, depth)
        )
        self.norm = nn.LayerNorm(width)
        nn.init.normal_(self.cls_token, std=1e-6)

    def _position_embedding(self, grid_h: int, grid_w: int) -> torch.Tensor:
        stored = self.pos_embed[:, 1:]
        side = int(stored.shape[1] ** 0.5)
        if (grid_h, grid_w) == (side, side):
            return self.pos_embed
        grid = stored.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(grid_h, grid_w), mode="bicubic", align_corners=False)
        return torch.cat([self.pos_embed[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image size {h}x{w} is not a multiple of patch {self.patch_size}")
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.norm_pre(x + self._position_embedding(h // self.patch_size, w // self.patch_size))
        x = run_blocks(self.blocks, x, self.grad_checkpointing)
        return self.norm(x[:, 0])

    def no_weight_decay(self) -> set[str]:
        """The position embeddings and the class token."""
        return {"pos_embed", "cls_token"}

    def layer_groups(self) -> list[list[str]]:
        """The patch embedding with the class token, position embeddings and the pre-norm (CLIP's
        `ln_pre`), each block, the final norm."""
        blocks = [f"blocks.{i}" for i in range(len(self.blocks))]
        stem = ("patch_embed", "cls_token", "pos_embed", "norm_pre")
        return self.groups_by_prefix([stem, *blocks, "norm"])


VARIANTS = {
    f"vit-{size}-{patch}": dict(patch_size=patch, width=width, depth=12, heads=heads)
    for size, width, heads in (("ti", 192, 3), ("s", 384, 6), ("b", 768, 12))
    for patch in (16, 32)
}

register_image_family("vit", VisionTransformer, VARIANTS)
