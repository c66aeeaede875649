"""WebDataset tar shards as img2dataset writes them, read with the `webdataset` library.

Each sample is a group of files sharing a key: the image (`jpg`, `jpeg`, `png` or `webp`) and
either a caption (`txt`, or `caption` inside `json`) or a class index (`cls`). The location is a
brace-expanded pattern (`train-{000000..000099}.tar`); several patterns can be joined with `::`.
Shard sizes come from img2dataset's `NAME_stats.json` ("successes") when present, else from one
pass over the shard.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import webdataset as wds
from braceexpand import braceexpand

from unicl.data.classes import read_class_names
from unicl.data.images import BadSample
from unicl.data.readers import register_reader
from unicl.data.source import Modality, RawSample, ShardedSource
from unicl.data.spec import SourceSpec
from unicl.errors import UserInputError
from unicl.objective import CAPTION_CLASS_ID

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


def expand_shards(pattern: str) -> list[str]:
    """Shard paths from `::`-joined, brace-expanded patterns, e.g. `a-{000..009}.tar::b.tar`."""
    return [url for part in pattern.split("::") for url in braceexpand(part)]


def _raise(error: Exception) -> bool:
    raise error


def iterate_shard(url: str, on_error=_raise) -> Iterator[dict]:
    """The samples (dicts of extension -> bytes, plus `__key__`) of one tar shard, in order.

    `on_error(exception)` decides about unreadable tar members: return True to go on.
    """
    pipeline = wds.DataPipeline(
        wds.SimpleShardList([url]), wds.tarfile_to_samples(handler=on_error)
    )
    return iter(pipeline)


def _stats_size(url: str) -> int | None:
    stats = Path(url).with_name(Path(url).name.removesuffix(".tar") + "_stats.json")
    if stats.is_file():
        return int(json.loads(stats.read_text())["successes"])
    return None


def _caption(sample: dict) -> str | None:
    if "txt" in sample:
        return sample["txt"].decode("utf-8", errors="replace")
    if "json" in sample:
        meta = json.loads(sample["json"])
        if isinstance(meta, dict) and "caption" in meta:
            return str(meta["caption"] or "")
    return None


class ShardSource(ShardedSource):
    """Image-text (caption) or image-label (`cls`) samples from WebDataset shards."""

    kind = "shards"

    def __init__(self, spec: SourceSpec) -> None:
        super().__init__(spec)
        self.urls = expand_shards(spec.location)
        missing = [url for url in self.urls if "://" not in url and not Path(url).is_file()]
        if missing:
            raise UserInputError(
                f"{len(missing)} of {len(self.urls)} shards of {spec.location!r} do not exist, "
                f"e.g. {missing[0]}"
            )
        first = next(iterate_shard(self.urls[0], on_error=wds.ignore_and_continue), None)
        if first is None:
            raise UserInputError(f"shard {self.urls[0]} holds no samples")
        self.modality = Modality.IMAGE_TEXT if _caption(first) is not None else Modality.IMAGE_LABEL
        if self.modality == Modality.IMAGE_LABEL and "cls" not in first:
            raise UserInputError(
                f"shard {self.urls[0]}: sample {first['__key__']!r} has neither a caption "
                f"(txt, json caption) nor a class (cls); it has {sorted(first)}"
            )
        sizes = [_stats_size(url) for url in self.urls]
        self.shard_sizes = [size or 0 for size in sizes]
        largest_class = -1
        for shard, size in enumerate(sizes):
            if size is None or (self.modality == Modality.IMAGE_LABEL and spec.classes is None):
                raws = list(self.read_shard(shard))
                sizes[shard] = len(raws)
                largest_class = max([largest_class, *(raw.class_id for raw in raws)])
        self.shard_sizes = [int(size) for size in sizes]
        if self.modality == Modality.IMAGE_TEXT:
            self.class_names = []
        elif spec.classes is not None:
            self.class_names = read_class_names(spec.classes)
        else:
            self.class_names = [str(i) for i in range(largest_class + 1)]

    def read_shard(self, shard: int) -> Iterator[RawSample]:
        """The shard's samples in order. Samples the shard promised (`shard_sizes`) but does not
        hold, as when a tar is cut short, come last as `truncated` bad samples."""
        url = self.urls[shard]
        read = 0
        damage: list[Exception] = []
        for sample in iterate_shard(url, on_error=lambda error: damage.append(error) or True):
            read += 1
            key = f"{url}/{sample['__key__']}"
            image = next((sample[e] for e in IMAGE_EXTENSIONS if e in sample), b"")
            if self.modality == Modality.IMAGE_TEXT:
                yield RawSample(key, image, _caption(sample) or "", CAPTION_CLASS_ID)
                continue
            class_text = sample.get("cls", b"").decode(errors="replace").strip()
            if not class_text.isdigit():
                image = BadSample("unreadable", key, f"cls {class_text!r} is not a class index")
            yield RawSample(key, image, None, int(class_text) if class_text.isdigit() else 0)
        for missing in range(read, self.shard_sizes[shard]):
            key = f"{url}#{missing}"
            lost = BadSample(
                "truncated", key, f"shard holds {read} of {self.shard_sizes[shard]} samples"
            )
            yield RawSample(key, lost, None, 0)
        if damage and read >= self.shard_sizes[shard]:
            # A damaged tar whose size was counted by reading it: how many samples it lost is
            # unknown, so the damage itself counts as one bad sample.
            key = f"{url}#{read}"
            yield RawSample(key, BadSample("truncated", key, str(damage[0])), None, 0)


register_reader(
    "shards",
    ShardSource,
    lambda location: "{" in location or location.endswith((".tar", ".tar.gz", ".tgz")),
)
