"""The registered training objectives: UniCL and the paper's baselines.

* `unicl`:     `UniCLLoss` between image and text features, labels from TargetM.
* `unicl-sigmoid`: `LabelSigmoidLoss` (SigLIP's pairwise sigmoid loss with TargetM's positives)
               between the same features, with a learned logit bias.
* `clip`:      `ClipLoss` between image and text features, labels ignored: every sample is its
               own positive, class prompts and captions alike (same-class pairs are negatives).
* `multitask`: a linear classifier with cross-entropy on the image-label samples plus `ClipLoss`
               on the image-text samples, `L = CE + objective.clip_weight * CLIP` (`MultiTaskLoss`).
* `ce`:        a linear classifier over the class ids on the (unnormalised) image features;
               image-text samples (`CAPTION_CLASS_ID`) are ignored.
* `supcon`:    SupCon over two augmented views of every image, gathered across processes.

Each scores the step with a loss from `unicl.objective`; see `TrainingObjective` for the contract
of each method. A new objective is one more registered class here (or anywhere imported before
the config is read) and its loss function in `unicl.objective`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from unicl.errors import UserInputError
from unicl.objective import (
    BatchGather,
    ClipLoss,
    LabelMix,
    LabelSigmoidLoss,
    MultiTaskLoss,
    UniCLLoss,
    labelled_cross_entropy,
    supcon_loss,
)
from unicl.objective.sigmoid import (
    INIT_SIGMOID_LOGIT_BIAS,
    INIT_SIGMOID_LOGIT_SCALE,
    sigmoid_chance_loss,
)
from unicl.process_group import Group
from unicl.train.config import ObjectiveConfig
from unicl.train.objective_registry import (
    Augment,
    Encoded,
    StepInputs,
    TrainingObjective,
    register_objective,
)


def step_mix(inputs: StepInputs) -> LabelMix | None:
    """The `LabelMix` of a step whose images `prepare` mixed, else None."""
    if "mix_labels" not in inputs:
        return None
    return LabelMix(inputs["mix_labels"], inputs["mix_weights"])


def batch_tokens(model: nn.Module, batch) -> torch.Tensor:
    """The stream's tokens when its workers made them, else the texts tokenised here."""
    return batch.tokens if batch.tokens is not None else model.tokenize(batch.texts)


class DualEncoderObjective(TrainingObjective):
    """What `unicl`, `unicl-sigmoid` and `clip` share: every sample's image against its text
    (class prompt or caption), both towers encoded and normalised, the logit scale clamped after
    each step. With mixup or cutmix on (`data.augment`), `unicl` and `unicl-sigmoid` mix the
    image-label samples (`BatchAugment.mix`) and score them against their mixed labels
    (`LabelMix`: `mix_labels`, `mix_weights` in the step inputs)."""

    mixes_images = True
    criterion_class: type[nn.Module]
    """The loss module, built with `objective.tile_size`, `tile_precision` and `tile_compile`
    over `group`."""

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
        self.criterion = self.criterion_class(
            tile_size=config.tile_size,
            group=group,
            tile_precision=config.tile_precision,
            tile_compile=bool(config.tile_compile),
            check_finite=False,
        )

    def prepare(self, batch, augment: Augment, device: torch.device) -> StepInputs:
        images = augment(batch.images.to(device, non_blocking=True), batch.class_ids)
        labels = batch.labels.to(device, non_blocking=True)
        inputs = {
            "images": images,
            "tokens": batch_tokens(self.model, batch).to(device, non_blocking=True),
            "labels": labels,
        }
        if self.mixes_images and getattr(augment, "mixes", False):
            class_ids = batch.class_ids.to(device, non_blocking=True)
            inputs["images"], partner, inputs["mix_weights"] = augment.mix(images, class_ids)
            inputs["mix_labels"] = labels[partner]
        return inputs

    def forward(self, inputs: StepInputs) -> Encoded:
        images, texts, scale, *bias = self.model(inputs["images"], inputs["tokens"])
        return (images, texts), (scale, *bias)

    def after_step(self) -> None:
        """Clamp the logit scale to the model's range."""
        self.model.clamp_logit_scale_()

    def chance_loss(self, global_batch: int) -> float:
        """`ln B`: a uniform row of `B` probabilities scores `-sum_j t_j ln(1/B) = ln B` against
        any target distribution `t`, in both directions."""
        return math.log(global_batch)


@register_objective("unicl")
class UniCLObjective(DualEncoderObjective):
    """Image and text towers trained with the UniCL loss (tiled by `objective.tile_size`, its
    products at `objective.tile_precision`)."""

    criterion_class = UniCLLoss

    def loss(self, features, shared, inputs: StepInputs) -> torch.Tensor:
        """`UniCLLoss`: this rank's rows against the gathered batch, weighted so that the mean
        over ranks is the global-batch loss."""
        images, texts = features
        return self.criterion(images, texts, inputs["labels"], shared[0], step_mix(inputs))


