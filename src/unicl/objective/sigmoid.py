"""The label-aware sigmoid loss: SigLIP's pairwise loss (Zhai et al., 2023) with UniCL's positives.

With ``x_ij = t * <u_i, v_j> + b`` over a batch of ``B`` L2-normalised images ``u`` and texts ``v``
(``t`` the logit scale's multiplier, ``b`` a learned bias) and ``z_ij = +1`` when ``y_i = y_j``,
else ``-1``::

    L = -(1/B) * sum_i sum_j log sigmoid(z_ij * x_ij)

Every pair is a binary decision of its own: no normalisation over the batch. Since
``-log sigmoid(z x) = softplus(x) - T x`` with the target ``T = [z = +1]``::

    L = (1/B) * sum_i ( sum_j softplus(x_ij) - sum_j T_ij x_ij )

and the second sum is ``t * <u_i, sum_c m_i(c) S_c> + b * sum_c m_i(c) n_c`` (``S_c``, ``n_c``: the
sum and count of the texts of label ``c``; ``m_i(c) = [c = y_i]``), ``O(B * D)`` in all. Only the
softplus sum needs the ``B x B`` matrix (``objective.softplus_sums``, dense or tiled over
columns). With all labels distinct, ``T`` is the identity and ``L`` is SigLIP's loss exactly.
Mixed images (``LabelMix``) have soft targets, their memberships ``T_ij = m_i(y_j) = w_i [y_j =
y_i] + (1 - w_i) [y_j = y'_i]``, and the same formula holds (binary cross-entropy with soft
targets).

Across the ``W`` ranks of a group (:class:`LabelSigmoidLoss`) rank ``r`` gathers every rank's texts
(with gradients) and labels, but not the images, and scores its ``b_r`` rows::

    loss_r = W / N * sum_{i local} ( sum_{j all} softplus(x_ij) - sum_j T_ij x_ij )

so ``mean_r loss_r`` is the global-batch ``L`` and, through the gather's backward and DDP's
average, the gradient is exactly that of one process on the global batch (as for ``UniCLLoss``).
"""

from __future__ import annotations

import math

import torch

from unicl import process_group
from unicl.objective.loss import (
    BatchCriterion,
    float32_region,
)
from unicl.objective.positives import LabelGroups, Memberships, label_sums
from unicl.objective.softplus_sums import dense_softplus_sums, tiled_softplus_sums
from unicl.objective.targets import LabelMix
from unicl.objective.validation import (
    all_finite,
    raise_if_not_finite,
    validate_inputs,
    validated_scalar,
)

INIT_SIGMOID_LOGIT_SCALE = math.log(1 / 0.07)
"""The initial ``log t``: CLIP's ``t = 1/0.07``, not SigLIP's ``t = 10``. SigLIP pairs ``t = 10``
with ``b = -10`` for batches of 32k with one positive a row; a UniCL batch with class labels has
far more positives (5-10% of its pairs on the demo data), and from ``t = 10, b = -10`` a positive
pair's logit stays below 0 until its cosine nears 1. Measured (docs/experiments.md): from the
pretrained ``unicl-lite`` 77.6% -> 82.8% zero-shot, from scratch 85.5% -> 86.0% (two seeds), with
mixup/cutmix 70.1% -> 75.9%."""
INIT_SIGMOID_LOGIT_BIAS = -10.0
"""SigLIP's initial ``b``: every pair starts as a confident negative, as most pairs are."""


def label_sigmoid_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    labels: torch.Tensor,
    logit_scale: torch.Tensor | float,
    logit_bias: torch.Tensor | float,
    *,
    tile_size: int | None = None,
    tile_precision: str = "fp32",
    tile_compile: bool = False,
    check_finite: bool = True,
    mix: LabelMix | None = None,
) -> torch.Tensor:
    """The label-aware sigmoid loss of one batch (module docstring).

    Arguments as in ``unicl_loss`` (float ``[B, D]`` L2-normalised features, int64 ``[B]``
    TargetM labels, the ``logit_scale`` multiplier, ``tile_size``, ``tile_precision``,
    ``tile_compile``, ``check_finite``, ``mix``), plus ``logit_bias``, the bias ``b`` (a scalar tensor such as
    ``model.logit_bias``, gradients flow into it, or a number). Returns a float32 scalar;
    ``ValueError`` naming the argument for input that does not fit.
    """
    images, texts, scale = validate_inputs(
        image_features, text_features, labels, logit_scale, check_finite=check_finite
    )
    bias = validated_scalar(logit_bias, images.device, "logit_bias")
    if check_finite:
        raise_if_bias_not_finite(bias)
    if mix is not None:
        mix = mix.validated(labels)
    with float32_region(images.device):
        softplus = softplus_sums(
            images * scale, texts, bias, tile_size, tile_precision, tile_compile
        )
        targets = target_logit_sums(images, labels, mix, texts, LabelGroups(labels), scale, bias)
        return (softplus - targets).mean()


