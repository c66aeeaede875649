"""`open_source`: a source string, mapping or spec -> the reader for its kind."""

from __future__ import annotations

from collections.abc import Mapping

from unicl.data.arrays import IdxSource, NpzSource
from unicl.data.folder import FolderSource
from unicl.data.manifest import ManifestSource
from unicl.data.shards import ShardSource
from unicl.data.source import Source
from unicl.data.spec import MANIFEST_KINDS, SourceSpec, detect_kind, parse_source


def open_source(source: str | Mapping | SourceSpec) -> Source:
    """Open a source of any supported kind (see `unicl.data.spec` for the string syntax).

    Raises `UserInputError` naming the source when it is missing, empty or malformed.
    """
    spec = parse_source(source)
    kind = detect_kind(spec)
    if kind in MANIFEST_KINDS:
        return ManifestSource(spec, kind)
    readers = {"folder": FolderSource, "idx": IdxSource, "npz": NpzSource, "shards": ShardSource}
    return readers[kind](spec)
