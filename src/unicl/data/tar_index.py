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
from collections.abc import Iterator, Sequence
from pathlib import Path

from webdataset import tariterators

IndexedSample = tuple[str, tuple[tuple[str, int, int], ...]]
"""A sample's key and its members as ``(extension, data offset, size)``, in tar order."""

_META = re.compile(r"__[^/]*__($|/)")


def sample_index(path: Path) -> tuple[IndexedSample, ...] | None:
    """The samples of the uncompressed tar at `path` in storage order, or None when it cannot be
    indexed (see the module docstring)."""
    try:
        status = path.stat()
    except OSError:
        return None
    return _index(str(path), status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _index(path: str, size: int, modified_ns: int) -> tuple[IndexedSample, ...] | None:
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
    return tuple(
        (
            sample["__key__"],
            tuple((ext, *value) for ext, value in sample.items() if not ext.startswith("__")),
        )
        for sample in samples
    )


def read_samples(path: Path, samples: Sequence[IndexedSample]) -> Iterator[dict]:
    """The samples as webdataset gives them (``{"__key__": key, ext: bytes, ...}``), reading
    only their members' bytes."""
    with open(path, "rb") as file:
        for key, members in samples:
            sample: dict = {"__key__": key}
            for ext, offset, length in members:
                file.seek(offset)
                sample[ext] = file.read(length)
            yield sample
