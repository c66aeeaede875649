"""Supervised contrastive loss (Khosla et al., 2020), the image-only baseline of the paper's Table 2.

Over ``N`` L2-normalised features ``z`` (typically two augmented views of each image) with labels
``y`` and temperature ``T``, with ``A(i)`` every sample but ``i`` and ``P(i) = {p in A(i) : y_p = y_i}``::

    L = mean_{i : |P(i)| > 0} [ -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / T) / sum_{a in A(i)} exp(z_i.z_a / T) ) ]

Anchors without a positive are left out of the mean.
"""

from __future__ import annotations

import torch

from unicl.objective.loss import float32_region


def supcon_loss(
    features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """The SupCon loss of ``features [N, D]`` (normalised) with int64 ``labels [N]``; float32 scalar."""
    if features.dim() != 2 or not features.dtype.is_floating_point:
        raise ValueError(f"features must be a float [N, D] tensor, got {tuple(features.shape)}")
    if labels.shape != features.shape[:1] or labels.dtype != torch.long:
        raise ValueError(f"labels must be int64 of shape ({features.shape[0]},)")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    with float32_region(features.device):
        z = features.float()
        logits = z @ z.T / temperature
        is_self = torch.eye(len(z), dtype=torch.bool, device=z.device)
        log_prob = torch.log_softmax(logits.masked_fill(is_self, float("-inf")), dim=1)
        positives = (labels[:, None] == labels[None, :]) & ~is_self
        counts = positives.sum(dim=1)
        has_positive = counts > 0
        if not bool(has_positive.any()):
            raise ValueError(
                "no sample has a positive: SupCon needs at least two samples of a label"
            )
        positive_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
        return -(positive_log_prob[has_positive] / counts[has_positive]).mean()
