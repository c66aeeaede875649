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
- `export_section(section) -> (section, files)`: what `save_pretrained` writes so that the
  tower can be rebuilt from the saved directory alone (by default the config section unchanged
  and no files).

The constructors' other arguments are the keys of the config's `vision` / `text` sections; their
annotations are checked before anything is built, so sizes carry bounds (the types below).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
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


class Tower(nn.Module, abc.ABC):
    """What image and text towers share: `width`, checkpointing, no-decay names, export."""

    width: int

    def __init__(self) -> None:
        super().__init__()
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute blocks in the backward pass (less activation memory, more compute)."""
        self.grad_checkpointing = enable

    @abc.abstractmethod
    def no_weight_decay(self) -> set[str]:
        """Names (relative to the tower) of the parameters of two or more dimensions that the
        optimiser must not decay: position and relative-position tables, class tokens,
        embeddings. Every family states its own, even when the set is empty."""

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
