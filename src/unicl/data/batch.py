"""The training batch that the unified stream yields."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Batch:
    """A batch in the image-text-label space.

    images: uint8 [B, 3, H, W], resized and cropped (augment with `BatchAugment` on the device).
    texts: B strings: a class prompt (image-label) or the caption (image-text).
    class_ids: int64 [B]: class in the stream's unified class space, or `CAPTION_CLASS_ID` for image-text.
    labels: int64 [B]: `unicl.objective.target_labels(class_ids, texts)`; equal labels are positives.
    keys: B sample names (file path, shard/key or array index).
    bad: `(cause, key)` of samples this worker skipped since its previous batch.
    consumer, position: which worker made the batch and how far it had read (for resumption).
    tokens: int64 [B, L]: `texts` tokenised by the stream's `tokenize` in its workers, else None.
    """

    images: torch.Tensor
    texts: list[str]
    class_ids: torch.Tensor
    labels: torch.Tensor
    keys: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    consumer: int = 0
    position: int = 0
    tokens: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True)."""
        self.images = self.images.pin_memory()
        self.class_ids = self.class_ids.pin_memory()
        self.labels = self.labels.pin_memory()
        if self.tokens is not None:
            self.tokens = self.tokens.pin_memory()
        return self
