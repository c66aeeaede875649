"""Sources as map-style datasets for evaluation (zero-shot, linear probe, retrieval)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from PIL import Image
from torch.utils.data import Dataset

from unicl.data.images import DEFAULT_MAX_PIXELS, BadSample
from unicl.data.readers import open_source
from unicl.data.source import IndexedSource, Modality, Source, decode
from unicl.data.spec import SourceSpec


class EvalDataset(Dataset):
    """`(image tensor, class index)` for image-label sources, `(image tensor, caption)` for
    image-text ones; a bad sample gives `None` (drop it with `collate_skipping_bad`).

    Sharded sources are read once into memory (still encoded), so keep evaluation shards small.
    class_names: the source's classes; templates: its prompt templates.
    """

    def __init__(
        self,
        source: str | Mapping | SourceSpec | Source,
        transform: Callable[[Image.Image], torch.Tensor],
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.source = source if isinstance(source, Source) else open_source(source)
        self.transform = transform
        self.max_pixels = max_pixels
        self.modality = self.source.modality
        self.class_names = self.source.class_names
        self.templates = self.source.templates
        self._raws = (
            None if isinstance(self.source, IndexedSource) else list(self.source.raw_samples())
        )

    def __len__(self) -> int:
        return len(self.source) if self._raws is None else len(self._raws)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int | str] | None:
        raw = self.source.raw(index) if self._raws is None else self._raws[index]
        try:
            image, text, class_id = decode(raw, max_pixels=self.max_pixels)
        except BadSample:
            return None
        return self.transform(image), (class_id if self.modality == Modality.IMAGE_LABEL else text)


def collate_skipping_bad(items: list) -> tuple[torch.Tensor, list]:
    """DataLoader collate for `EvalDataset`: stacks images, keeps targets as a list, drops Nones."""
    kept = [item for item in items if item is not None]
    if not kept:
        return torch.empty(0), []
    return torch.stack([image for image, _ in kept]), [target for _, target in kept]
