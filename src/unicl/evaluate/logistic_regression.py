"""Multinomial logistic regression on fixed features, fitted with L-BFGS in PyTorch.

The probe minimises, over W [D, C] and b [C],

    mean_i CE(softmax(z_i W + b), y_i) + (l2 / 2) * ||W||_F^2,

where z_i are the features standardised with the training mean and standard deviation. The L2
strength is chosen on a stratified validation split of the training set, then the classifier is
refitted on the whole training set with that strength.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from unicl.errors import UserInputError

DEFAULT_L2_GRID: tuple[float, ...] = tuple(10.0**exponent for exponent in range(1, -7, -1))


@dataclass
class LogisticRegression:
    """A fitted probe: standardisation statistics (float [D]) and the linear layer."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor  # float [D, C]
    bias: torch.Tensor  # float [C]
    l2: float

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """float [N, C] class scores for features float [N, D]."""
        return ((features - self.mean) / self.std) @ self.weight + self.bias


def fit_logistic_regression(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    l2: float,
    *,
    max_iter: int = 200,
    init: LogisticRegression | None = None,
) -> LogisticRegression:
    """Fit the probe to features float [N, D] and labels int64 [N] in [0, num_classes).

    `init` warm-starts W and b (its standardisation is reused), which makes a sweep over L2
    strengths from strong to weak much cheaper than independent fits.
    """
    features = features.float()
    if init is None:
        mean = features.mean(dim=0)
        std = features.std(dim=0).clamp(min=1e-6)
        weight = torch.zeros(features.shape[1], num_classes)
        bias = torch.zeros(num_classes)
    else:
        mean, std = init.mean, init.std
        weight, bias = init.weight.clone(), init.bias.clone()
    standardised = (features - mean) / std
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(standardised @ weight + bias, labels)
        loss = loss + 0.5 * l2 * weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return LogisticRegression(mean, std, weight.detach(), bias.detach(), l2)


def stratified_split(
    labels: torch.Tensor, fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (fit int64, held-out int64) with about `fraction` of each class held out.

    Every class with at least two samples keeps at least one sample on each side.
    """
    fit_parts, held_parts = [], []
    for label in labels.unique():
        members = (labels == label).nonzero().squeeze(1)
        members = members[torch.randperm(len(members), generator=generator)]
        held = round(fraction * len(members))
        held = min(max(held, 1), len(members) - 1) if len(members) > 1 else 0
        held_parts.append(members[:held])
        fit_parts.append(members[held:])
    return torch.cat(fit_parts).sort().values, torch.cat(held_parts).sort().values


def _accuracy(probe: LogisticRegression, features: torch.Tensor, labels: torch.Tensor) -> float:
    return (probe.logits(features.float()).argmax(dim=1) == labels).double().mean().item()


def select_l2(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
    *,
    validation_fraction: float = 0.2,
    seed: int = 0,
    max_iter: int = 200,
) -> tuple[float, dict[float, float]]:
    """Choose the L2 strength with the best accuracy on a stratified validation split.

    Strengths are fitted from strongest to weakest, each warm-started from the previous one; ties
    go to the stronger regularisation. Returns `(best_l2, {l2: validation accuracy})`.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise UserInputError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    generator = torch.Generator().manual_seed(seed)
    fit_index, held_index = stratified_split(labels, validation_fraction, generator)
    if len(held_index) == 0:
        raise UserInputError(
            "the probe's training data has no class with two or more images, so no validation "
            "split can choose the L2 strength; give more training images"
        )
    scores: dict[float, float] = {}
    probe = None
    for l2 in sorted(l2_grid, reverse=True):
        probe = fit_logistic_regression(
            features[fit_index], labels[fit_index], num_classes, l2, max_iter=max_iter, init=probe
        )
        scores[l2] = _accuracy(probe, features[held_index], labels[held_index])
    best = max(scores, key=lambda l2: (scores[l2], l2))
    return best, scores
