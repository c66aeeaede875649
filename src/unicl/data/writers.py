"""Write any source as WebDataset shards or as an ImageFolder tree (atomically, never over data).

Shards follow img2dataset's layout: `KEY.jpg|png|webp` (original bytes when the file already is
one of these, else PNG), `KEY.txt` (caption) or `KEY.cls` (class index), `KEY.json` (caption or
class name, original key), `NAME_stats.json` per shard (`successes`: its sample count), and
`sizes.json` with every shard's count (OpenCLIP's convention: one read for all shards).
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import webdataset as wds

from unicl.data.images import BadSample, load_image
from unicl.data.source import Modality, RawSample, Source, decode
from unicl.errors import UserInputError
from unicl.files import cannot_write

DIRECT_SUFFIXES = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".webp": "webp"}


@contextmanager
def fresh_directory(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out`, renamed to `out` when the block succeeds.

    Refuses an `out` that already exists and is not empty, so no user data is overwritten. A
    failed write (a full disk, a read-only place) is one `UserInputError` naming `out`, and the
    temporary folder is removed.
    """
    if out.exists() and any(out.iterdir()):
        raise UserInputError(f"{out} already exists and is not empty; choose a new --out folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as error:
        raise UserInputError(cannot_write(out, error)) from None
    try:
        yield work
        if out.exists():
            out.rmdir()
        work.rename(out)
    except OSError as error:
        raise UserInputError(cannot_write(out, error)) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def encoded_image(raw: RawSample) -> tuple[str, bytes]:
    """`(extension, bytes)` of a checked image: the original file bytes when possible."""
    image = load_image(raw.image, raw.key)
    if isinstance(raw.image, Path) and raw.image.suffix.lower() in DIRECT_SUFFIXES:
        return DIRECT_SUFFIXES[raw.image.suffix.lower()], raw.image.read_bytes()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "png", buffer.getvalue()


def write_shards(source: Source, out: Path, per_shard: int, prefix: str = "shard") -> dict:
    """Write `source` as shards `out/PREFIX-000000.tar`, ...; returns counts (written, bad causes).
    `prefix` is a plain file name (no folder, not hidden, no `%`), so every shard lands inside
    `out` under the name it reports."""
    if per_shard < 1:
        raise UserInputError(f"--per-shard {per_shard} must be at least 1")
    if not prefix or Path(prefix).name != prefix or prefix.startswith(".") or "%" in prefix:
        raise UserInputError(
            f"--prefix {prefix!r} must be a plain file name such as 'train' (no folder, no "
            "leading dot, no %): shards are written inside --out"
        )
    bad: Counter = Counter()
    written = 0
    with fresh_directory(out) as work:
        with wds.ShardWriter(
            str(work / f"{prefix}-%06d.tar"), maxcount=per_shard, verbose=0
        ) as sink:
            for raw in source.raw_samples():
                try:
                    decode(raw)
                    extension, data = encoded_image(raw)
                except BadSample as error:
                    bad[error.cause] += 1
                    continue
                sample = {"__key__": f"{written:09d}", extension: data}
                if source.modality == Modality.IMAGE_TEXT:
                    sample["txt"] = raw.text
                    sample["json"] = {"caption": raw.text, "source_key": raw.key}
                else:
                    sample["cls"] = raw.class_id
                    sample["json"] = {
                        "class": source.class_names[raw.class_id],
                        "source_key": raw.key,
                    }
                sink.write(sample)
                written += 1
        _write_stats(work, prefix, written, per_shard)
        if source.modality != Modality.IMAGE_TEXT:
            (work / "classes.txt").write_text(
                "\n".join(source.class_names) + "\n", encoding="utf-8"
            )
    shards = (written + per_shard - 1) // per_shard
    return {
        "written": written,
        "shards": shards,
        "pattern": shard_pattern(out, prefix, shards),
        "bad": dict(bad),
    }


def shard_pattern(out: Path, prefix: str, shards: int) -> str:
    """The brace pattern naming `shards` shards written by `write_shards`."""
    last = max(shards - 1, 0)
    return str(
        out / (f"{prefix}-000000.tar" if last == 0 else f"{prefix}-{{000000..{last:06d}}}.tar")
    )


def _write_stats(work: Path, prefix: str, written: int, per_shard: int) -> None:
    """Each shard's `NAME_stats.json` and the folder's `sizes.json` (shard file name -> count)."""
    sizes = {}
    for shard in range((written + per_shard - 1) // per_shard):
        count = min(per_shard, written - shard * per_shard)
        stats = work / f"{prefix}-{shard:06d}_stats.json"
        stats.write_text(json.dumps({"successes": count}) + "\n", encoding="utf-8")
        sizes[f"{prefix}-{shard:06d}.tar"] = count
    (work / "sizes.json").write_text(json.dumps(sizes, indent=0) + "\n", encoding="utf-8")


def write_image_folder(source: Source, out: Path) -> dict:
    """Write an image-label `source` as `out/CLASS/NNNNNNNN.EXT`; returns counts."""
    if source.modality == Modality.IMAGE_TEXT:
        raise UserInputError(f"{source.describe()} has captions, not classes; write shards instead")
    bad: Counter = Counter()
    written = 0
    with fresh_directory(out) as work:
        for name in source.class_names:
            (work / _folder_name(name)).mkdir()
        for raw in source.raw_samples():
            try:
                extension, data = encoded_image(raw)
            except BadSample as error:
                bad[error.cause] += 1
                continue
            folder = work / _folder_name(source.class_names[raw.class_id])
            (folder / f"{written:08d}.{extension}").write_bytes(data)
            written += 1
    return {"written": written, "classes": len(source.class_names), "bad": dict(bad)}


def _folder_name(class_name: str) -> str:
    name = class_name.replace("/", " or ").strip()
    if not name or name in (".", ".."):
        raise UserInputError(f"class name {class_name!r} cannot be a folder name")
    return name
