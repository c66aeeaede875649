"""Source specifications: where a source is and how to read it (`SourceSpec`), parsed from one
string or mapping by `unicl.data.readers.parse_source`.

A source string is `[KIND:]LOCATION[?KEY=VALUE&...][#SPLIT]`:

- `data/demo/fashion-mnist` or `.../fashion-mnist#t10k`: IDX arrays (`{split}-images-idx3-ubyte[.gz]`
  and `{split}-labels-idx1-ubyte[.gz]`; split `train` unless given), or the images file itself;
- `arrays.npz[#split]`: NPZ arrays (`images`/`labels`, `x`/`y`, or `x_{split}`/`y_{split}`);
- `some/dir`: an ImageFolder tree (one sub-folder per class);
- `list.csv`, `list.tsv`, `list.jsonl`: a manifest of image path + class name or caption;
- `shards/train-{000000..000099}.tar`: WebDataset shards (brace-expanded, img2dataset layout).

`KIND:` forces the kind (see `unicl.data.readers`), e.g. `tsv:captions.txt` or `shards:x.tar`.
`?KEY=VALUE` sets any other `SourceSpec` field where only a string can be given (the command line),
e.g. `photos.csv?text_column=desc` or `folder?classes=names.txt&templates=imagenet`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from unicl.errors import UserInputError

_IDX_IMAGES = re.compile(r"^(?P<split>.+)-images-idx3-ubyte(\.gz)?$")


@dataclass(frozen=True)
class SourceSpec:
    """Where a source is and how to read it.

    location: path (or shard pattern) without the `KIND:` prefix and `#SPLIT` suffix.
    kind: a registered kind (`unicl.data.readers.source_kinds()`); detected when None.
    split: the split of IDX/NPZ arrays (`train`, `t10k`, `test`, ...).
    weight: per-epoch sampling factor: the source contributes `weight * len(source)` samples.
    classes: class names, as a file with one name per line or a known dataset name
        (`unicl.data.classes.KNOWN_CLASS_NAMES`); overrides names found in the source.
    templates: prompt-template set name or file (`unicl.templates.get_templates`).
    image_column, text_column, class_column: manifest columns; detected when None.
    take, per_class: `START:STOP` slices of the samples, or of each class's samples, that the
        source keeps (`unicl.data.subset`); the whole source when None.
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
    take: str | None = None
    per_class: str | None = None

    @property
    def name(self) -> str:
        """A short file-name-safe name: the location's last component with its split
        (`data/fm#t10k` -> `fm-t10k`, `shards/train-{000..009}.tar` -> `train-000..009`); results
        and metrics of this source are named after it."""
        base = Path(self.location.rstrip("/")).name.removesuffix(".tar")
        base = f"{base}-{self.split}" if self.split else base
        for option in ("take", "per_class"):
            if getattr(self, option) is not None:
                base = f"{base}-{option}-{getattr(self, option)}"
        return re.sub(r"(?:[^A-Za-z0-9_.]|-)+", "-", base).strip("-.") or "data"

    def __post_init__(self) -> None:
        if not self.weight >= 0:
            raise UserInputError(
                f"source {self.location!r}: weight {self.weight} must be a number >= 0"
            )


def is_idx_images(name: str) -> bool:
    """Whether a file name is an IDX images file (`train-images-idx3-ubyte[.gz]`)."""
    return _IDX_IMAGES.match(name) is not None


def idx_split(name: str) -> str | None:
    """The split of an IDX images file name (`train-images-idx3-ubyte.gz` -> `train`)."""
    match = _IDX_IMAGES.match(name)
    return match["split"] if match else None
