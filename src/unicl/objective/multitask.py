"""The paper's multi-task baseline: cross-entropy on the image-label samples of a batch plus the
CLIP loss on its image-text samples.

With class logits ``z_i`` (a linear head on sample ``i``'s image embedding), class ids ``y_i``
(``y_i >= 0`` for an image-label sample, ``CAPTION_CLASS_ID`` for an image-text pair), the sets
``C = {i : y_i >= 0}`` and ``T = {i : y_i = CAPTION_CLASS_ID}`` and L2-normalised image and text
features ``u``, ``v``::

    CE   = mean_{i in C} -log softmax(z_i)[y_i]                  (0 when C is empty)
    CLIP = clip_loss(u_T, v_T, logit_scale)                      (0 when T is empty)
    L    = CE + w * CLIP

``w`` (``clip_weight``) is 1 by default: the two losses are summed, as in the paper's baseline.
Each task sees only its own samples: the head never meets a caption, the contrastive term never
meets a class prompt, so the two tasks share the image tower and nothing else.

Across the ``W`` ranks of a group (:class:`MultiTaskLoss`) rank ``r`` returns::

    loss_r = W * sum_{i in C_r} ce_i / |C| + w * clip_r

where ``|C|`` counts the image-label samples of all ranks and ``clip_r`` is :class:`ClipLoss`'s
share over the image-text samples of all ranks (a rank may hold none). ``mean_r loss_r`` is the
global-batch ``L``, and the gradient averaged by DDP is the global-batch gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unicl import process_group
from unicl.objective.clip_baseline import ClipLoss, clip_loss
from unicl.objective.targets import CAPTION_CLASS_ID
from unicl.objective.validation import validate_inputs
from unicl.process_group import Group


def multitask_loss(
    class_logits: torch.Tensor,
    class_ids: torch.Tensor,
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor | float,
    *,
    clip_weight: float = 1.0,
    tile_size: int | None = None,
    tile_precision: str = "fp32",
    tile_compile: bool = False,
) -> torch.Tensor:
    """``CE + clip_weight * CLIP`` of one batch (module docstring).

    Args:
        class_logits: float ``[B, C]``, the head's logits of every sample (those of image-text
            samples are ignored).
        class_ids: int64 ``[B]``, a class in ``[0, C)`` or ``CAPTION_CLASS_ID``.
        image_features, text_features: float ``[B, D]``, L2-normalised (the texts of image-label
            samples are ignored).
        logit_scale: the multiplier of the CLIP term's cosine similarities.
        clip_weight: ``w``.
        tile_size, tile_precision, tile_compile: the CLIP term's tiles, as in ``clip_loss``.

    Returns:
        A float32 scalar.
    """
    images, texts, scale = validate_inputs(image_features, text_features, class_ids, logit_scale)
    pairs = _validated_pairs(class_logits, class_ids)
    labelled = int((~pairs).sum())
    classification = _cross_entropy_sum(class_logits, class_ids) / max(labelled, 1)
    if bool(pairs.any()):
        contrastive = clip_loss(
            images[pairs],
            texts[pairs],
            scale,
            tile_size=tile_size,
            tile_precision=tile_precision,
            tile_compile=tile_compile,
        )
    else:
        contrastive = scale * 0.0
    return classification + clip_weight * contrastive


class MultiTaskLoss(nn.Module):
    """:func:`multitask_loss` on one process, its exact sharded form (``loss_r`` of the module
    docstring) when ``group`` spans several. Called with this rank's rows; every rank of
    ``group`` must call it at the same step. The value on a rank is its share: average it over
    the ranks to log the global loss."""

    def __init__(
        self,
        clip_weight: float = 1.0,
        tile_size: int | None = None,
        group: Group = None,
        *,
        tile_precision: str = "fp32",
        tile_compile: bool = False,
    ) -> None:
        super().__init__()
        if not clip_weight >= 0:
            raise ValueError(f"clip_weight must be >= 0, got {clip_weight}")
        self.clip_weight = clip_weight
        self.clip = ClipLoss(
            tile_size=tile_size,
            group=group,
            tile_precision=tile_precision,
            tile_compile=tile_compile,
        )
        self.group = group

    def forward(
        self,
        class_logits: torch.Tensor,
        class_ids: torch.Tensor,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor | float,
    ) -> torch.Tensor:
        if not process_group.spans_processes(self.group):
            return multitask_loss(
                class_logits,
                class_ids,
                image_features,
                text_features,
                logit_scale,
                clip_weight=self.clip_weight,
                tile_size=self.clip.tile_size,
                tile_precision=self.clip.tile_precision,
                tile_compile=self.clip.tile_compile,
            )
        images, texts, scale = validate_inputs(
            image_features, text_features, class_ids, logit_scale, check_finite=False
        )
        pairs = _validated_pairs(class_logits, class_ids)
        classification = labelled_cross_entropy(class_logits, class_ids, self.group)
        [any_pairs] = process_group.flags_on_any_rank([pairs.any()], pairs.device, self.group)
        # with no pair on any rank the scale stays in the graph (DDP expects its gradient)
        contrastive = self.clip(images[pairs], texts[pairs], scale) if any_pairs else scale * 0.0
        return classification + self.clip_weight * contrastive

    def extra_repr(self) -> str:
        return f"clip_weight={self.clip_weight}"


def _validated_pairs(class_logits: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
    """The mask of image-text samples, after checking the logits against the class ids."""
    if not isinstance(class_logits, torch.Tensor) or class_logits.dim() != 2:
        raise ValueError("class_logits must be a 2-D tensor [B, C]")
    if class_logits.shape[0] != class_ids.shape[0]:
        raise ValueError(
            f"class_logits has {class_logits.shape[0]} rows but class_ids has {class_ids.shape[0]}"
        )
    if class_ids.numel() and not (
        int(class_ids.min()) >= CAPTION_CLASS_ID and int(class_ids.max()) < class_logits.shape[1]
    ):
        raise ValueError(
            f"class_ids must be in [0, {class_logits.shape[1]}) or {CAPTION_CLASS_ID} (image-text)"
        )
    return class_ids == CAPTION_CLASS_ID


def labelled_cross_entropy(
    class_logits: torch.Tensor, class_ids: torch.Tensor, group: Group = None
) -> torch.Tensor:
    """The mean cross-entropy over the image-label samples (``class_ids >= 0``) of the global
    batch, as this rank's share ``W * sum_{i in C_r} ce_i / |C|`` (``|C|`` over all ranks of
    ``group``; 0 when no rank has one): the mean over ranks is the global mean, and DDP's
    averaged gradient its gradient. Image-text rows (``CAPTION_CLASS_ID``) are ignored."""
    count = process_group.sum_over_ranks((class_ids != CAPTION_CLASS_ID).sum(), group)
    share = process_group.world_size(group) / count.clamp(min=1)
    return _cross_entropy_sum(class_logits, class_ids) * share


def _cross_entropy_sum(class_logits: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
    """``sum_{i in C} -log softmax(z_i)[y_i]`` in float32 (image-text rows contribute nothing)."""
    return F.cross_entropy(
        class_logits.float(), class_ids, ignore_index=CAPTION_CLASS_ID, reduction="sum"
    )
