"""The tower contract: what `UniCLModel`, the factory and the optimiser may rely on in an encoder.

Every image family subclasses `ImageTower`, every text family `TextTower`, and registers itself
with `unicl.models.registry`. A tower maps its input to one pooled vector per sample:

- `ImageTower(images float [B,3,H,W]) -> [B, width]`; its constructor takes `image_size`
  (the config's top-level `image_size`, the input size it is built for) and keeps it as
  `.image_size`.
- `TextTower(tokens int64 [B,L]) -> [B, width]` for L <= `context_length`, right-padded with
  `pad_id`; its constructor takes `vocab_size` and `pad_id` (from the tokenizer) and
  `context_length` (the config's), and keeps them as attributes of those names.

Both expose:

- `width: int`, the pooled feature width;
- `grad_checkpointing: bool` and `set_grad_checkpointing(enable=True)`: recompute blocks in the
  backward pass; outputs and gradients are unchanged;
- `no_weight_decay() -> set[str]`: the names, relative to the tower, of the parameters with two
  or more dimensions that must not be decayed (position tables, class tokens, relative-position
  tables, embeddings). Parameters with fewer than two dimensions (norm gains, biases) are never
  decayed by the optimiser's general rule, so they need not be listed;
- `layer_groups() -> list[list[str]]`: the tower's parameter names grouped by depth, from the
  input (group 0: the stem or embeddings) through each block to the output (the last group: the
  final norm or block), every parameter in exactly one group. Fine-tuning reads it: layer-wise
  learning-rate decay and locking all but the last groups (`lock`). The default, one group
  holding every parameter, is correct for any family, which is then trained or locked as a whole;
- `export_section(section) -> (section, files)`: what `save_pretrained` writes so that the
  tower can be rebuilt from the saved directory alone (by default the config section unchanged
  and no files).

The constructors' other arguments are the keys of the config's `vision` / `text` sections; their
annotations are checked before anything is built, so sizes carry bounds (the types below).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from torch import nn

from unicl.config_checks import Range

Width = Annotated[int, Range(1, 16384)]
"""A feature or embedding width."""
Count = Annotated[int, Range(1, 1024)]
"""A number of blocks or attention heads."""
Span = Annotated[int, Range(1, 1024)]
"""A patch, window or stride size (pixels or feature-map cells)."""
ImageSize = Annotated[int, Range(1, 8192)]
"""An image side in pixels."""
ContextLength = Annotated[int, Range(1, 8192)]
"""Tokens per text."""
TokenId = Annotated[int, Range(0, 16_777_215)]
"""The id of a token (vocabularies of up to 2^24 tokens)."""
Ratio = Annotated[float, Range(0.0, 64.0, low_open=True)]
"""A width multiplier such as the MLP ratio."""
DropRate = Annotated[float, Range(0.0, 1.0, high_open=True)]
"""A drop or drop-path probability."""
NormEps = Annotated[float, Range(0.0, 1.0, low_open=True)]
"""The epsilon a LayerNorm adds to the variance."""


class Tower(nn.Module, abc.ABC):
    """What image and text towers share: `width`, checkpointing, no-decay names, depth, export."""

    width: int

    def __init__(self) -> None:
        super().__init__()
        self.grad_checkpointing = False
        self.frozen_norms: tuple[str, ...] = ()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute blocks in the backward pass (less activation memory, more compute)."""
        self.grad_checkpointing = enable

    @abc.abstractmethod
    def no_weight_decay(self) -> set[str]:
        """Names (relative to the tower) of the parameters of two or more dimensions that the
        optimiser must not decay: position and relative-position tables, class tokens,
        embeddings. Every family states its own, even when the set is empty."""

    def layer_groups(self) -> list[list[str]]:
        """Every parameter name (relative to the tower) in exactly one group, the groups ordered
        from the input (stem, embeddings) to the output (final norm or block).

        This default is one group holding every parameter: right for any family, which is then
        locked or trained as a whole and at one learning rate. A family that describes its depth
        (usually with `groups_by_prefix`) gets layer-wise learning-rate decay and partial
        locking."""
        return [[name for name, _ in self.named_parameters()]]

    def groups_by_prefix(self, groups: Sequence[str | Sequence[str]]) -> list[list[str]]:
        """`layer_groups()` from module or parameter names: group `i` holds the parameters named
        `p` or `p.*` for a prefix `p` of `groups[i]` (a string is one prefix). Raises
        `ValueError` naming a parameter that no prefix covers, so that a parameter added to a
        family without a place in its groups is caught."""
        prefixes = [(group,) if isinstance(group, str) else tuple(group) for group in groups]
        result: list[list[str]] = [[] for _ in prefixes]
        for name, _ in self.named_parameters():
            index = next(
                (
                    i
                    for i, options in enumerate(prefixes)
                    if any(name == p or name.startswith(f"{p}.") for p in options)
                ),
                None,
            )
            if index is None:
                raise ValueError(
                    f"parameter {name!r} of {type(self).__name__} is in no layer group; "
                    "place it in layer_groups()"
                )
            result[index].append(name)
        return result

    def lock(self, unlocked_groups: int = 0, freeze_bn_stats: bool = False) -> None:
        """Freeze all `layer_groups()` but the last `unlocked_groups` (0: the whole tower), as
        LiT (Zhai et al. 2022) and OpenCLIP's `lock_image_tower` do: their parameters get
        `requires_grad=False`. With `freeze_bn_stats`, every BatchNorm layer whose parameters are
        all locked (one without parameters: when the whole tower is) stays in eval mode through
        `train()`, so it normalises with its running statistics and never updates them."""
        groups = self.layer_groups()
        if not 0 <= unlocked_groups <= len(groups):
            raise ValueError(
                f"unlocked_groups must be in [0, {len(groups)}], got {unlocked_groups}"
            )
        locked = {name for group in groups[: len(groups) - unlocked_groups] for name in group}
        for name in locked:
            self.get_parameter(name).requires_grad_(False)
        if freeze_bn_stats:
            self.frozen_norms = tuple(
                prefix
                for prefix, module in self.named_modules()
                if isinstance(module, nn.modules.batchnorm._BatchNorm)
                and _all_locked(module, prefix, locked, whole=unlocked_groups == 0)
            )
            self.train(self.training)

    def train(self, mode: bool = True) -> Tower:
        """Set the training mode; the BatchNorm layers frozen by `lock` stay in eval mode."""
        super().train(mode)
        for name in self.frozen_norms:
            self.get_submodule(name).eval()
        return self

    def export_section(self, section: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The config section and the extra text files (relative name -> content) that rebuild
        this tower, with `model.safetensors`, from a saved directory alone."""
        return dict(section), {}


class ImageTower(Tower):
    """An image encoder: `[B,3,H,W] -> [B, width]`, built for `image_size` pixels."""

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.image_size = image_size


class TextTower(Tower):
    """A text encoder: int64 `[B,L] -> [B, width]`, L <= `context_length`, padded with `pad_id`."""

    def __init__(self, vocab_size: int, pad_id: int, context_length: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.pad_id = pad_id
        self.context_length = context_length


def _all_locked(module: nn.Module, prefix: str, locked: set[str], whole: bool) -> bool:
    """Whether every parameter of `module` (named `prefix` in its tower) is `locked`; for a module
    without parameters, whether the `whole` tower is locked."""
    names = [f"{prefix}.{name}" for name, _ in module.named_parameters()]
    return all(name in locked for name in names) if names else whole
