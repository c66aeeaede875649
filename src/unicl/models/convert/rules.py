"""Tensor tables read in both directions: how a unicl tensor is made from a foreign layout's
tensors, and the same rule read backwards.

A `Rule` pairs one unicl tensor `ours` with the layout's tensors `theirs`:

| rule | import (theirs -> ours) | export (ours -> theirs) |
| --- | --- | --- |
| one name | copied | copied |
| several names (`q, k, v`) | concatenated along dimension 0 | split into equal parts along 0 |
| `transposed` | a `[W,E]` matrix becomes `[E,W]` | `[E,W]` becomes `[W,E]` |
| `leading=n` | n leading dimensions of size 1 added (`[W] -> [1,1,W]`) | the same n removed |

Both directions move bits and shapes only (no arithmetic), so an import followed by an export
gives the source tensors back bit for bit. `import_rules` fills a `TensorMap` (which checks names
and shapes against the model); `export_rules` turns a unicl state dict into the layout's, refusing
a unicl tensor that no rule covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from unicl.errors import UserInputError
from unicl.models.convert.state_dict import TensorMap, describe_names


@dataclass(frozen=True)
class Rule:
    """unicl tensor `ours` <-> the layout's tensors `theirs` (see the module's table)."""

    ours: str
    theirs: tuple[str, ...]
    transposed: bool = False
    leading: int = 0

    def to_ours(self, tensor: torch.Tensor) -> torch.Tensor:
        """One source tensor in unicl's shape; a tensor that is not a matrix is not transposed
        (the shape check reports it)."""
        if self.transposed and tensor.ndim == 2:
            tensor = tensor.transpose(0, 1)
        return tensor.reshape((1,) * self.leading + tuple(tensor.shape))

    def to_theirs(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """The layout's tensors, in the order of `theirs`, as new contiguous tensors."""
        tensor = tensor.detach().reshape(tensor.shape[self.leading :])
        if self.transposed:
            tensor = tensor.transpose(0, 1)
        parts = tensor.chunk(len(self.theirs), dim=0) if len(self.theirs) > 1 else (tensor,)
        return [part.clone(memory_format=torch.contiguous_format) for part in parts]


def rule(ours: str, *theirs: str, transposed: bool = False, leading: int = 0) -> Rule:
    """`Rule(ours, theirs, ...)` with the layout's names as arguments."""
    return Rule(ours, tuple(theirs), transposed, leading)


def import_rules(tensors: TensorMap, rules: Iterable[Rule]) -> None:
    """State every rule in `tensors` (the source's names -> unicl's)."""
    for each in rules:
        if len(each.theirs) > 1:
            tensors.concat(each.ours, each.theirs)
        else:
            tensors.copy(each.ours, each.theirs[0], each.to_ours)


def export_rules(
    state: Mapping[str, torch.Tensor], rules: Iterable[Rule], where: str
) -> dict[str, torch.Tensor]:
    """The layout's state dict made from unicl's `state` by the rules read backwards; a unicl
    tensor without a rule, or a rule without its unicl tensor, is refused naming them (`where`
    names the layout)."""
    rules = list(rules)
    covered = {each.ours for each in rules}
    problems = [
        f"{label}: {describe_names(names)}"
        for label, names in (
            ("unicl tensors without a counterpart", set(state) - covered),
            ("tensors the model lacks", covered - set(state)),
        )
        if names
    ]
    if problems:
        raise UserInputError(f"cannot write {where}: {'; '.join(problems)}")
    theirs = {}
    for each in rules:
        theirs.update(zip(each.theirs, each.to_theirs(state[each.ours]), strict=True))
    return theirs
