"""The UniCL objective: bidirectional contrastive loss with label-defined positives.

With ``s_ij = logit_scale * <u_i, v_j>`` over a batch of images ``u`` and texts ``v`` (L2-normalised)
and ``P(i) = {k : y_k = y_i}``::

    L_i2t = mean_i [ -1/|P(i)| * sum_{k in P(i)} log softmax_j(s_i.)[k] ]
    L_t2i = mean_j [ -1/|P(j)| * sum_{k in P(j)} log softmax_i(s_.j)[k] ]
    L     = (L_i2t + L_t2i) / 2

Because ``-log softmax(s_i.)[k] = lse_i - s_ik``, each row's term is ``lse_i - mean_{k in P(i)} s_ik``,
and the mean over positives is ``logit_scale * <u_i, mean_{k in P(i)} v_k>``: only the log-sum-exp
needs the ``B x B`` matrix; the positives cost ``O(B * D)`` through per-label feature sums.

Connections (the paper's Sec. 3.2):

* all labels distinct: ``P(i) = {i}`` and ``L`` is exactly CLIP's symmetric cross-entropy
  ``(CE(S, arange) + CE(S.T, arange)) / 2`` (OpenCLIP's ``ClipLoss``);
* texts that are class prompts: the text-to-image term is cross-entropy with the text embeddings as
  the classifier weights;
* like SupCon, every sample with the query's label contributes to the numerator as a positive.

Mixed images (mixup, cutmix; ``LabelMix``): image ``i`` is ``w_i`` of label ``y_i`` and
``1 - w_i`` of ``y'_i`` (``m_i(c)``), texts are never mixed. The targets become the mixed label
distributions: row ``i`` spreads ``w_i`` uniformly over ``P(y_i)`` and ``1 - w_i`` over
``P(y'_i)``; column ``j`` weighs image ``i`` by ``m_i(y_j)``::

    pos_i2t(i) = w_i * mean_{k in P(y_i)} s_ik + (1 - w_i) * mean_{k in P(y'_i)} s_ik
    pos_t2i(j) = sum_i m_i(y_j) s_ij / sum_i m_i(y_j)

With every ``w_i = 1`` this is the loss above. Both stay ``O(B * D)`` (``objective.positives``).

Across the ``W`` processes of a group (:class:`UniCLLoss`), rank ``r`` holds ``b_r`` samples of a
global batch of ``N = sum_r b_r``. It gathers every rank's features (with gradients) and labels and
computes the terms of its own rows against all ``N`` columns, in both directions::

    loss_r = W / N * sum_{i local} ( (lse_i2t(i) - pos_i2t(i)) + (lse_t2i(i) - pos_t2i(i)) ) / 2

so ``mean_r loss_r`` is the global-batch ``L``, memory is ``O(b_r * N)`` (``O(b_r * tile_size)``
tiled), and no rank computes another rank's rows. The gather's backward (``objective.gather``) gives
rank ``r``'s parameters ``d(sum_s loss_s)/d(theta)`` through its own samples; DDP's average over
ranks makes that ``d(mean_s loss_s)/d(theta)``: exactly the gradient of one process computing
:func:`unicl_loss` on the global batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from unicl import process_group
from unicl.objective.gather import BatchGather
from unicl.objective.logsumexp import dense_logsumexp, tiled_logsumexp
from unicl.objective.positives import LabelGroups, Memberships, label_sums, positive_logits
from unicl.objective.targets import LabelMix
from unicl.objective.tiles import TILE_PRECISIONS
from unicl.objective.validation import all_finite, raise_if_not_finite, validate_inputs
from unicl.process_group import Group


def unicl_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    labels: torch.Tensor,
    logit_scale: torch.Tensor | float,
    *,
    tile_size: int | None = None,
    tile_precision: str = "fp32",
    tile_compile: bool = False,
    check_finite: bool = True,
    mix: LabelMix | None = None,
) -> torch.Tensor:
    """The UniCL loss of one batch (see the module docstring for the equations).

    Args:
        image_features: float ``[B, D]``, L2-normalised by the caller.
        text_features: float ``[B, D]``, same dtype and device, L2-normalised.
        labels: int64 ``[B]``; equal labels mark positive pairs (see ``target_labels``).
        logit_scale: the multiplier of the cosine similarities, a scalar tensor such as
            ``model.logit_scale.exp()`` (gradients flow into it) or a number.
        tile_size: compute the log-sum-exp over blocks of this many columns, recomputing them in
            backward: the same value and gradients with ``O(B * tile_size)`` extra memory instead
            of ``O(B**2)``.
        tile_precision: the precision of the tiles' matrix products, ``fp32``, ``tf32`` or
            ``bf16`` (``unicl.objective.logsumexp``); the log-sum-exp accumulates in float32
            whatever it is. The dense form (no ``tile_size``) computes in float32.
        tile_compile: compile each tile's elementwise work into fused kernels
            (``torch.compile``; the same float32 arithmetic, fewer passes over memory: on a GPU
            the tiled loss is bound by them). The first calls pay for compilation.
        check_finite: raise on NaN or infinity in the features or the scale (one host sync);
            False returns a non-finite loss for them instead.
        mix: the labels of mixed images (mixup, cutmix), ``LabelMix``: the targets become the
            mixed label distributions (module docstring, "Mixed images"); None: no image is mixed.

    Returns:
        A float32 scalar, whatever the input dtype (the loss runs in float32 with autocast off).

    Raises:
        ValueError: a shape, dtype or device that does not fit, naming the argument, or a
            non-finite value in the features or the scale (with ``check_finite``).
    """
    images, texts, scale = validate_inputs(
        image_features, text_features, labels, logit_scale, check_finite=check_finite
    )
    if mix is not None:
        mix = mix.validated(labels)
    with float32_region(images.device):
        row_lse, column_lse = similarity_logsumexp(
            images * scale, texts, tile_size, precision=tile_precision, compile=tile_compile
        )
        image_positives, text_positives = unicl_positives(
            images, texts, labels, mix, images, texts, labels, mix, scale
        )
        image_to_text = (row_lse - image_positives).mean()
        text_to_image = (column_lse - text_positives).mean()
        return (image_to_text + text_to_image) / 2


class BatchCriterion(nn.Module):
    """What the batch-wide criteria (`UniCLLoss`, `ClipLoss`, `LabelSigmoidLoss`) are built from:
    the column block ``tile_size`` (None: dense), the ``tile_precision`` of the similarity matrix
    and whether ``tile_compile`` compiles the tiles' elementwise work, the process ``group`` whose ranks share the batch (with its ``gather``), and whether
    ``check_finite`` scans the inputs."""

    def __init__(
        self,
        tile_size: int | None = None,
        group: Group = None,
        *,
        tile_precision: str = "fp32",
        tile_compile: bool = False,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        self.tile_size = checked_tile_size(tile_size)
        self.tile_precision = checked_tile_precision(tile_precision)
        self.tile_compile = tile_compile
        self.group = group
        self.check_finite = check_finite
        self.gather = BatchGather(group)

    def sharded_loss(
        self,
        images: torch.Tensor,
        texts: torch.Tensor,
        scale: torch.Tensor,
        positives: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        sizes: list[int],
    ) -> torch.Tensor:
        """`sharded_contrastive_loss` with this criterion's tiles, group and checks."""
        return sharded_contrastive_loss(
            images,
            texts,
            scale,
            positives,
            gather=self.gather,
            sizes=sizes,
            tile_size=self.tile_size,
            tile_precision=self.tile_precision,
            tile_compile=self.tile_compile,
            check_finite=self.check_finite,
        )

    def extra_repr(self) -> str:
        return (
            f"tile_size={self.tile_size}, tile_precision={self.tile_precision!r}, "
            f"tile_compile={self.tile_compile}"
        )


