"""Label-aware mixup and cutmix of a training batch (timm's "batch" mode, image-label rows only).

One draw per batch: the batch is mixed with probability `prob`; then cutmix (probability
`switch_prob` when both are on) or mixup, with `lam ~ Beta(alpha, alpha)` of the chosen one. A
uniformly random permutation of the image-label rows gives each its partner `p(i)`:

    mixup:  x'_i = lam * x_i + (1 - lam) * x_p(i),            weight_i = lam
    cutmix: x'_i = x_i with the box B of x_p(i) pasted,        weight_i = 1 - |B| / (H * W)

The box has sides `floor(H * sqrt(1 - lam))` x `floor(W * sqrt(1 - lam))` around a uniform centre
and is clipped to the image, so `weight` is the exact share of x_i's own pixels. Image-text rows
(`class_ids == CAPTION_CLASS_ID`) are never mixed and never partners: `p(i) = i`, weight 1; so
are all rows of a batch that the `prob` draw leaves unmixed. Every number comes from torch's
generator on the images' device and nothing waits for the device (no `.item()`).
"""

from __future__ import annotations

import torch

from unicl.objective import CAPTION_CLASS_ID


class MixUpCutMix:
    """`(images [B,C,H,W] float, class_ids [B]) -> (mixed, partner int64 [B], weight float32 [B])`.

    `mixup` / `cutmix`: Beta alphas (0 = off); `prob`: chance a batch is mixed at all;
    `switch_prob`: chance of cutmix instead of mixup when both are on.
    """

    def __init__(
        self, mixup: float, cutmix: float, prob: float = 1.0, switch_prob: float = 0.5
    ) -> None:
        for name, value in (("mixup", mixup), ("cutmix", cutmix)):
            if not value >= 0:
                raise ValueError(f"{name} should be a Beta alpha >= 0 (0 = off), got {value!r}")
        for name, value in (("mix_prob", prob), ("mix_switch_prob", switch_prob)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} should be a probability in [0, 1], got {value!r}")
        self.mixup = float(mixup)
        self.cutmix = float(cutmix)
        self.prob = float(prob)
        self.switch_prob = float(switch_prob)

    @property
    def enabled(self) -> bool:
        return self.mixup > 0 or self.cutmix > 0

    def __call__(
        self, images: torch.Tensor, class_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        device = images.device
        labelled = class_ids.to(device, non_blocking=True) != CAPTION_CLASS_ID
        mixed = labelled & (torch.rand((), device=device) < self.prob)
        rows = torch.arange(len(images), device=device)
        partner = torch.where(mixed, _partners(labelled), rows)
        cut, lam = self._draw(device)
        inside = _box(lam, images.shape[-2:], device)
        cut_weight = 1 - inside.sum() / inside.numel()
        coefficient = torch.where(cut, inside.to(lam.dtype), 1 - lam)  # share taken from partner
        coefficient = coefficient * mixed[:, None, None, None]
        out = torch.lerp(images, images[partner], coefficient.to(images.dtype))
        weight = torch.where(mixed, torch.where(cut, cut_weight, lam), 1.0)
        return out, partner, weight.float()

    def _draw(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(cutmix rather than mixup: bool [], lam: float [] ~ Beta of the chosen one)."""
        if self.mixup > 0 and self.cutmix > 0:
            cut = torch.rand((), device=device) < self.switch_prob
        else:
            cut = torch.full((), self.cutmix > 0, device=device)
        alpha = torch.where(cut, self.cutmix, self.mixup)
        return cut, torch.distributions.Beta(alpha, alpha, validate_args=False).sample()


def _partners(labelled: torch.Tensor) -> torch.Tensor:
    """A uniformly random permutation of the rows where `labelled` holds (others map to rows
    that are not labelled). Two independent random orders with the unlabelled rows sorted last:
    the k-th labelled row of the first order is paired with the k-th of the second."""
    keys = torch.rand(2, len(labelled), device=labelled.device).masked_fill(~labelled, 2.0)
    first, second = keys.argsort(dim=1)
    return torch.empty_like(first).scatter_(0, first, second)


def _box(lam: torch.Tensor, size: torch.Size, device: torch.device) -> torch.Tensor:
    """bool [H,W]: a box of sides floor(side * sqrt(1 - lam)) around a uniform centre, clipped."""
    ratio = (1 - lam).clamp(min=0).sqrt()
    inside = []
    for side in size:
        length = (side * ratio).long()
        centre = torch.randint(side, (), device=device)
        start = centre - torch.div(length, 2, rounding_mode="floor")
        axis = torch.arange(side, device=device)
        inside.append((axis >= start) & (axis < start + length))  # clipped to the image
    return inside[0][:, None] & inside[1][None, :]
