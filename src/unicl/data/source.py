"""The source interface: how the stream reads any of the supported formats.

A source is either indexed (random access by position: folders, manifests, arrays) or sharded
(sequential WebDataset shards of known sizes). Both hand out `RawSample`s, which hold the image
still encoded; decoding happens in DataLoader workers (`decode`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from PIL import Image

from unicl.data.images import DEFAULT_MAX_PIXELS, BadSample, ImagePayload, load_image
from unicl.data.spec import SourceSpec
from unicl.objective import CAPTION_CLASS_ID
from unicl.templates import get_templates


class Modality(str, Enum):
    """What a source pairs with its images: class labels or captions."""

    IMAGE_LABEL = "image-label"
    IMAGE_TEXT = "image-text"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class RawSample:
    """One sample before decoding.

    key: a name for messages (file path, shard/key, array index).
    image: file path, encoded bytes or uint8 pixels; a `BadSample` when the reader already knows
        the sample is unusable (e.g. lost from a truncated shard).
    text: the caption (image-text) or None (image-label).
    class_id: index into the source's `class_names`, or `CAPTION_CLASS_ID` for an image-text pair.
    """

    key: str
    image: ImagePayload | BadSample
    text: str | None
    class_id: int


class Source:
    """Base of all sources. Subclasses set `kind`, `modality`, `class_names` and implement reading.

    modality: a `Modality`. class_names: the source's own classes ([] for image-text).
    templates: the prompt templates for this source's classes (`{}` marks the class name).
    """

    kind: str
    modality: Modality
    class_names: list[str]

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.templates = get_templates(spec.templates)

    def __len__(self) -> int:
        raise NotImplementedError

    def raw_samples(self) -> Iterator[RawSample]:
        """Every sample once, in storage order."""
        raise NotImplementedError

    def samples(
        self, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> Iterator[tuple[Image.Image, str | None, int]]:
        """Decoded `(image RGB, text or None, class_id)` in storage order, skipping bad samples."""
        for raw in self.raw_samples():
            try:
                yield decode(raw, max_pixels=max_pixels)
            except BadSample:
                continue

    def describe(self) -> str:
        return f"{self.kind} source {self.spec.location!r}"


class IndexedSource(Source):
    """A source with random access: `raw(i)` for `0 <= i < len(self)`."""

    def raw(self, index: int) -> RawSample:
        raise NotImplementedError

    def raw_samples(self) -> Iterator[RawSample]:
        return (self.raw(i) for i in range(len(self)))


class ShardedSource(Source):
    """A source read shard by shard; `shard_sizes[j]` samples in shard `j`."""

    shard_sizes: list[int]

    def __len__(self) -> int:
        return sum(self.shard_sizes)

    def read_shard(self, shard: int, start: int = 0, step: int = 1) -> Iterator[RawSample]:
        """The samples at positions ``start, start + step, ...`` of one shard, in storage order
        (unreadable members are skipped)."""
        raise NotImplementedError

    def raw_samples(self) -> Iterator[RawSample]:
        for shard in range(len(self.shard_sizes)):
            yield from self.read_shard(shard)


def decode(
    raw: RawSample, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft_size: int | None = None
) -> tuple[Image.Image, str | None, int]:
    """`(image RGB, text, class_id)` of a raw sample, or `BadSample` (including empty captions)."""
    if isinstance(raw.image, BadSample):
        raise raw.image
    if raw.class_id == CAPTION_CLASS_ID and not (raw.text and raw.text.strip()):
        raise BadSample("empty_caption", raw.key)
    image = load_image(raw.image, raw.key, max_pixels=max_pixels, draft_size=draft_size)
    return image, raw.text, raw.class_id
