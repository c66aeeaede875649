"""Part of a source, chosen in its source string: `take=START:STOP` (a slice of the samples in
storage order) and `per_class=START:STOP` (the same slice of each class's samples, image-label
sources), e.g. `data/fm?per_class=0:240` and `data/fm?per_class=240:` for a split of each class.

Both work on indexed sources (folders, manifests, arrays), which are read by position; a sharded
source is read in one pass and would have to be read whole to be sliced, so it is refused.
"""

from __future__ import annotations

from collections import defaultdict

from unicl.data.source import IndexedSource, Modality, RawSample, Source
from unicl.errors import UserInputError


def parse_slice(text: str, key: str) -> slice:
    """`START:STOP` with non-negative integers, either side optional."""
    start, colon, stop = text.partition(":")
    if not colon or not all(part.strip().isdigit() for part in (start, stop) if part.strip()):
        raise UserInputError(f"source option {key}={text!r} must be START:STOP, e.g. 0:240 or 240:")
    return slice(int(start) if start.strip() else None, int(stop) if stop.strip() else None)


class SubsetSource(IndexedSource):
    """The samples of `base` at `indices` (positions in its storage order), in that order."""

    def __init__(self, base: IndexedSource, indices: list[int]) -> None:
        super().__init__(base.spec)
        self.base, self.indices = base, indices
        self.kind, self.modality, self.class_names = base.kind, base.modality, base.class_names

    def __len__(self) -> int:
        return len(self.indices)

    def raw(self, index: int) -> RawSample:
        return self.base.raw(self.indices[index])


def select_samples(source: Source) -> Source:
    """`source`, or the part of it that its spec's `take` / `per_class` options choose."""
    spec = source.spec
    if spec.take is None and spec.per_class is None:
        return source
    if not isinstance(source, IndexedSource):
        raise UserInputError(
            f"{source.describe()}: take/per_class need a source read by position (a folder, "
            "manifest or arrays); write the part you want as its own shards"
        )
    indices = list(range(len(source)))
    if spec.per_class is not None:
        if source.modality != Modality.IMAGE_LABEL:
            raise UserInputError(f"{source.describe()}: per_class needs image-label data")
        chosen = parse_slice(spec.per_class, "per_class")
        by_class: dict[int, list[int]] = defaultdict(list)
        for index in indices:
            by_class[source.raw(index).class_id].append(index)
        indices = sorted(i for members in by_class.values() for i in members[chosen])
    if spec.take is not None:
        indices = indices[parse_slice(spec.take, "take")]
    if not indices:
        raise UserInputError(f"{source.describe()}: take/per_class chose no samples")
    return SubsetSource(source, indices)
