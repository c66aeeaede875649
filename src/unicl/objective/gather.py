"""All-gathers across the ranks of a process group, with gradients for features.

Ranks may hold different numbers of rows ``b_r``; the result concatenates them in rank order,
``N = sum_r b_r`` rows. On a group of one process every gather returns its input.

Gradient of :func:`gather_with_grad`: rank ``r``'s loss ``loss_r`` depends on every rank's rows
through the gathered tensor. The backward sums, over all ranks, the gradients that each rank's loss
sends to the gathered tensor and hands every rank the sum for its own rows (one reduce-scatter), so
rank ``r``'s input receives ``d(sum_s loss_s)/d(rows of r)``. DDP then averages parameter gradients
over the ``W`` ranks, which yields ``d(mean_s loss_s)/d(theta)``.

A loss that gathers every step uses :class:`BatchGather`: the labels' all-gather also carries every
rank's row count, so a step costs two all-gathers (labels with sizes, then all features at once)
and one reduce-scatter in backward, and no collective of its own for the sizes.
"""

from __future__ import annotations

import itertools

import torch
import torch.distributed as dist
from torch.autograd.function import once_differentiable

from unicl import process_group
from unicl.process_group import Group


def gather_with_grad(
    tensor: torch.Tensor, group: Group = None, sizes: list[int] | None = None
) -> torch.Tensor:
    """Every rank's ``[b_r, ...]`` tensor of ``group`` concatenated in rank order, ``[N, ...]``;
    gradients flow back to each rank's own slice (summed over the ranks' losses). ``sizes``: every
    rank's ``b_r`` when the caller knows them (e.g. from :class:`BatchGather`), else gathered."""
    if not process_group.spans_processes(group):
        return tensor
    if sizes is None:
        sizes = process_group.gather_sizes(tensor.shape[0], tensor.device, group)
    return _GatherWithGrad.apply(tensor, sizes, group)


def gather_labels(labels: torch.Tensor, group: Group = None) -> torch.Tensor:
    """Every rank's label tensor of ``group`` concatenated in rank order (no gradient)."""
    return process_group.gather_rows(labels, group)


class BatchGather:
    """The gathers of a loss that runs every step over the ranks of ``group``.

    :meth:`labels` gathers the int64 labels with every rank's row count as a header, padded to
    the largest count of the previous call (every rank keeps the same one, since it comes from the
    gathered headers), so the sizes need no collective of their own; when some rank holds more rows
    than that, all ranks see it in the headers and gather again at the new size. The first call
    gathers the sizes alone. :meth:`rows` then gathers features with gradients at those sizes.
    """

    def __init__(self, group: Group = None) -> None:
        self.group = group
        self.capacity: int | None = None

    def labels(self, labels: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """(every rank's labels in rank order, every rank's row count)."""
        if not process_group.spans_processes(self.group):
            return labels, [labels.shape[0]]
        if self.capacity is None:
            sizes = process_group.gather_sizes(labels.shape[0], labels.device, self.group)
            self.capacity = max(sizes)
        while True:
            payload = labels.new_zeros(1 + self.capacity)
            payload[0] = labels.shape[0]
            kept = labels[: self.capacity]
            payload[1 : 1 + kept.shape[0]] = kept
            parts = [torch.empty_like(payload) for _ in range(process_group.world_size(self.group))]
            dist.all_gather(parts, payload, group=self.group)
            gathered = torch.stack(parts)
            sizes = gathered[:, 0].tolist()
            fits = max(sizes) <= self.capacity
            self.capacity = max(sizes)
            if fits:
                rows = [part[1 : 1 + size] for part, size in zip(gathered, sizes, strict=True)]
                return torch.cat(rows), sizes

    def rows(self, tensor: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        """:func:`gather_with_grad` of ``tensor`` at the ``sizes`` that :meth:`labels` returned."""
        return gather_with_grad(tensor, self.group, sizes)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor, sizes, group):
        ctx.sizes, ctx.group = sizes, group
        return process_group.gather_rows(tensor, group, sizes)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        """Sum over ranks of each rank's rows of ``grad_output``, delivered to that rank: one
        reduce-scatter of the gradient padded to equal slices (the caller's tensor is read,
        never written)."""
        sizes, largest = ctx.sizes, max(ctx.sizes)
        grad = grad_output.contiguous()
        if any(size != largest for size in sizes):
            padded = grad.new_zeros((largest * len(sizes), *grad.shape[1:]))
            starts = itertools.accumulate(sizes[:-1], initial=0)
            for index, (start, size) in enumerate(zip(starts, sizes, strict=True)):
                padded[index * largest : index * largest + size] = grad[start : start + size]
            grad = padded
        mine = grad.new_empty((largest, *grad.shape[1:]))
        dist.reduce_scatter(mine, list(grad.split(largest)), op=dist.ReduceOp.SUM, group=ctx.group)
        return mine[: sizes[process_group.rank(ctx.group)]], None, None
