"""Source specifications: one string (or mapping) per source, with its kind detected or forced.

A source string is `[KIND:]LOCATION[?KEY=VALUE&...][#SPLIT]`:

- `data/demo/fashion-mnist` or `.../fashion-mnist#t10k`: IDX arrays (`{split}-images-idx3-ubyte[.gz]`
  and `{split}-labels-idx1-ubyte[.gz]`; split `train` unless given), or the images file itself;
- `arrays.npz[#split]`: NPZ arrays (`images`/`labels`, `x`/`y`, or `x_{split}`/`y_{split}`);
- `some/dir`: an ImageFolder tree (one sub-folder per class);
- `list.csv`, `list.tsv`, `list.jsonl`: a manifest of image path + class name or caption;
- `shards/train-{000000..000099}.tar`: WebDataset shards (brace-expanded, img2dataset layout).

`KIND:` forces the kind (one of `KINDS`), e.g. `tsv:captions.txt` or `shards:/data/part.tar`.
`?KEY=VALUE` sets any other `SourceSpec` field where only a string can be given (the command line),
e.g. `photos.csv?text_column=desc` or `folder?classes=names.txt&templates=imagenet`.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from unicl.errors import UserInputError

KINDS = ("folder", "csv", "tsv", "jsonl", "idx", "npz", "shards")
MANIFEST_KINDS = ("csv", "tsv", "jsonl")
_IDX_IMAGES = re.compile(r"^(?P<split>.+)-images-idx3-ubyte(\.gz)?$")
_SUFFIX_KINDS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".npz": "npz", ".tar": "shards"}


@dataclass(frozen=True)
class SourceSpec:
    """Where a source is and how to read it.

    location: path (or shard pattern) without the `KIND:` prefix and `#SPLIT` suffix.
    kind: one of `KINDS`; detected from `location` when None.
    split: the split of IDX/NPZ arrays (`train`, `t10k`, `test`, ...).
    weight: per-epoch sampling factor: the source contributes `weight * len(source)` samples.
    classes: class names, as a file with one name per line or a known dataset name
        (`unicl.data.classes.KNOWN_CLASS_NAMES`); overrides names found in the source.
    templates: prompt-template set name or file (`unicl.templates.get_templates`).
    image_column, text_column, class_column: manifest columns; detected when None.
    """

    location: str
    kind: str | None = None
    split: str | None = None
    weight: float = 1.0
    classes: str | None = None
    templates: str = "default"
    image_column: str | None = None
    text_column: str | None = None
    class_column: str | None = None

    @property
    def name(self) -> str:
        """A short file-name-safe name: the location's last component with its split
        (`data/fm#t10k` -> `fm-t10k`, `shards/train-{000..009}.tar` -> `train-000..009`); results
        and metrics of this source are named after it."""
        base = Path(self.location.rstrip("/")).name.removesuffix(".tar")
        base = f"{base}-{self.split}" if self.split else base
        return re.sub(r"(?:[^A-Za-z0-9_.]|-)+", "-", base).strip("-.") or "data"

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise UserInputError(
                f"source kind {self.kind!r} is unknown; use one of {', '.join(KINDS)}"
            )
        if not self.weight >= 0:
            raise UserInputError(
                f"source {self.location!r}: weight {self.weight} must be a number >= 0"
            )


def parse_source(source: str | Mapping | SourceSpec) -> SourceSpec:
    """A `SourceSpec` from a source string, a config mapping (SourceSpec fields) or a spec."""
    if isinstance(source, SourceSpec):
        return source
    if isinstance(source, Mapping):
        fields = {field.name for field in dataclasses.fields(SourceSpec)}
        unknown = sorted(set(source) - fields)
        if unknown or "location" not in source:
            raise UserInputError(
                f"source {dict(source)!r}: needs 'location' and only the keys {sorted(fields)}"
                + (f"; unknown: {unknown}" if unknown else "")
            )
        parsed = parse_source(str(source["location"]))
        extra = {k: v for k, v in source.items() if k != "location"}
        return dataclasses.replace(parsed, **extra)
    text = str(source).strip()
    if not text:
        raise UserInputError("empty source string; give a path, manifest or shard pattern")
    kind, split = None, None
    prefix, colon, rest = text.partition(":")
    if colon and prefix in KINDS:
        kind, text = prefix, rest
    if "#" in text:
        text, split = text.rsplit("#", 1)
    text, question, query = text.partition("?")
    spec = SourceSpec(location=text, kind=kind, split=split)
    return _with_options(spec, query) if question else spec


def _with_options(spec: SourceSpec, query: str) -> SourceSpec:
    """`spec` with the `KEY=VALUE&...` options of a source string applied."""
    settable = {f.name for f in dataclasses.fields(SourceSpec)} - {"location", "kind", "split"}
    options: dict[str, object] = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in settable:
            raise UserInputError(
                f"source option {key!r} in {spec.location!r} is unknown; use {sorted(settable)}"
            )
        options[key] = value
    if "weight" in options:
        try:
            options["weight"] = float(options["weight"])
        except ValueError:
            raise UserInputError(f"source weight {options['weight']!r} is not a number") from None
    return dataclasses.replace(spec, **options)


def detect_kind(spec: SourceSpec) -> str:
    """The spec's kind: forced, or detected from the location's suffix or directory contents."""
    if spec.kind is not None:
        return spec.kind
    location = spec.location
    if "{" in location or location.endswith((".tar", ".tar.gz", ".tgz")):
        return "shards"
    path = Path(location)
    if _IDX_IMAGES.match(path.name):
        return "idx"
    if path.suffix.lower() in _SUFFIX_KINDS:
        return _SUFFIX_KINDS[path.suffix.lower()]
    if path.is_dir():
        if any(_IDX_IMAGES.match(child.name) for child in path.iterdir()):
            return "idx"
        return "folder"
    if not path.exists():
        raise UserInputError(f"source {location!r} does not exist; check the path")
    raise UserInputError(
        f"cannot tell the kind of source {location!r} from its name; prefix it with one of "
        f"{', '.join(k + ':' for k in KINDS)}"
    )


def idx_split(name: str) -> str | None:
    """The split of an IDX images file name (`train-images-idx3-ubyte.gz` -> `train`)."""
    match = _IDX_IMAGES.match(name)
    return match["split"] if match else None
