"""The UniCL loss across processes, exact under DDP.

Rank ``r`` holds ``b_r`` samples; the global batch has ``N = sum_r b_r``. Each rank gathers every
rank's features (with gradients) and labels, and computes the loss terms of its own rows against all
``N`` columns, in both directions::

    loss_r = W / N * sum_{i local} ( (lse_i2t(i) - pos_i2t(i)) + (lse_t2i(i) - pos_t2i(i)) ) / 2

so that ``mean_r loss_r`` is the global-batch UniCL loss, memory is ``O(b_r * N)`` (or
``O(b_r * tile_size)`` tiled), and no rank computes another rank's rows.

Gradient semantics: the gather's backward sums, over all ranks, the gradients that each rank's loss
sends to the gathered features, and hands every rank the slice of its own samples. A rank's
parameter gradient is therefore ``d(sum_r loss_r)/d(theta)`` through its own samples; DDP averages
those over ranks, which gives exactly ``d(mean_r loss_r)/d(theta)``: the gradient of one process
computing :func:`unicl_loss` on the global batch. The value returned on a rank is ``loss_r``, not the
global loss; average it over ranks (``all_reduce`` / W) to log the global value.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from unicl.objective.loss import (
    LabelGroups,
    all_finite,
    float32_region,
    positive_logits,
    raise_if_not_finite,
    similarity_logsumexp,
    unicl_loss,
    validate_inputs,
)


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """All ranks' ``[b_r, ...]`` tensors concatenated in rank order, ``[N, ...]``.

    Ranks may hold different ``b_r``. Gradients flow back: each rank receives the sum over all
    ranks of the gradient with respect to its own slice.
    """
    sizes = _gather_sizes(tensor.shape[0], tensor.device)
    return _GatherWithGrad.apply(tensor, sizes)


def gather_labels(labels: torch.Tensor) -> torch.Tensor:
    """All ranks' label tensors concatenated in rank order (no gradient)."""
    sizes = _gather_sizes(labels.shape[0], labels.device)
    return _all_gather_padded(labels.contiguous(), sizes)


class UniCLLoss(nn.Module):
    """The training criterion: :func:`unicl_loss` on one process, the exact sharded form on many.

    Call it with this rank's ``image_features [b, D]``, ``text_features [b, D]`` (L2-normalised),
    ``labels [b]`` and the ``logit_scale`` multiplier. ``tile_size`` bounds the extra memory to
    ``O(b * tile_size)`` as in :func:`unicl_loss`.
    """

    def __init__(self, tile_size: int | None = None) -> None:
        super().__init__()
        if tile_size is not None and tile_size < 1:
            raise ValueError(f"tile_size must be a positive integer or None, got {tile_size}")
        self.tile_size = tile_size

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        labels: torch.Tensor,
        logit_scale: torch.Tensor | float,
    ) -> torch.Tensor:
        if not is_distributed():
            return unicl_loss(
                image_features, text_features, labels, logit_scale, tile_size=self.tile_size
            )
        images, texts, scale = validate_inputs(
            image_features, text_features, labels, logit_scale, check_finite=False
        )
        finite = all_finite(images, texts, scale).to(torch.int32)
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        raise_if_not_finite(images, texts, scale, finite)
        all_images = gather_with_grad(images)
        all_texts = gather_with_grad(texts)
        all_labels = gather_labels(labels)
        with float32_region(images.device):
            image_lse, _ = similarity_logsumexp(
                images * scale, all_texts, self.tile_size, with_columns=False
            )
            text_lse, _ = similarity_logsumexp(
                texts * scale, all_images, self.tile_size, with_columns=False
            )
            groups = LabelGroups(all_labels)
            local_group = groups.group_of(labels)
            image_terms = image_lse - positive_logits(images, local_group, all_texts, groups, scale)
            text_terms = text_lse - positive_logits(texts, local_group, all_images, groups, scale)
            share = dist.get_world_size() / all_labels.shape[0]
            return (image_terms.sum() + text_terms.sum()) * (share / 2)

    def extra_repr(self) -> str:
        return f"tile_size={self.tile_size}"


def _gather_sizes(local_size: int, device: torch.device) -> list[int]:
    size = torch.tensor([local_size], device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return [int(s) for s in sizes]


def _all_gather_padded(tensor: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    largest = max(sizes)
    padded = tensor.new_zeros((largest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor, sizes):
        ctx.sizes = sizes
        return _all_gather_padded(tensor.contiguous(), sizes)

    @staticmethod
    def backward(ctx, grad_output):
        grad = grad_output.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: dist.get_rank()])
        return grad[start : start + ctx.sizes[dist.get_rank()]], None
