"""The licence of a data source, where the data states it: a licence file in its folder.

The folder is the source itself for a folder source, and the folder holding the file or the
shards otherwise. The first of `LICENCE_FILES` found there gives the licence as its first
non-empty line, with the file's path; a source without one (or one given by URL) has no known
licence. The model card (`unicl.models.card`) lists it for each training source.
"""

from __future__ import annotations

from pathlib import Path

LICENCE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENCE.txt", "LICENCE.md")


def data_licence(location: str) -> str | None:
    """`<first line> (<licence file>)` for the source at `location`, or None when unknown."""
    if "://" in location:
        return None
    path = Path(location)
    folder = path if path.is_dir() else path.parent
    for name in LICENCE_FILES:
        candidate = folder / name
        if candidate.is_file():
            text = candidate.read_text(encoding="utf-8", errors="replace")
            first = next((line.strip() for line in text.splitlines() if line.strip()), "")
            return f"{first or 'see'} ({candidate})"
    return None