class UniCLLoss(BatchCriterion):
    """The training criterion: :func:`unicl_loss` on one process, its exact sharded form (the module
    docstring's ``loss_r``) when ``group`` spans several.

    Call it with this rank's ``image_features [b, D]``, ``text_features [b, D]`` (L2-normalised),
    ``labels [b]``, the ``logit_scale`` multiplier and, for mixed images, this rank's ``mix``. ``tile_size`` bounds the extra memory to
    ``O(b * tile_size)`` as in :func:`unicl_loss`, with products at ``tile_precision``. ``group`` is the process group whose ranks share
    the batch (None: the default group when ``torch.distributed`` is initialised). Every rank of
    the group must call it at the same step. The value returned on a rank is ``loss_r``, not the
    global loss: average it over the ranks to log the global value.

    With ``check_finite`` (the default), when any rank's input is not finite every rank raises
    ``ValueError`` together (agreed with one all-reduce, so no rank is left waiting in a
    collective). A caller that checks the loss itself (the training loop agrees on finiteness
    once per step) passes False: a non-finite input then gives a non-finite loss, with no scan,
    collective or host sync spent on it. Across processes a call makes two all-gathers (labels
    with every rank's row count, then image and text features together; see
    :class:`~unicl.objective.gather.BatchGather`) and its backward one reduce-scatter.
    """

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        labels: torch.Tensor,
        logit_scale: torch.Tensor | float,
        mix: LabelMix | None = None,
    ) -> torch.Tensor:
        if not process_group.spans_processes(self.group):
            return unicl_loss(
                image_features,
                text_features,
                labels,
                logit_scale,
                tile_size=self.tile_size,
                tile_precision=self.tile_precision,
                tile_compile=self.tile_compile,
                check_finite=self.check_finite,
                mix=mix,
            )
        images, texts, scale = validate_inputs(
            image_features, text_features, labels, logit_scale, check_finite=False
        )
        all_labels, sizes = self.gather.labels(labels)
        if mix is not None and self.check_finite:
            mix = mix.validated(labels, all_labels)
        all_mix = None if mix is None else gather_mix(mix, self.group, sizes)

        def positives(all_images: torch.Tensor, all_texts: torch.Tensor):
            return unicl_positives(
                images, texts, labels, mix, all_images, all_texts, all_labels, all_mix, scale
            )

        return self.sharded_loss(images, texts, scale, positives, sizes)


