"""Random access to the samples of a local tar shard, for consumers that keep one sample in C.

With fewer shards than consumers every consumer reads every shard and keeps one sample in C
(`unicl.data.plan`). Streamed through webdataset, each consumer then reads and parses the whole
tar, so C consumers pay C times the reading that one pass needs; at C = 14 that cost more than
the decoding of the samples kept.

An index instead lists each sample's members (extension, byte offset, size) from one walk over
the tar headers, seeking past the data, and a consumer reads only the bytes of its own samples.
The members are grouped into samples by webdataset's own rule (`group_by_keys`), so keys and
order equal the streamed ones. A process builds the index of a file once and keeps it while the
file's size and modification time stay the same, so persistent data workers pay the walk in their
first epoch only. A tar that does not walk cleanly (damaged, cut short, compressed, a member
named twice) gets no index; its reader streams it, which reports the damage as it always has.
"""

from __future__ import annotations

import functools
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from webdataset import tariterators

_META = re.compile(r"__[^/]*__($|/)")


@dataclass(frozen=True)
class TarIndex:
    """The samples of a tar in storage order: sample `i` has key ``keys[i]`` and the members
    ``starts[i]:starts[i + 1]``, member `m` being ``extensions[ext_ids[m]]`` at byte
    ``offsets[m]``, ``lengths[m]`` long. About 160 bytes a sample (the keys, and flat arrays for
    the members), so a worker can hold the index of every shard it shares."""

    keys: list[str]
    starts: np.ndarray
    extensions: tuple[str, ...]
    ext_ids: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


def sample_index(path: Path) -> TarIndex | None:
    """The index of the uncompressed tar at `path`, or None when it cannot be indexed (see the
    module docstring)."""
    try:
        status = path.stat()
    except OSError:
        return None
    return _index(str(path), status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _index(path: str, size: int, modified_ns: int) -> TarIndex | None:
    try:
        with tarfile.open(path, mode="r:") as tar:
            files = [
                {"fname": info.name, "data": (info.offset_data, info.size), "__url__": path}
                for info in tar
                if info.isreg() and not _META.match(info.name)
            ]
        samples = list(tariterators.group_by_keys(files))
    except (tarfile.TarError, OSError, ValueError):  # ValueError: a member named twice
        return None
    if any(sum(file["data"]) > size for file in files):
        return None  # cut short inside a member's data: the streamed read reports it
    members = [
        [(ext, *value) for ext, value in sample.items() if not ext.startswith("__")]
        for sample in samples
    ]
    extensions = tuple(sorted({ext for parts in members for ext, _, _ in parts}))
    flat = [part for parts in members for part in parts]
    return TarIndex(
        keys=[sample["__key__"] for sample in samples],
        starts=np.cumsum([0] + [len(parts) for parts in members], dtype=np.int64),
        extensions=extensions,
        ext_ids=np.array([extensions.index(ext) for ext, _, _ in flat], dtype=np.int32),
        offsets=np.array([offset for _, offset, _ in flat], dtype=np.int64),
        lengths=np.array([length for _, _, length in flat], dtype=np.int64),
    )


def read_samples(path: Path, index: TarIndex, start: int, step: int) -> Iterator[dict]:
    """The samples at positions ``start, start + step, ...`` as webdataset gives them
    (``{"__key__": key, ext: bytes, ...}``), reading only their members' bytes."""
    with open(path, "rb") as file:
        for i in range(start, len(index), step):
            sample: dict = {"__key__": index.keys[i]}
            for m in range(index.starts[i], index.starts[i + 1]):
                file.seek(index.offsets[m])
                sample[index.extensions[index.ext_ids[m]]] = file.read(index.lengths[m])
            yield sample
