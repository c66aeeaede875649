"""The registered training objectives: UniCL and the paper's two image-only baselines.

* `unicl`:  `UniCLLoss` between image and text features, labels from TargetM.
* `ce`:     a linear classifier over the class ids on the (unnormalised) image features;
            image-text samples (`CAPTION_CLASS_ID`) are ignored.
* `supcon`: SupCon over two augmented views of every image, gathered across processes.

Each scores the step with a loss from `unicl.objective` (cross-entropy from PyTorch); see
`TrainingObjective` for the contract of each method. A new objective is one more registered class
here (or anywhere imported before the config is read) and its loss function in `unicl.objective`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from unicl import process_group
from unicl.errors import UserInputError
from unicl.objective import CAPTION_CLASS_ID, BatchGather, UniCLLoss, supcon_loss
from unicl.process_group import Group
from unicl.train.config import ObjectiveConfig
from unicl.train.objective_registry import (
    Augment,
    Encoded,
    StepInputs,
    TrainingObjective,
    register_objective,
)


@register_objective("unicl")
class UniCLObjective(TrainingObjective):
    """Image and text towers trained with the UniCL loss (tiled by `objective.tile_size`, its
    products at `objective.tile_precision`)."""

    def __init__(
        self,
        model: nn.Module,
        config: ObjectiveConfig,
        *,
        num_classes: int | None = None,
        group: Group = None,
    ) -> None:
        super().__init__(model, config, num_classes=num_classes, group=group)
        # the loop agrees on finiteness once per step, so the criterion does not check again
        self.criterion = UniCLLoss(
            tile_size=config.tile_size,
            group=group,
            tile_precision=config.tile_precision,
            check_finite=False,
        )

    def prepare(self, batch, augment: Augment, device: torch.device) -> StepInputs:
        return {
            "images": augment(batch.images.to(device, non_blocking=True), batch.class_ids),
            "tokens": self._tokens(batch).to(device, non_blocking=True),
            "labels": batch.labels.to(device, non_blocking=True),
        }

    def _tokens(self, batch) -> torch.Tensor:
        """The stream's tokens when its workers made them, else the texts tokenised here."""
        return batch.tokens if batch.tokens is not None else self.model.tokenize(batch.texts)

    def forward(self, inputs: StepInputs) -> Encoded:
        images, texts, scale = self.model(inputs["images"], inputs["tokens"])
        return (images, texts), (scale,)

    def loss(self, features, shared, inputs: StepInputs) -> torch.Tensor:
        """`UniCLLoss`: this rank's rows against the gathered batch, weighted so that the mean
        over ranks is the global-batch loss."""
        images, texts = features
        return self.criterion(images, texts, inputs["labels"], shared[0])

    def after_step(self) -> None:
        """Clamp the logit scale to the model's range."""
        self.model.clamp_logit_scale_()

    def chance_loss(self, global_batch: int) -> float:
        """`ln B`: a uniform row of `B` probabilities scores `-sum_j t_j ln(1/B) = ln B` against
        any target distribution `t`, in both directions."""
        return math.log(global_batch)


@register_objective("ce")
class CrossEntropyObjective(TrainingObjective):
    """The image tower plus a linear head over the classes (`objective.num_classes`, else those
    of the training sources), trained with cross-entropy."""

    trains_text_tower = False

    def __init__(
        self,
        model: nn.Module,
        config: ObjectiveConfig,
        *,
        num_classes: int | None = None,
        group: Group = None,
    ) -> None:
        super().__init__(model, config, num_classes=num_classes, group=group)
        classes = config.num_classes or num_classes
        if classes is None:
            raise UserInputError(
                "objective 'ce' needs the number of classes: set objective.num_classes"
            )
        self.head = nn.Linear(model.embed_dim, classes)

    def prepare(self, batch, augment: Augment, device: torch.device) -> StepInputs:
        return {
            "images": augment(batch.images.to(device, non_blocking=True), batch.class_ids),
            "class_ids": batch.class_ids.to(device, non_blocking=True),
        }

    def forward(self, inputs: StepInputs) -> Encoded:
        return (self.head(self.model.encode_image(inputs["images"])),), ()

    def loss(self, features, shared, inputs: StepInputs) -> torch.Tensor:
        """Mean cross-entropy over the image-label samples of the global batch (image-text
        samples are ignored): each rank returns `W * sum_local / count_global`, which DDP's
        gradient averaging turns into the gradient of the global mean."""
        (logits,) = features
        targets = inputs["class_ids"]
        count = process_group.sum_over_ranks((targets != CAPTION_CLASS_ID).sum(), self.group)
        total = F.cross_entropy(
            logits.float(), targets, ignore_index=CAPTION_CLASS_ID, reduction="sum"
        )
        return total * process_group.world_size(self.group) / count.clamp(min=1)

    def chance_loss(self, global_batch: int) -> float:
        """`ln C` for the head's `C` classes."""
        return math.log(self.head.out_features)


@register_objective("supcon")
class SupConObjective(TrainingObjective):
    """The image tower trained with SupCon on two augmented views per image, at
    `objective.temperature`."""

    trains_text_tower = False

    def __init__(
        self,
        model: nn.Module,
        config: ObjectiveConfig,
        *,
        num_classes: int | None = None,
        group: Group = None,
    ) -> None:
        super().__init__(model, config, num_classes=num_classes, group=group)
        self.temperature = config.temperature
        self.gather = BatchGather(group)

    def prepare(self, batch, augment: Augment, device: torch.device) -> StepInputs:
        images = batch.images.to(device, non_blocking=True)
        return {
            "views": torch.stack(
                [augment(images, batch.class_ids), augment(images, batch.class_ids)], dim=1
            ),
            "labels": batch.labels.to(device, non_blocking=True),
        }

    def forward(self, inputs: StepInputs) -> Encoded:
        views = inputs["views"]
        features = self.model.encode_image(views.flatten(0, 1), normalize=True)
        return (features.unflatten(0, views.shape[:2]),), ()

    def loss(self, features, shared, inputs: StepInputs) -> torch.Tensor:
        """Every rank computes SupCon over the gathered global batch; the gather's backward
        sums the ranks' gradients and DDP averages them: the global-batch gradient."""
        (views,) = features
        labels, sizes = self.gather.labels(inputs["labels"])
        views = self.gather.rows(views, sizes)
        return supcon_loss(views.flatten(0, 1), labels.repeat_interleave(2), self.temperature)

    def chance_loss(self, global_batch: int) -> float:
        """`ln(2B - 1)`: each of the `2B` views against the `2B - 1` others."""
        return math.log(2 * global_batch - 1)