def unicl_positives(
    images: torch.Tensor,
    texts: torch.Tensor,
    labels: torch.Tensor,
    mix: LabelMix | None,
    all_images: torch.Tensor,
    all_texts: torch.Tensor,
    all_labels: torch.Tensor,
    all_mix: LabelMix | None,
    scale: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pos_i2t, pos_t2i)`` of the local rows against the whole (gathered) batch: each image's
    mean logit over the texts of its label(s), each text's membership-weighted mean logit over
    the images of its label (``unicl.objective.positives``)."""
    groups = LabelGroups(all_labels)
    all_image_memberships = None if all_mix is None else Memberships(groups, all_labels, all_mix)
    image_positives = positive_logits(
        images, Memberships(groups, labels, mix), *label_sums(all_texts, groups), scale
    )
    text_positives = positive_logits(
        texts,
        Memberships(groups, labels, None),
        *label_sums(all_images, groups, all_image_memberships),
        scale,
    )
    return image_positives, text_positives


def gather_mix(mix: LabelMix, group: Group, sizes: list[int]) -> LabelMix:
    """Every rank's ``LabelMix`` in rank order, in one all-gather: the float32 weights travel as
    the bits of int64 values beside the partner labels."""
    weights = mix.weights.float().double().view(torch.int64)
    both = process_group.gather_rows(
        torch.stack([mix.partner_labels, weights], dim=1), group, sizes
    )
    return LabelMix(both[:, 0].contiguous(), both[:, 1].contiguous().view(torch.float64).float())


def checked_tile_size(tile_size: int | None) -> int | None:
    """``tile_size`` if it is None or a positive integer; ``ValueError`` otherwise."""
    if tile_size is not None and tile_size < 1:
        raise ValueError(f"tile_size must be a positive integer or None, got {tile_size}")
    return tile_size


def sharded_contrastive_loss(
    images: torch.Tensor,
    texts: torch.Tensor,
    scale: torch.Tensor,
    positives: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    *,
    gather: BatchGather,
    sizes: list[int],
    tile_size: int | None,
    tile_precision: str = "fp32",
    tile_compile: bool = False,
    check_finite: bool = True,
) -> torch.Tensor:
    """This rank's share of a bidirectional contrastive loss over the ranks of ``gather.group``::

        loss_r = W / N * sum_{i local} ((lse_i2t(i) - pos_i2t(i)) + (lse_t2i(i) - pos_t2i(i))) / 2

    ``images``, ``texts`` ``[b, D]`` (float32, validated) and ``scale`` are this rank's; every
    rank's rows (``sizes``, from ``gather.labels``) are gathered with gradients in one all-gather
    (``N`` in all; a rank may hold none as long as some rank holds one).
    ``positives(all_images, all_texts)`` returns the positive logits of the local rows,
    ``(pos_i2t [b], pos_t2i [b])``. With ``check_finite`` all ranks first agree that every input
    is finite (else all raise ``ValueError`` together); without it a non-finite input gives a
    non-finite loss.
    """
    group = gather.group
    if check_finite:
        finite = process_group.true_on_all_ranks(all_finite(images, texts, scale), group)
        raise_if_not_finite(images, texts, scale, finite)
    if sum(sizes) == 0:
        raise ValueError("no rank holds a sample: the global batch is empty")
    both = gather.rows(torch.cat([images, texts], dim=1), sizes)
    all_images, all_texts = both.split(images.shape[1], dim=1)
    with float32_region(images.device):
        tiles = {"with_columns": False, "precision": tile_precision, "compile": tile_compile}
        image_lse, _ = similarity_logsumexp(images * scale, all_texts, tile_size, **tiles)
        text_lse, _ = similarity_logsumexp(texts * scale, all_images, tile_size, **tiles)
        image_positives, text_positives = positives(all_images, all_texts)
        total = (image_lse - image_positives).sum() + (text_lse - text_positives).sum()
        return total * (process_group.world_size(group) / all_images.shape[0] / 2)


def checked_tile_precision(tile_precision: str) -> str:
    """``tile_precision`` if it is one of ``TILE_PRECISIONS``; ``ValueError`` otherwise."""
    if tile_precision not in TILE_PRECISIONS:
        raise ValueError(f"tile_precision must be one of {TILE_PRECISIONS}, not {tile_precision!r}")
    return tile_precision


def similarity_logsumexp(
    scaled_queries: torch.Tensor,
    keys: torch.Tensor,
    tile_size: int | None,
    *,
    with_columns: bool = True,
    precision: str = "fp32",
    compile: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Row (and column) log-sum-exp of ``scaled_queries @ keys.T``, dense or tiled (products
    at `precision`, elementwise work compiled with `compile`).

    The logit scale is folded into the queries (``O(M * D)``) rather than applied to the matrix.
    """
    if tile_size is None or tile_size >= keys.shape[0]:
        return dense_logsumexp(scaled_queries, keys, with_columns=with_columns)
    return tiled_logsumexp(
        scaled_queries,
        keys,
        tile_size,
        with_columns=with_columns,
        precision=precision,
        compile_elementwise=compile,
    )


def float32_region(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast off, so the loss's matrix products stay in float32 inside an autocast region."""
    if device.type in ("cpu", "cuda", "xpu", "mps"):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()
