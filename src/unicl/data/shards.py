"""WebDataset tar shards as img2dataset writes them, read with the `webdataset` library.

Each sample is a group of files sharing a key: the image (`jpg`, `jpeg`, `png` or `webp`) and
either a caption (`txt`, or `caption` inside `json`) or a class index (`cls`). The location is a
brace-expanded pattern (`train-{000000..000099}.tar`); several patterns can be joined with `::`.
A shard is a local path or anything webdataset opens: a URL (`file://`, `https://`, ...) or a
`pipe:` command that writes the tar to stdout (`pipe:curl -s URL`, `pipe:aws s3 cp URL -`).
Shard sizes come from a `sizes.json` in the shards' folder (OpenCLIP's convention: shard file name
-> sample count; one request per folder), else from img2dataset's `NAME_stats.json` ("successes";
`.tar` -> `_stats.json` in the location, fetched concurrently), else from one pass over the
shard. Both are fetched the same way as the shard.

A shard that cannot be opened or breaks off while it is read is logged as a warning naming it; the
samples it promised and did not give come as `truncated` bad samples, so they count against the
stream's `max_bad_fraction` and never stop a run by themselves.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import webdataset as wds
from braceexpand import braceexpand

from unicl.data.classes import read_class_names
from unicl.data.images import BadSample
from unicl.data.readers import register_reader
from unicl.data.source import Modality, RawSample, ShardedSource
from unicl.data.spec import SourceSpec
from unicl.data.tar_index import read_samples, sample_index
from unicl.errors import UserInputError
from unicl.objective import CAPTION_CLASS_ID

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")

logger = logging.getLogger("unicl.data")

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


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


def _reason(error: Exception) -> str:
    """A short reason for a failed shard read (webdataset's errors carry the stream object)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error.args[0] if error.args else "") or type(error).__name__
    status = re.search(r"\): exit (-?\d+) ", text)  # a `pipe:` command that failed
    return f"the command exited with status {status[1]}" if status else text


def _first_reason(errors: list[Exception]) -> str:
    """The reason of a failed read: a `pipe:` command's exit status when one of the errors
    carries it (the empty stream it left may be reported first), else the first error's."""
    reasons = [_reason(error) for error in errors]
    return next((r for r in reasons if r.startswith("the command exited")), reasons[0])


def local_path(url: str) -> Path | None:
    """The file a shard location names on this machine (a path or `file://`), else None (a
    remote URL or a `pipe:` command)."""
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    if url.startswith("pipe:") or _URL.match(url):
        return None
    return Path(url)


def _read_json(location: str):
    """The JSON at `location`, read like a shard (a path, a URL, a `pipe:` command); None when
    there is none or it cannot be read or parsed, whatever the transport says."""
    path = local_path(location)
    try:
        if path is not None:
            return json.loads(path.read_text()) if path.is_file() else None
        with wds.gopen(location, "rb") as stream:
            return json.loads(stream.read())
    except Exception:
        return None


def _stats_size(url: str) -> int | None:
    """The shard's size from its `_stats.json`, read like the shard; None when there is none."""
    head, tar, tail = url.rpartition(".tar")
    stats = _read_json(f"{head}_stats.json{tail}") if tar else None
    try:
        return int(stats["successes"])
    except (TypeError, KeyError, ValueError):
        return None


def sizes_file(url: str) -> tuple[str, str] | None:
    """Where the `sizes.json` of the shard's folder is, read like the shard, and the shard's file
    name in it: `pipe:curl -s https://h/d/00042.tar` -> (`pipe:curl -s https://h/d/sizes.json`,
    `00042.tar`). None when the location names no `.tar`."""
    head, tar, tail = url.rpartition(".tar")
    if not tar:
        return None
    folder, name = re.fullmatch(r"(.*[/\s]|)([^/\s]*)", head, re.DOTALL).groups()
    suffix, after = re.fullmatch(r"([^/\s]*)(.*)", tail, re.DOTALL).groups()  # `.gz`, ` -`
    return f"{folder}sizes.json{after}", f"{name}.tar{suffix}"


def listed_sizes(urls: list[str]) -> list[int | None]:
    """Each shard's sample count from its folder's `sizes.json` (one read per folder), else from
    its `_stats.json` (read concurrently, as each may be a network request); None where neither
    gives one."""
    where = [sizes_file(url) for url in urls]
    tables = {location: _read_json(location) for location in {p[0] for p in where if p}}
    sizes: list[int | None] = []
    for place in where:
        table = tables[place[0]] if place else None
        count = table.get(place[1]) if isinstance(table, dict) else None
        sizes.append(count if type(count) is int and count >= 0 else None)
    unknown = [i for i, size in enumerate(sizes) if size is None]
    if unknown:
        with ThreadPoolExecutor(min(16, len(unknown))) as pool:
            found = pool.map(_stats_size, [urls[i] for i in unknown])
            for i, size in zip(unknown, found, strict=True):
                sizes[i] = size
    return sizes


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
        missing = [
            url for url in self.urls if (path := local_path(url)) is not None and not path.is_file()
        ]
        if missing:
            raise UserInputError(
                f"{len(missing)} of {len(self.urls)} shards of {spec.location!r} do not exist, "
                f"e.g. {missing[0]}"
            )
        failures: list[Exception] = []
        first = next(
            iterate_shard(self.urls[0], on_error=lambda e: failures.append(e) or True), None
        )
        if first is None:
            reason = f"cannot be read ({_reason(failures[0])})" if failures else "holds no samples"
            raise UserInputError(f"shard {self.urls[0]} {reason}")
        self.modality = Modality.IMAGE_TEXT if _caption(first) is not None else Modality.IMAGE_LABEL
        if self.modality == Modality.IMAGE_LABEL and "cls" not in first:
            raise UserInputError(
                f"shard {self.urls[0]}: sample {first['__key__']!r} has neither a caption "
                f"(txt, json caption) nor a class (cls); it has {sorted(first)}"
            )
        sizes = listed_sizes(self.urls)
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

    def read_shard(self, shard: int, start: int = 0, step: int = 1) -> Iterator[RawSample]:
        """The shard's samples at positions ``start, start + step, ...``, in order. Samples the
        shard promised (`shard_sizes`) but does not hold, as when a tar is cut short, come last
        as `truncated` bad samples. With ``step > 1`` a local tar is read through its index
        (`unicl.data.tar_index`): only the kept samples' bytes are read."""
        url = self.urls[shard]
        path = local_path(url)
        index = sample_index(path) if step > 1 and path is not None else None
        if index is None:
            yield from itertools.islice(self._stream_shard(shard), start, None, step)
            return
        for sample in read_samples(path, index, start, step):
            yield self._raw_sample(url, sample)
        for missing in range(start, self.shard_sizes[shard], step):
            if missing >= len(index):
                yield self._truncated(shard, missing, len(index))

    def _stream_shard(self, shard: int) -> Iterator[RawSample]:
        """All of the shard's samples, streamed through webdataset."""
        url = self.urls[shard]
        read = 0
        damage: list[Exception] = []
        for sample in iterate_shard(url, on_error=lambda error: damage.append(error) or True):
            read += 1
            yield self._raw_sample(url, sample)
        for missing in range(read, self.shard_sizes[shard]):
            yield self._truncated(shard, missing, read)
        if damage:
            logger.warning(
                "shard %s failed after %d of %d samples (%s); skipping the rest",
                url,
                read,
                self.shard_sizes[shard],
                _first_reason(damage),
            )
        if damage and read >= self.shard_sizes[shard]:
            # A damaged tar whose size was counted by reading it: how many samples it lost is
            # unknown, so the damage itself counts as one bad sample.
            key = f"{url}#{read}"
            yield RawSample(key, BadSample("truncated", key, str(damage[0])), None, 0)

    def _raw_sample(self, url: str, sample: dict) -> RawSample:
        key = f"{url}/{sample['__key__']}"
        image = next((sample[e] for e in IMAGE_EXTENSIONS if e in sample), b"")
        if self.modality == Modality.IMAGE_TEXT:
            return RawSample(key, image, _caption(sample) or "", CAPTION_CLASS_ID)
        class_text = sample.get("cls", b"").decode(errors="replace").strip()
        if not class_text.isdigit():
            image = BadSample("unreadable", key, f"cls {class_text!r} is not a class index")
        return RawSample(key, image, None, int(class_text) if class_text.isdigit() else 0)

    def _truncated(self, shard: int, position: int, held: int) -> RawSample:
        key = f"{self.urls[shard]}#{position}"
        reason = f"shard holds {held} of {self.shard_sizes[shard]} samples"
        return RawSample(key, BadSample("truncated", key, reason), None, 0)


register_reader(
    "shards",
    ShardSource,
    lambda location: (
        "{" in location
        or location.endswith((".tar", ".tar.gz", ".tgz"))
        or location.startswith("pipe:")
        or (_URL.match(location) is not None and ".tar" in location)
    ),
)
