"""All-gathers across the ranks of a process group, with gradients for features.

Ranks may hold different numbers of rows ``b_r``; the result concatenates them in rank order,
``N = sum_r b_r`` rows. On a group of one process both gathers return their input.

Gradient of :func:`gather_with_grad`: rank ``r``'s loss ``loss_r`` depends on every rank's rows
through the gathered tensor. The backward sums, over all ranks, the gradients that each rank's loss
sends to the gathered tensor and hands every rank the slice of its own rows, so rank ``r``'s input
receives ``d(sum_s loss_s)/d(rows of r)``. DDP then averages parameter gradients over the ``W``
ranks, which yields ``d(mean_s loss_s)/d(theta)``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.autograd.function import once_differentiable

from unicl import process_group
from unicl.process_group import Group


def gather_with_grad(tensor: torch.Tensor, group: Group = None) -> torch.Tensor:
    """Every rank's ``[b_r, ...]`` tensor of ``group`` concatenated in rank order, ``[N, ...]``;
    gradients flow back to each rank's own slice (summed over the ranks' losses)."""
    if not process_group.spans_processes(group):
        return tensor
    sizes = _gather_sizes(tensor.shape[0], tensor.device, group)
    return _GatherWithGrad.apply(tensor, sizes, group)


def gather_labels(labels: torch.Tensor, group: Group = None) -> torch.Tensor:
    """Every rank's label tensor of ``group`` concatenated in rank order (no gradient)."""
    if not process_group.spans_processes(group):
        return labels
    sizes = _gather_sizes(labels.shape[0], labels.device, group)
    return _all_gather_padded(labels.contiguous(), sizes, group)


def _gather_sizes(local_size: int, device: torch.device, group: Group) -> list[int]:
    size = torch.tensor([local_size], device=device)
    sizes = [torch.zeros_like(size) for _ in range(process_group.world_size(group))]
    dist.all_gather(sizes, size, group=group)
    return [int(s) for s in sizes]


def _all_gather_padded(tensor: torch.Tensor, sizes: list[int], group: Group) -> torch.Tensor:
    """all_gather needs equal shapes: pad every rank's rows to the largest ``b_r``, then trim."""
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded, group=group)
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor, sizes, group):
        ctx.sizes, ctx.group = sizes, group
        return _all_gather_padded(tensor.contiguous(), sizes, group)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        grad = grad_output.clone(memory_format=torch.contiguous_format)  # never reduce in place
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        rank = process_group.rank(ctx.group)
        start = sum(ctx.sizes[:rank])
        return grad[start : start + ctx.sizes[rank]], None, None
