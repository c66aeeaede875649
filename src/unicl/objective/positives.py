"""The positive terms of the label-aware losses, from per-label sums of features.

The keys of a batch (texts, or images) fall into label groups ``c``. Key ``k`` belongs to its own
label's group with weight 1; a mixed image (``LabelMix``) belongs to two, with weights
``m_k(c) = w_k [c = y_k] + (1 - w_k) [c = y'_k]``. Per label::

    S_c = sum_k m_k(c) key_k          M_c = sum_k m_k(c)

Every term of the losses that involves the positives is a dot product of a query with these
``O(N x D)`` sums (one slot per key, ``G <= N`` of them used), so none of them needs the
``B x B`` similarity matrix.
"""

from __future__ import annotations

import torch

from unicl.objective.targets import LabelMix


class LabelGroups:
    """The distinct labels of a set of ``N`` keys: each key's group and each group's size.

    Built once per batch and shared by both directions of the loss. There are ``N`` group slots
    whatever the number ``G`` of distinct labels: slot ``g < G`` holds the ``g``-th smallest
    label, the rest are empty (size 0, label ``EMPTY_SLOT``). Sorting instead of
    ``torch.unique`` keeps every shape known in advance, so nothing waits for the device.
    """

    EMPTY_SLOT = torch.iinfo(torch.int64).max
    """The label of an unused slot: larger than any TargetM label, so ``group_of`` never finds it."""

    def __init__(self, key_labels: torch.Tensor) -> None:
        sorted_labels, order = torch.sort(key_labels)
        starts = torch.ones_like(sorted_labels, dtype=torch.bool)
        starts[1:] = sorted_labels[1:] != sorted_labels[:-1]
        sorted_group = torch.cumsum(starts, dim=0) - 1
        self.key_group = torch.empty_like(sorted_group).scatter_(0, order, sorted_group)
        self.labels = torch.full_like(key_labels, self.EMPTY_SLOT)
        self.labels.scatter_(0, sorted_group, sorted_labels)
        self.sizes = torch.zeros_like(key_labels).index_add_(
            0, self.key_group, torch.ones_like(key_labels)
        )

    def group_of(self, query_labels: torch.Tensor) -> torch.Tensor:
        """The group of each query label; every query label must occur among the keys."""
        return torch.searchsorted(self.labels, query_labels)


class Memberships:
    """Which label groups each of a set of rows belongs to, and how much: its own label's group
    ``own`` with weight ``weights`` (None: 1) and ``partner``'s with ``1 - weights``."""

    def __init__(self, groups: LabelGroups, labels: torch.Tensor, mix: LabelMix | None) -> None:
        self.own = groups.group_of(labels)
        self.partner = None if mix is None else groups.group_of(mix.partner_labels)
        self.weights = None if mix is None else mix.weights

    def pick(self, table: torch.Tensor) -> torch.Tensor:
        """Row ``i`` of the result is ``w_i * table[own_i] + (1 - w_i) * table[partner_i]``."""
        own = table[self.own]
        if self.partner is None:
            return own
        weights = self.weights.to(table.dtype).reshape(-1, *([1] * (table.dim() - 1)))
        return torch.lerp(table[self.partner], own, weights)


def label_sums(
    keys: torch.Tensor, groups: LabelGroups, memberships: Memberships | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S [G, D], M [G])`` of the module docstring. ``memberships`` None: every key in
    ``groups.key_group`` with weight 1 (``M`` is then the group sizes)."""
    sums = keys.new_zeros(groups.labels.numel(), keys.shape[1])
    if memberships is None or memberships.partner is None:
        group = groups.key_group if memberships is None else memberships.own
        sums.index_add_(0, group, keys)
        return sums, groups.sizes.to(keys.dtype)
    weights = memberships.weights.to(keys.dtype)
    sums.index_add_(0, memberships.own, keys * weights[:, None])
    sums.index_add_(0, memberships.partner, keys * (1 - weights)[:, None])
    mass = keys.new_zeros(groups.labels.numel())
    mass.index_add_(0, memberships.own, weights)
    mass.index_add_(0, memberships.partner, 1 - weights)
    return sums, mass


def positive_logits(
    queries: torch.Tensor,
    query_memberships: Memberships,
    sums: torch.Tensor,
    mass: torch.Tensor,
    scale: torch.Tensor,
) -> torch.Tensor:
    """``pos[i] = scale * sum_c m_i(c) <q_i, S_c / M_c>``: the mean logit of query ``i`` over the
    keys of its label, or, for a mixed query, the mix of those means over its two labels."""
    means = sums / torch.where(mass > 0, mass, 1)[:, None]  # empty slots are never picked
    return scale * (queries * query_memberships.pick(means)).sum(dim=1)