class LabelSigmoidLoss(BatchCriterion):
    """:func:`label_sigmoid_loss` on one process, its exact sharded form (``loss_r`` of the
    module docstring) when ``group`` spans several.

    Called with this rank's features ``[b, D]``, ``labels [b]``, the ``logit_scale`` multiplier,
    the ``logit_bias`` and, for mixed images, ``mix``. The value on a rank is its share
    ``loss_r`` (average over the ranks to log the global loss); every rank of ``group`` must call
    it at the same step. Across processes a call makes two all-gathers (labels with the row
    counts, then the texts; a third for ``mix``) and its backward one reduce-scatter. With
    ``check_finite``, non-finite input on any rank makes every rank raise ``ValueError`` together;
    without it the loss is non-finite. ``positive_share`` holds the last call's share of positive
    pairs in the global batch, ``mean_ij T_ij`` (a 0-d tensor, read by the health monitor).
    """

    positive_share: torch.Tensor | None = None

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        labels: torch.Tensor,
        logit_scale: torch.Tensor | float,
        logit_bias: torch.Tensor | float,
        mix: LabelMix | None = None,
    ) -> torch.Tensor:
        images, texts, scale = validate_inputs(
            image_features, text_features, labels, logit_scale, check_finite=False
        )
        bias = validated_scalar(logit_bias, images.device, "logit_bias")
        if self.check_finite:
            finite = all_finite(images, texts, scale) & torch.isfinite(bias)
            if not process_group.true_on_all_ranks(finite, self.group):
                raise_if_bias_not_finite(bias)
                raise_if_not_finite(images, texts, scale, False)
        all_labels, sizes = self.gather.labels(labels)
        if mix is not None and self.check_finite:
            mix = mix.validated(labels, all_labels)
        if sum(sizes) == 0:
            raise ValueError("no rank holds a sample: the global batch is empty")
        all_texts = self.gather.rows(texts, sizes)
        with float32_region(images.device):
            softplus = softplus_sums(
                images * scale,
                all_texts,
                bias,
                self.tile_size,
                self.tile_precision,
                self.tile_compile,
            )
            groups = LabelGroups(all_labels)
            targets = target_logit_sums(images, labels, mix, all_texts, groups, scale, bias)
            total = (softplus - targets).sum()
        self.positive_share = positive_share(all_labels, groups)
        return total * (process_group.world_size(self.group) / all_texts.shape[0])


def softplus_sums(
    scaled_images: torch.Tensor,
    texts: torch.Tensor,
    bias: torch.Tensor,
    tile_size: int | None,
    precision: str,
    compile: bool,
) -> torch.Tensor:
    """``sum_j softplus(x_ij)`` per image row, dense or tiled over ``tile_size`` columns (products
    at `precision`, elementwise work compiled with `compile`)."""
    if tile_size is None or tile_size >= texts.shape[0]:
        return dense_softplus_sums(scaled_images, texts, bias)
    return tiled_softplus_sums(scaled_images, texts, bias, tile_size, precision, compile)


def target_logit_sums(
    images: torch.Tensor,
    labels: torch.Tensor,
    mix: LabelMix | None,
    all_texts: torch.Tensor,
    groups: LabelGroups,
    scale: torch.Tensor,
    bias: torch.Tensor,
) -> torch.Tensor:
    """``sum_j T_ij x_ij`` for each local image ``i`` against all texts ``j`` (grouped by their
    labels, ``groups``): ``t <u_i, sum_c m_i(c) S_c> + b sum_c m_i(c) n_c``."""
    sums, counts = label_sums(all_texts, groups)
    memberships = Memberships(groups, labels, mix)
    dots = (images * memberships.pick(sums)).sum(dim=1)
    return scale * dots + bias * memberships.pick(counts)


def positive_share(all_labels: torch.Tensor, groups: LabelGroups | None = None) -> torch.Tensor:
    """The share of positive pairs in the global batch by its labels, ``sum_c n_c^2 / N^2`` (a
    0-d tensor, the same on every rank, no collective; mixing moves it little and is left out).
    ``groups``: the labels' ``LabelGroups`` when the caller has them."""
    sizes = (groups or LabelGroups(all_labels)).sizes.float()
    return (sizes**2).sum() / float(all_labels.numel()) ** 2


def sigmoid_chance_loss(global_batch: int, positive_share: float) -> float:
    """The loss when every logit is the same constant, at its best value (``sigmoid(x) = p``,
    ``p`` the share of positive pairs): ``B * H(p)``, ``H`` the binary entropy in nats."""
    p = min(max(positive_share, 1e-12), 1 - 1e-12)
    return global_batch * -(p * math.log(p) + (1 - p) * math.log(1 - p))


def raise_if_bias_not_finite(bias: torch.Tensor) -> None:
    """``ValueError`` when the bias is NaN or infinite (one host sync)."""
    if not bool(torch.isfinite(bias)):
        raise ValueError(f"logit_bias is not finite: {bias.item()}")
