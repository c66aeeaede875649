"""Class names: read per source, and merged into one class space across sources."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from unicl.errors import UserInputError
from unicl.files import read_utf8

KNOWN_CLASS_NAMES: dict[str, tuple[str, ...]] = {
    # Fashion-MNIST's labels in order; "T-shirt/top" reads "t-shirt or top" (a valid folder name).
    "fashion-mnist": (
        "t-shirt or top",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    ),
}

CLASSES_FILE = "classes.txt"
"""A file of class names (one per line, in label order) found next to array sources."""


def read_class_names(name_or_file: str | Path) -> list[str]:
    """Class names from a known dataset name or a file with one name per line."""
    if str(name_or_file) in KNOWN_CLASS_NAMES:
        return list(KNOWN_CLASS_NAMES[str(name_or_file)])
    path = Path(name_or_file)
    if not path.is_file():
        raise UserInputError(
            f"classes {str(name_or_file)!r} are neither a known dataset "
            f"({', '.join(KNOWN_CLASS_NAMES)}) nor a file with one class name per line"
        )
    names = [line.strip() for line in read_utf8(path).splitlines()]
    names = [name for name in names if name]
    if not names:
        raise UserInputError(f"{path} holds no class names; write one per line")
    return names


class ClassSpace:
    """The unified class space: each image-label source's classes get global ids.

    With `merge=True`, a class name already present (compared case-insensitively, spaces trimmed)
    keeps its id, so two sources that both have "dog" share one label; otherwise every source's
    classes get ids of their own.
    """

    def __init__(self, merge: bool = False) -> None:
        self.merge = merge
        self.names: list[str] = []
        self._ids: dict[str, int] = {}

    def add(self, names: Sequence[str]) -> list[int]:
        """Register one source's class names; returns the global id of each local class."""
        ids = []
        for name in names:
            folded = " ".join(name.split()).lower()
            if self.merge and folded in self._ids:
                ids.append(self._ids[folded])
                continue
            self._ids.setdefault(folded, len(self.names))
            ids.append(len(self.names))
            self.names.append(name)
        return ids
