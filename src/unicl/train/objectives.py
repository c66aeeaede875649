"""The training objectives as small modules that DDP can wrap: UniCL and the paper's baselines.

A task turns a data `Batch` into per-sample step inputs (`prepare`), encodes them (`forward`,
returning per-sample features and shared tensors such as the logit scale), and scores them
(`loss`: UniCL and SupCon from `unicl.objective`, cross-entropy from PyTorch). Splitting
`forward` from `loss` is what lets gradient accumulation cache the features of every micro-batch
(see `unicl.train.accumulation`).

* `unicl`:  `UniCLLoss` between image and text features, labels from TargetM.
* `ce`:     a linear classifier over the class ids on the (unnormalised) image features;
            image-text samples (`CAPTION_CLASS_ID`) are ignored.
* `supcon`: SupCon over two augmented views of every image, gathered across processes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from unicl import process_group
from unicl.errors import UserInputError
from unicl.objective import (
    CAPTION_CLASS_ID,
    UniCLLoss,
    gather_labels,
    gather_with_grad,
    supcon_loss,
)
from unicl.process_group import Group
from unicl.train.accumulation import Tensors
from unicl.train.config import ObjectiveConfig

Encoded = tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]
Augment = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""uint8 images [B,3,h,w] and class ids [B] -> normalised float images (`BatchAugment`)."""


class UniCLTask(nn.Module):
    """Image and text towers trained with the UniCL loss over the ranks of `group`."""

    def __init__(self, model: nn.Module, tile_size: int | None = None, group: Group = None) -> None:
        super().__init__()
        self.model = model
        self.group = group
        self.criterion = UniCLLoss(tile_size=tile_size, group=group)

    def prepare(self, batch, augment: Augment, device: torch.device) -> Tensors:
        return {
            "images": augment(batch.images.to(device, non_blocking=True), batch.class_ids),
            "tokens": self.model.tokenize(batch.texts).to(device, non_blocking=True),
            "labels": batch.labels.to(device, non_blocking=True),
        }

    def forward(self, inputs: Tensors) -> Encoded:
        images, texts, scale = self.model(inputs["images"], inputs["tokens"])
        return (images, texts), (scale,)

    def loss(self, features: tuple[torch.Tensor, ...], shared, inputs: Tensors) -> torch.Tensor:
        images, texts = features
        return self.criterion(images, texts, inputs["labels"], shared[0])

    def after_step(self) -> None:
        self.model.clamp_logit_scale_()


class CrossEntropyTask(nn.Module):
    """The image tower plus a linear head over `num_classes` classes, trained with cross-entropy."""

    def __init__(self, model: nn.Module, num_classes: int, group: Group = None) -> None:
        super().__init__()
        self.model = model
        self.group = group
        self.head = nn.Linear(model.embed_dim, num_classes)

    def prepare(self, batch, augment: Augment, device: torch.device) -> Tensors:
        return {
            "images": augment(batch.images.to(device, non_blocking=True), batch.class_ids),
            "class_ids": batch.class_ids.to(device, non_blocking=True),
        }

    def forward(self, inputs: Tensors) -> Encoded:
        return (self.head(self.model.encode_image(inputs["images"])),), ()

    def loss(self, features: tuple[torch.Tensor, ...], shared, inputs: Tensors) -> torch.Tensor:
        """Mean cross-entropy over the image-label samples of the global batch (image-text
        samples are ignored): each process returns `W * sum_local / count_global`, which DDP's
        gradient averaging turns into the gradient of the global mean."""
        (logits,) = features
        targets = inputs["class_ids"]
        count = process_group.sum_over_ranks((targets != CAPTION_CLASS_ID).sum(), self.group)
        total = F.cross_entropy(
            logits.float(), targets, ignore_index=CAPTION_CLASS_ID, reduction="sum"
        )
        return total * process_group.world_size(self.group) / count.clamp(min=1)

    def after_step(self) -> None:
        """Nothing to constrain."""


class SupConTask(nn.Module):
    """The image tower trained with SupCon on two augmented views per image."""

    def __init__(self, model: nn.Module, temperature: float, group: Group = None) -> None:
        super().__init__()
        self.model = model
        self.group = group
        self.temperature = temperature

    def prepare(self, batch, augment: Augment, device: torch.device) -> Tensors:
        images = batch.images.to(device, non_blocking=True)
        return {
            "views": torch.stack(
                [augment(images, batch.class_ids), augment(images, batch.class_ids)], dim=1
            ),
            "labels": batch.labels.to(device, non_blocking=True),
        }

    def forward(self, inputs: Tensors) -> Encoded:
        views = inputs["views"]
        features = self.model.encode_image(views.flatten(0, 1), normalize=True)
        return (features.unflatten(0, views.shape[:2]),), ()

    def loss(self, features: tuple[torch.Tensor, ...], shared, inputs: Tensors) -> torch.Tensor:
        """Every process computes SupCon over the gathered global batch; the gather's backward
        sums the ranks' gradients and DDP averages them: the global-batch gradient."""
        (views,) = features
        views = gather_with_grad(views, self.group)
        labels = gather_labels(inputs["labels"], self.group)
        return supcon_loss(views.flatten(0, 1), labels.repeat_interleave(2), self.temperature)

    def after_step(self) -> None:
        """Nothing to constrain."""


def build_task(
    model: nn.Module, config: ObjectiveConfig, num_classes: int | None, group: Group
) -> nn.Module:
    """The task module for `config.name` over the ranks of `group`; `num_classes` (the training
    class space) sizes the `ce` head when `config.num_classes` is not set."""
    if config.name == "unicl":
        return UniCLTask(model, config.tile_size, group)
    if config.name == "supcon":
        return SupConTask(model, config.temperature, group)
    classes = config.num_classes or num_classes
    if classes is None:
        raise UserInputError(
            "objective 'ce' needs the number of classes: set objective.num_classes"
        )
    return CrossEntropyTask(model, classes, group)
