"""CSV / TSV / JSONL manifests: one row per sample with an image path and a class or a caption.

Columns are found by name unless the spec names them:
image `filepath|image|image_path|path|file|filename`, caption `caption|title|text|txt`,
class `class|class_name|label|category`. A manifest with a caption column is image-text, one with
a class column image-label. Relative image paths are relative to the manifest's folder.
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Iterable
from pathlib import Path

from unicl.data.classes import read_class_names
from unicl.data.readers import register_reader
from unicl.data.source import IndexedSource, Modality, RawSample
from unicl.data.spec import SourceSpec
from unicl.errors import UserInputError
from unicl.objective import CAPTION_CLASS_ID

IMAGE_COLUMNS = ("filepath", "image", "image_path", "path", "file", "filename")
TEXT_COLUMNS = ("caption", "title", "text", "txt")
CLASS_COLUMNS = ("class", "class_name", "label", "category")


def read_rows(path: Path, kind: str) -> list[dict[str, str]]:
    """The manifest's rows as dicts of strings (`kind` is csv, tsv or jsonl)."""
    if not path.is_file():
        raise UserInputError(f"manifest {path} does not exist")
    try:
        return _parse_rows(path, kind)
    except UnicodeDecodeError as error:
        raise UserInputError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8"
        ) from None


def _parse_rows(path: Path, kind: str) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        if kind == "jsonl":
            rows = []
            for number, line in enumerate(file, start=1):
                if line.strip():
                    try:
                        rows.append(
                            {k: "" if v is None else str(v) for k, v in json.loads(line).items()}
                        )
                    except (json.JSONDecodeError, AttributeError):
                        raise UserInputError(f"{path}:{number} is not a JSON object") from None
            return rows
        return list(csv.DictReader(file, delimiter="\t" if kind == "tsv" else ","))


def _pick(
    columns: Iterable[str], forced: str | None, candidates: tuple[str, ...], path: Path
) -> str | None:
    columns = list(columns)
    if forced is not None:
        if forced not in columns:
            raise UserInputError(f"{path} has no column {forced!r}; its columns are {columns}")
        return forced
    lowered = {c.lower(): c for c in columns}
    return next((lowered[c] for c in candidates if c in lowered), None)


class ManifestSource(IndexedSource):
    """A manifest of (image path, caption) or (image path, class name) rows."""

    def __init__(self, spec: SourceSpec, kind: str) -> None:
        super().__init__(spec)
        self.kind = kind
        path = Path(spec.location)
        rows = read_rows(path, kind)
        if not rows:
            raise UserInputError(f"manifest {path} has no rows")
        columns = rows[0].keys()
        image_column = _pick(columns, spec.image_column, IMAGE_COLUMNS, path)
        text_column = _pick(columns, spec.text_column, TEXT_COLUMNS, path)
        class_column = _pick(columns, spec.class_column, CLASS_COLUMNS, path)
        if spec.text_column is None and spec.class_column is not None:
            text_column = None
        if spec.class_column is None and spec.text_column is not None:
            class_column = None
        if image_column is None or (text_column is None) == (class_column is None):
            raise UserInputError(
                f"{path} has columns {list(columns)}: it needs an image column and exactly one of "
                "a caption or a class column; name them in the source, e.g. "
                f"'{path}?text_column=NAME' (options image_column, text_column, class_column)"
            )
        root = path.parent
        self.paths = [root / row.get(image_column, "") for row in rows]
        if text_column is not None:
            self.modality = Modality.IMAGE_TEXT
            self.class_names = []
            self.texts: list[str | None] = [row.get(text_column) or "" for row in rows]
            self.class_ids = [CAPTION_CLASS_ID] * len(rows)
        else:
            self.modality = Modality.IMAGE_LABEL
            self.texts = [None] * len(rows)
            values = [(row.get(class_column) or "").strip() for row in rows]
            self.class_names, self.class_ids = self._classes(values, spec, path)

    @staticmethod
    def _classes(values: list[str], spec: SourceSpec, path: Path) -> tuple[list[str], list[int]]:
        if spec.classes is not None:
            names = read_class_names(spec.classes)
            if all(v.isdigit() for v in values):
                ids = [int(v) for v in values]
                bad = next((v for v in ids if v >= len(names)), None)
            else:
                index = {name: i for i, name in enumerate(names)}
                ids = [index.get(v, -1) for v in values]
                bad = next((v for v, i in zip(values, ids, strict=True) if i < 0), None)
            if bad is not None:
                raise UserInputError(f"{path}: class {bad!r} is not in the classes {spec.classes}")
            return names, ids
        if any(not v for v in values):
            raise UserInputError(f"{path}: some rows have an empty class; fill them or drop them")
        key = (lambda v: int(v)) if all(v.isdigit() for v in values) else None
        names = sorted(set(values), key=key)
        index = {name: i for i, name in enumerate(names)}
        return names, [index[v] for v in values]

    def __len__(self) -> int:
        return len(self.paths)

    def raw(self, index: int) -> RawSample:
        path = self.paths[index]
        return RawSample(str(path), path, self.texts[index], self.class_ids[index])


for _kind in ("csv", "tsv", "jsonl"):
    register_reader(
        _kind,
        functools.partial(ManifestSource, kind=_kind),
        lambda location, suffix=f".{_kind}": location.lower().endswith(suffix),
    )
