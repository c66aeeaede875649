"""Transforms: `BatchAugment` (training, kornia, on the device), `EvalTransform` (evaluation) and
`TrainTransform` (the training pipeline for one image).

Defaults follow CLIP's normalisation; pass the model's `image_mean` / `image_std`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import kornia.augmentation as K
import torch
from kornia.augmentation.auto import RandAugment
from kornia.augmentation.auto.rand_augment.rand_augment import default_policy
from PIL import Image
from torch import nn

from unicl.constants import CLIP_MEAN, CLIP_STD
from unicl.data.images import fit_square, to_rgb
from unicl.data.mixing import MixUpCutMix
from unicl.objective import CAPTION_CLASS_ID


class BatchAugment(nn.Module):
    """uint8 [B,3,h,w] -> normalised float [B,3,S,S] on the images' device.

    Random resized crop to `image_size` (area fraction `scale`, aspect `ratio`), colour jitter
    (brightness/contrast/saturation `jitter`, hue `hue`, applied with probability `jitter_p`),
    horizontal flip with probability `flip_p` for image-label samples only (a caption may name a
    side: "arrow pointing left"), RandAugment when `randaugment` is given (`{n: operations,
    m: magnitude}` on timm's 0-10 scale, `rand-m9-n2` = `{n: 2, m: 9}`; kornia's operations with
    timm's geometric magnitudes, on every sample), then `(x / 255 - mean) / std`. In `eval()` mode it only resizes and
    normalises.

    `mix(images, class_ids)` then mixes the normalised batch: mixup / cutmix of image-label
    samples with Beta alphas `mixup` / `cutmix` (0 = off), probability `mix_prob` per batch and
    `mix_switch_prob` for cutmix when both are on (see `unicl.data.mixing`).
    """

    def __init__(
        self,
        image_size: int,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        *,
        scale: tuple[float, float] = (0.5, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        jitter: float = 0.4,
        hue: float = 0.0,
        jitter_p: float = 0.8,
        flip_p: float = 0.5,
        randaugment: Mapping[str, float] | None = None,
        mixup: float = 0.0,
        cutmix: float = 0.0,
        mix_prob: float = 1.0,
        mix_switch_prob: float = 0.5,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.flip_p = flip_p
        self.crop = K.RandomResizedCrop((image_size, image_size), scale=scale, ratio=ratio)
        self.jitter = K.ColorJitter(jitter, jitter, jitter, hue, p=jitter_p)
        self.randaugment = None if randaugment is None else _rand_augment(randaugment)
        self.normalize = K.Normalize(torch.tensor(mean), torch.tensor(std))
        self.mixer = MixUpCutMix(mixup, cutmix, mix_prob, mix_switch_prob)

    def forward(self, images: torch.Tensor, class_ids: torch.Tensor | None = None) -> torch.Tensor:
        """images uint8 [B,3,h,w]; class_ids int64 [B] (`CAPTION_CLASS_ID` = image-text, never flipped)."""
        x = images.float().div_(255)
        if not self.training:
            if x.shape[-2:] != (self.image_size, self.image_size):
                x = nn.functional.interpolate(
                    x, size=(self.image_size,) * 2, mode="bilinear", antialias=True
                )
            return self.normalize(x)
        x = self.jitter(self.crop(x))
        flip = torch.rand(len(x), device=x.device) < self.flip_p
        if class_ids is not None:
            flip &= class_ids.to(x.device, non_blocking=True) != CAPTION_CLASS_ID
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if self.randaugment is not None:
            x = self.randaugment(x)
        return self.normalize(x)

    @property
    def mixes(self) -> bool:
        """True when mixup or cutmix is configured (alpha > 0)."""
        return self.mixer.enabled

    def mix(
        self, images: torch.Tensor, class_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mixed images [B,3,S,S], partner int64 [B], weight float32 [B]) of the normalised
        `images` that `forward` returned: row i = weight_i * image i + (1 - weight_i) * image
        partner_i (mixup) or image i with a box of image partner_i covering a 1 - weight_i share
        (cutmix). Image-text rows and unmixed batches: partner_i = i, weight 1; so is every row
        in `eval()` mode or when neither mixup nor cutmix is on."""
        if self.training and self.mixes:
            return self.mixer(images, class_ids)
        rows = torch.arange(len(images), device=images.device)
        return images, rows, torch.ones(len(images), device=images.device)


def _rand_augment(spec: Mapping[str, float]) -> RandAugment:
    """kornia's RandAugment from `{n, m}`, `m` on timm's scale (0-10; kornia's is 0-30)."""
    if not isinstance(spec, Mapping) or set(spec) != {"n", "m"}:
        raise ValueError(
            f"randaugment should be {{n: operations, m: magnitude 0-10}}, got {spec!r}"
        )
    n, m = spec["n"], spec["m"]
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"randaugment.n should be a whole number of operations, got {n!r}")
    if isinstance(m, bool) or not isinstance(m, int | float) or not 0 < m < 10:
        raise ValueError(
            f"randaugment.m should be a magnitude in (0, 10) (timm's scale), got {m!r}"
        )
    return RandAugment(n=n, m=3 * m, policy=_timm_geometry(m))


def _timm_geometry(m: float) -> list:
    """kornia's default operations, with timm's shear and translation at magnitude `m`.

    timm shears by the factor `0.3 m / 10` and translates by `0.45 m / 10` of the side. kornia
    maps a range `r` to `r m / 10` and reads a shear as `180 r m / 10` degrees (at m = 9 its
    default 0.3 is a 48.6 degree shear, tan = 1.13, against timm's 0.27): so shear gets the `r`
    that gives `atan(0.03 m)` degrees at this `m`, translation `r = 0.45`.
    """
    shear = math.degrees(math.atan(0.03 * m)) / (18 * m)
    ranges = {"shear_x": shear, "shear_y": shear, "translate_x": 0.45, "translate_y": 0.45}
    policy = []
    for [(name, low, high)] in default_policy:
        low, high = (-ranges[name], ranges[name]) if name in ranges else (low, high)
        policy.append([(name, low, high)])
    return policy


class EvalTransform:
    """PIL image -> normalised float [3,S,S]: resize the shorter side to S, centre crop (bicubic).

    Images that are not RGB are converted (`images.to_rgb`: transparent pixels over white).
    Deterministic: the same image always gives the same tensor.
    """

    def __init__(
        self, image_size: int, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD
    ) -> None:
        self.image_size = image_size
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return (fit_square(to_rgb(image), self.image_size).float() / 255 - self.mean) / self.std


class TrainTransform:
    """PIL image -> augmented, normalised float [3,S,S]: unicl's training pipeline for one image.

    As the training stream does: RGB (`images.to_rgb`), centre crop to a square and resize to S
    (`images.fit_square`), then `BatchAugment(S, mean, std, **augment)` in training mode (random
    resized crop, colour jitter, horizontal flip), here on one image. Random: seed torch to repeat.
    """

    def __init__(
        self,
        image_size: int,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        **augment,
    ) -> None:
        self.image_size = image_size
        self.augment = BatchAugment(image_size, mean, std, **augment).train()

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.augment(fit_square(to_rgb(image), self.image_size)[None])[0]
