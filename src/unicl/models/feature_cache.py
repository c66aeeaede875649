"""Outputs of a locked tower, computed once per distinct input.

A tower whose parameters are all frozen is a fixed function of its input once it runs in eval mode
(no dropout; BatchNorm on its running statistics). Where the same inputs come back again and
again, as the prompts of a labelled dataset do (classes x templates, a few hundred distinct token
sequences), each needs encoding only once: `LockedTowerCache` keeps the tower's output per distinct
input row. With the text tower of a pretrained model locked (LiT's recipe turned around) this
removes the text tower's cost from every training step after the first few.

Each new row is encoded on its own, so a cached value never depends on which other rows shared its
batch, and a run resumed from a checkpoint (empty cache) computes bit-identical values.
"""

from __future__ import annotations

import torch
from torch import nn


class LockedTowerCache:
    """`cache(inputs [B, ...]) -> tower outputs [B, W]`, each distinct row encoded once.

    `tower` must have no trainable parameter (lock it first). Up to `max_entries` outputs are
    kept, on the tower's device; rows beyond that are encoded every time they come (still one row
    at a time, so results never depend on the cache's state). The cache is not part of the
    model's state: it is neither saved nor loaded, and it must be cleared (`clear`) when the
    tower's weights change.
    """

    def __init__(self, tower: nn.Module, max_entries: int = 100_000) -> None:
        trainable = [name for name, p in tower.named_parameters() if p.requires_grad]
        if trainable:
            raise ValueError(
                f"only a locked tower's outputs can be cached; {type(tower).__name__} trains "
                f"{len(trainable)} parameters (e.g. {trainable[0]})"
            )
        self.tower = tower
        self.max_entries = max_entries
        self.entries: dict[bytes, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        self.entries.clear()

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        keys = [row.numpy().tobytes() for row in inputs.detach().cpu()]
        outputs: list[torch.Tensor] = []
        for key, row in zip(keys, inputs, strict=True):
            output = self.entries.get(key)
            if output is None:
                output = self._encode(row)
                if len(self.entries) < self.max_entries:
                    self.entries[key] = output
            outputs.append(output)
        return torch.stack(outputs)

    @torch.no_grad()
    def _encode(self, row: torch.Tensor) -> torch.Tensor:
        was_training = self.tower.training
        self.tower.eval()
        try:
            return self.tower(row.unsqueeze(0))[0]
        finally:
            self.tower.train(was_training)
