"""ResNet trunks (He et al. 2016, v1.5: stride on the 3x3 conv) returning globally pooled features.

`ResNet(...)(images [B,3,H,W]) -> [B, width]`. `stem="imagenet"` is the 7x7/2 conv + 3x3/2 max-pool
(input divided by 32); `stem="small"` is one 3x3 conv of stride `stem_stride` without pooling, for
28-64 px images (input divided by 8 * stem_stride).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unicl.models.layers import run_blocks
from unicl.models.registry import register_image_family
from unicl.models.tower import Count, ImageSize, ImageTower, Span, Width


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    ]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int):
        super().__init__()
        c_out = width * self.expansion
        self.body = nn.Sequential(
            *_conv_bn(c_in, width, 3, stride), nn.ReLU(inplace=True), *_conv_bn(width, c_out, 3)
        )
        self.shortcut = _shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, with a residual connection (ResNet-50/101)."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int):
        super().__init__()
        c_out = width * self.expansion
        self.body = nn.Sequential(
            *_conv_bn(c_in, width, 1),
            nn.ReLU(inplace=True),
            *_conv_bn(width, width, 3, stride),
            nn.ReLU(inplace=True),
            *_conv_bn(width, c_out, 1),
        )
        self.shortcut = _shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(ImageTower):
    """A ResNet trunk: stem, four stages of residual blocks, global average pooling.

    `layers` blocks per stage, `widths` inner channels per stage; `width` (the pooled feature size)
    is `widths[-1] * expansion`. Stages after the first halve the resolution. Convolutions pool
    any input size, so `image_size` is only recorded. Grad checkpointing recomputes each stage.
    """

    def __init__(
        self,
        layers: Sequence[Count],
        block: str = "bottleneck",
        widths: Sequence[Width] = (64, 128, 256, 512),
        stem: str = "imagenet",
        stem_width: Width = 64,
        stem_stride: Span = 1,
        image_size: ImageSize = 224,
    ):
        super().__init__(image_size)
        if block not in BLOCKS:
            raise ValueError(f"unknown ResNet block {block!r}; choose one of {sorted(BLOCKS)}")
        if stem == "imagenet":
            self.stem = nn.Sequential(
                *_conv_bn(3, stem_width, 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
            )
        elif stem == "small":
            self.stem = nn.Sequential(
                *_conv_bn(3, stem_width, 3, stem_stride), nn.ReLU(inplace=True)
            )
        else:
            raise ValueError(f"unknown ResNet stem {stem!r}; choose 'imagenet' or 'small'")
        block_cls = BLOCKS[block]
        stages, c_in = [], stem_width
        for index, (count, width) in enumerate(zip(layers, widths, strict=True)):
            blocks = []
            for i in range(count):
                stride = 2 if index > 0 and i == 0 else 1
                blocks.append(block_cls(c_in, width, stride))
                c_in = width * block_cls.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.width = c_in
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for module in self.modules():
            if isinstance(module, (BasicBlock, Bottleneck)):
                nn.init.zeros_(module.body[-1].weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return run_blocks(self.stages, self.stem(images), self.grad_checkpointing).mean(dim=(2, 3))

    def no_weight_decay(self) -> set[str]:
        """None: every parameter of two or more dimensions is a convolution kernel."""
        return set()

    def layer_groups(self) -> list[list[str]]:
        """The stem, then every residual block in order (the trunk has no final norm)."""
        blocks = [
            f"stages.{s}.{b}" for s, stage in enumerate(self.stages) for b in range(len(stage))
        ]
        return self.groups_by_prefix(["stem", *blocks])


VARIANTS = {
    "resnet18": dict(layers=[2, 2, 2, 2], block="basic"),
    "resnet50": dict(layers=[3, 4, 6, 3], block="bottleneck"),
    "resnet101": dict(layers=[3, 4, 23, 3], block="bottleneck"),
}

register_image_family("resnet", ResNet, VARIANTS)