@register_objective("unicl-sigmoid")
class LabelSigmoidObjective(DualEncoderObjective):
    """Image and text towers trained with the label-aware sigmoid loss (`LabelSigmoidLoss`:
    every image-text pair a binary decision, positive when their TargetM labels agree; tiled by
    `objective.tile_size`). A model without a `logit_bias` gets one here, at SigLIP's
    `b = -10`, and its scale restarts at CLIP's `t = 1/0.07` (`INIT_SIGMOID_LOGIT_SCALE`); a
    model that has one (resumed, or trained this way before) keeps its bias and scale."""

    criterion_class = LabelSigmoidLoss

    def __init__(
        self,
        model: nn.Module,
        config: ObjectiveConfig,
        *,
        num_classes: int | None = None,
        group: Group = None,
    ) -> None:
        super().__init__(model, config, num_classes=num_classes, group=group)
        if model.logit_bias is None:
            model.add_logit_bias(INIT_SIGMOID_LOGIT_BIAS, INIT_SIGMOID_LOGIT_SCALE)

    def loss(self, features, shared, inputs: StepInputs) -> torch.Tensor:
        """`LabelSigmoidLoss`: this rank's images against the gathered texts, weighted so that
        the mean over ranks is the global-batch loss."""
        images, texts = features
        scale, bias = shared
        return self.criterion(images, texts, inputs["labels"], scale, bias, step_mix(inputs))

    def chance_loss(self, global_batch: int) -> float | None:
        """`B * H(p)`: every logit one constant at its best value, `p` the last batch's share
        of positive pairs (`sigmoid_chance_loss`); None before the first step."""
        share = self.criterion.positive_share
        return None if share is None else sigmoid_chance_loss(global_batch, float(share))


@register_objective("clip")
class ClipObjective(DualEncoderObjective):
    """The paper's CLIP baseline: image and text towers trained with the CLIP loss on the same
    data as `unicl` (tiled by `objective.tile_size`), the TargetM labels ignored (so it has no
    targets for mixed images: mixup and cutmix are refused)."""

    mixes_images = False
    criterion_class = ClipLoss

    def loss(self, features, shared, inputs: StepInputs) -> torch.Tensor:
        """`ClipLoss`: as `unicl`'s, with image `i` and text `i` the only positive pair."""
        images, texts = features
        return self.criterion(images, texts, shared[0])


@register_objective("multitask")
class MultiTaskObjective(TrainingObjective):
    """The paper's multi-task baseline: a linear head over the classes (`objective.num_classes`,
    else those of the training sources) on the image embedding, trained with cross-entropy on the
    image-label samples, plus the CLIP loss between the towers on the image-text samples, weighted
    by `objective.clip_weight` (1: summed).

    Both towers are trained, so the saved model is a full dual encoder; its text tower has met
    captions only, never a class prompt. The head is trained and checkpointed (`head.weight`,
    `head.bias` in the checkpoint's `objective`), not part of the saved model."""

    def __init__(
        self,
        model: nn.Module,
        config: ObjectiveConfig,
        *,
        num_classes: int | None = None,
        group: Group = None,
    ) -> None:
        super().__init__(model, config, num_classes=num_classes, group=group)
        self.head = nn.Linear(model.embed_dim, class_count("multitask", config, num_classes))
        self.criterion = MultiTaskLoss(
            clip_weight=config.clip_weight,
            tile_size=config.tile_size,
            group=group,
            tile_precision=config.tile_precision,
            tile_compile=bool(config.tile_compile),
        )

    def prepare(self, batch, augment: Augment, device: torch.device) -> StepInputs:
        return {
            "images": augment(batch.images.to(device, non_blocking=True), batch.class_ids),
            "tokens": batch_tokens(self.model, batch).to(device, non_blocking=True),
            "class_ids": batch.class_ids.to(device, non_blocking=True),
        }

    def forward(self, inputs: StepInputs) -> Encoded:
        """Every sample's class logits and normalised image and text embeddings. The class
        prompts of image-label samples are encoded too, though the loss ignores them: so every
        rank builds the same autograd graph whatever its mix of samples, and the collectives of
        the backward (the gathers', DDP's) come in the same order on every rank."""
        embedded = self.model.encode_image(inputs["images"])
        texts = self.model.encode_text(inputs["tokens"], normalize=True)
        images = F.normalize(embedded, dim=-1)
        return (self.head(embedded), images, texts), (self.model.logit_scale.exp(),)

    def loss(self, features, shared, inputs: StepInputs) -> torch.Tensor:
        """`MultiTaskLoss`: this rank's share of `CE + w * CLIP` over the global batch."""
        logits, images, texts = features
        return self.criterion(logits, inputs["class_ids"], images, texts, shared[0])

    def after_step(self) -> None:
        """Clamp the logit scale to the model's range."""
        self.model.clamp_logit_scale_()


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
        self.head = nn.Linear(model.embed_dim, class_count("ce", config, num_classes))

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
        return labelled_cross_entropy(logits, inputs["class_ids"], self.group)

    def chance_loss(self, global_batch: int) -> float:
        """`ln C` for the head's `C` classes."""
        return math.log(self.head.out_features)


def class_count(objective: str, config: ObjectiveConfig, num_classes: int | None) -> int:
    """The size of an objective's classifier head: `objective.num_classes`, else the number of
    classes of the training sources; `UserInputError` when neither gives at least one class."""
    classes = config.num_classes or num_classes
    if not classes:
        raise UserInputError(
            f"objective {objective!r} needs image-label data: the training sources have no "
            "classes; add an image-label source or set objective.num_classes"
        )
    return classes


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
