"""Bad data: empty, zero-byte, truncated and non-image files, hostile image headers, non-UTF-8 and
malformed manifests, missing columns and captions, broken and looping links, damaged tars and IDX
arrays, pickled NPZ arrays, wrong splits and source options; each given to `data inspect`,
`train`, or `eval`.

Data with some usable samples may be read with the bad ones counted (`either`); data with none
must stop training with an error, never hang.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from .fixtures import FASHION, Fixtures
from .harness import Case, Invocation

CATEGORY = "bad data"
Builder = Callable[[Path], str]  # writes the data under the case folder, returns the source


def _png(path: Path, value: int = 128, size: int = 24) -> bytes:
    """A grey RGB square saved as PNG at `path`; returns its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (value,) * 3).save(path)
    return path.read_bytes()


def _folder(write: Callable[[Path, int], None], classes=("cat", "dog"), count=6) -> Builder:
    """An ImageFolder whose files `write(path, i)` makes."""

    def build(folder: Path) -> str:
        for name in classes:
            (folder / "data" / name).mkdir(parents=True)
            for i in range(count):
                write(folder / "data" / name / f"{i}.png", i)
        return str(folder / "data")

    return build


def _manifest(name: str, text: bytes, images: int = 6) -> Builder:
    def build(folder: Path) -> str:
        for i in range(images):
            _png(folder / f"{i}.png", 20 * i)
        (folder / name).write_bytes(text)
        return str(folder / name)

    return build


def _file(name: str, data: bytes) -> Builder:
    def build(folder: Path) -> str:
        (folder / name).write_bytes(data)
        return str(folder / name)

    return build


def _captions(rows: list[str], header: str = "image,caption") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def _bomb_png(path: Path) -> None:
    """A valid PNG header claiming 60000 x 60000 pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))  # fmt: skip


def _modes(folder: Path) -> str:
    root = folder / "data"
    for i, mode in enumerate(("RGB", "L", "LA", "RGBA", "P", "1", "I;16", "CMYK")):
        image = Image.new(mode, (20, 20))
        (root / ("even" if i % 2 else "odd")).mkdir(parents=True, exist_ok=True)
        image.save(
            root / ("even" if i % 2 else "odd") / f"{i}.{'jpg' if mode == 'CMYK' else 'png'}"
        )
    return str(root)


def _links(kind: str) -> Builder:
    def build(folder: Path) -> str:
        source = _folder(lambda p, i: _png(p, 30 * i), count=3)(folder)
        cat = Path(source) / "cat"
        if kind == "broken":
            (cat / "gone.png").symlink_to(folder / "nowhere.png")
        elif kind == "loop":
            (cat / "loop.png").symlink_to(cat / "loop.png")
        else:  # a folder that links to its own parent: walking it naively never ends
            (cat / "again").symlink_to(cat)
        return source

    return build


def _tar(members: list[tuple[str, bytes]], cut: float = 1.0) -> Builder:
    def build(folder: Path) -> str:
        stream = io.BytesIO()
        with tarfile.open(fileobj=stream, mode="w") as tar:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        data = stream.getvalue()
        (folder / "shard-000000.tar").write_bytes(data[: int(len(data) * cut)])
        return str(folder / "shard-000000.tar")

    return build


def _shard_members(count: int = 12) -> list[tuple[str, bytes]]:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, "PNG")
    members = []
    for i in range(count):
        members += [
            (f"k{i:03d}.png", buffer.getvalue()),
            (f"k{i:03d}.txt", f"red tile {i}".encode()),
        ]
    return members


def _idx(images: bytes | None, labels: bytes | None, classes: str | None = None) -> Builder:
    """A copy of the demo's test split, with its images or labels file replaced."""

    def build(folder: Path) -> str:
        root = folder / "idx"
        root.mkdir()
        for name, data in (("t10k-images-idx3-ubyte.gz", images), ("t10k-labels-idx1-ubyte.gz", labels)):  # fmt: skip
            (root / name).write_bytes(data if data is not None else (FASHION / name).read_bytes())
        if classes is not None:
            (root / "classes.txt").write_text(classes)
        return f"{root}#t10k"

    return build


def _demo_part(name: str, cut: float) -> bytes:
    data = (FASHION / name).read_bytes()
    return data[: int(len(data) * cut)]


def _fewer_labels() -> bytes:
    """A well-formed labels file of the first 1,000 of the test split's 2,000 labels."""
    labels = gzip.decompress((FASHION / "t10k-labels-idx1-ubyte.gz").read_bytes())
    return gzip.compress(labels[:4] + struct.pack(">I", 1000) + labels[8:1008])


class _WritesMarker:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def _npz(kind: str) -> Builder:
    def build(folder: Path) -> str:
        path = folder / "arrays.npz"
        rng = np.random.default_rng(0)
        images = rng.integers(0, 255, (6, 8, 8), dtype=np.uint8)
        if kind == "not a zip":
            path.write_bytes(b"PK\x03\x04 not really a zip" * 10)
        elif kind == "pickled object array":
            labels = np.array([_WritesMarker(str(folder / "code-ran"))] * 6, dtype=object)
            with path.open("wb") as handle:
                np.savez(handle, images=images, labels=labels)
        elif kind == "no known arrays":
            np.savez(path, foo=images)
        elif kind == "1-D images":
            np.savez(path, images=np.zeros(6, np.uint8), labels=np.zeros(6, np.int64))
        elif kind == "labels shorter than images":
            np.savez(path, images=images, labels=np.array([0, 1]))
        elif kind == "no images":
            np.savez(path, images=images[:0], labels=np.zeros(0, np.int64))
        elif kind == "2-D labels":
            np.savez(path, images=images, labels=np.zeros((6, 2), np.int64))
        return str(path)

    return build


def _command(command: str, source: str, folder: Path, fx: Fixtures) -> list[str]:
    if command == "inspect":
        return ["data", "inspect", source]
    if command == "train":  # batches of 4: the bad-data check, not the batch size, must stop it
        return ["train", str(fx.train_config), "--set", f"data.sources=[{source!r}]",
                "--set", "data.batch_size=4", "--set", f"run.output_dir={folder / 'run'}"]  # fmt: skip
    kind = "retrieval" if command == "retrieval" else "zeroshot"
    return ["eval", kind, str(fx.model), "--data", source, "--out", str(folder / "result.json")]


def _case(fx: Fixtures, name: str, build: Builder, command: str, expect: str = "error", check=None) -> Case:  # fmt: skip
    def setup(folder: Path) -> Invocation:
        source = build(folder)
        return Invocation(
            argv=_command(command, source, folder, fx),
            check=None if check is None else lambda: check(folder),
        )

    return Case(CATEGORY, f"{name} ({command})", setup, expect)


def _no_marker(folder: Path) -> str | None:
    return "code in a pickled array ran" if (folder / "code-ran").exists() else None


def _nothing_outside(folder: Path) -> str | None:
    return "a tar member was written outside" if (folder.parent / "evil.png").exists() else None


def cases(fx: Fixtures) -> list[Case]:
    zero_byte = _folder(lambda p, i: p.write_bytes(b""))
    truncated = _folder(lambda p, i: p.write_bytes(_png(p, 40 * i, 64)[:60]))
    not_images = _folder(lambda p, i: p.write_text("this is text, not a picture\n"))
    bombs = _folder(lambda p, i: _bomb_png(p))
    some_bad = _folder(lambda p, i: _png(p, 30 * i) if i % 3 else p.write_bytes(b""))
    members = _shard_members()
    return [
        _case(fx, "empty folder", lambda f: str(f), "inspect"),
        _case(fx, "class folders without images", _folder(lambda p, i: None), "inspect", "either"),
        _case(fx, "class folders without images", _folder(lambda p, i: None), "train"),
        _case(fx, "zero-byte images", zero_byte, "inspect", "either"),
        _case(fx, "zero-byte images", zero_byte, "train"),
        _case(fx, "truncated PNGs", truncated, "train"),
        _case(fx, "text files named .png", not_images, "train"),
        _case(fx, "text files named .png", not_images, "eval"),
        _case(fx, "decompression-bomb PNG headers", bombs, "inspect", "either"),
        _case(fx, "decompression-bomb PNG headers", bombs, "train"),
        _case(fx, "a third of the images empty", some_bad, "eval", "either"),
        _case(fx, "every image mode (L, LA, P, 1, I;16, CMYK)", _modes, "eval", "ok"),
        _case(fx, "one class only", _folder(lambda p, i: _png(p, 30 * i), classes=("cat",)), "eval", "either"),
        _case(fx, "broken symbolic link", _links("broken"), "inspect", "ok"),
        _case(fx, "looping symbolic link", _links("loop"), "inspect", "ok"),
        _case(fx, "folder linking to itself", _links("folder"), "inspect", "either"),
        _case(fx, "CSV not UTF-8", _manifest("list.csv", "image,caption\n0.png,caf\xe9\n".encode("latin-1")), "inspect"),
        _case(fx, "CSV not UTF-8", _manifest("list.csv", "image,caption\n0.png,caf\xe9\n".encode("latin-1")), "train"),
        _case(fx, "CSV without a caption column", _manifest("list.csv", _captions(["0.png,x"], "image,colour")), "inspect"),
        _case(fx, "CSV zero bytes", _manifest("list.csv", b""), "inspect"),
        _case(fx, "CSV header only", _manifest("list.csv", b"image,caption\n"), "inspect"),
        _case(fx, "CSV captions all empty", _manifest("list.csv", _captions([f"{i}.png, " for i in range(6)])), "train"),
        _case(fx, "CSV images all missing", _manifest("list.csv", _captions([f"missing{i}.png,a cat" for i in range(6)])), "train"),
        _case(fx, "CSV image paths escaping to /etc", _manifest("list.csv", _captions(["../../../../../../etc/passwd,a file", "0.png,a square"])), "inspect", "either"),
        _case(fx, "CSV with NUL bytes", _manifest("list.csv", b"image,caption\n0.png,a\x00b\n"), "inspect", "either"),
        _case(fx, "CSV with an unclosed quote", _manifest("list.csv", b'image,caption\n0.png,"a cat\n1.png,a dog\n'), "inspect", "either"),
        _case(fx, "CSV of random bytes", _manifest("list.csv", bytes(range(256)) * 8), "inspect"),
        _case(fx, "TSV separated by commas", _manifest("list.tsv", _captions(["0.png,a cat"])), "inspect"),
        _case(fx, "JSONL with a broken line", _manifest("list.jsonl", b'{"image": "0.png", "caption": "a"}\n{"image": "1.pn\n'), "inspect"),
        _case(fx, "JSONL of lists", _manifest("list.jsonl", b'["0.png", "a cat"]\n'), "inspect"),
        _case(fx, "image-text data for zero-shot", lambda f: str(fx.captions), "eval"),
        _case(fx, "image-label data for retrieval", lambda f: str(fx.folder), "retrieval"),
        _case(fx, "tar cut short", _tar(members, 0.55), "inspect", "either"),
        _case(fx, "tar cut short", _tar(members, 0.55), "train", "either"),
        _case(fx, "tar of random bytes", _file("x.tar", bytes(range(256)) * 40), "inspect"),
        _case(fx, "tar zero bytes", _file("x.tar", b""), "inspect"),
        _case(fx, "tar member escaping with ../", _tar([("../evil.png", members[0][1]), ("../evil.txt", b"x"), *members]), "inspect", "either", _nothing_outside),
        _case(fx, "tar with images but no captions", _tar([m for m in members if m[0].endswith(".png")]), "train"),
        _case(fx, "shard pattern matching no file", lambda f: str(f / "none-{000000..000003}.tar"), "inspect"),
        _case(fx, "unknown split", lambda f: f"{FASHION}#nosuch", "inspect"),
        _case(fx, "IDX images cut short", _idx(_demo_part("t10k-images-idx3-ubyte.gz", 0.3), None), "inspect"),
        _case(fx, "IDX fewer labels than images", _idx(None, _fewer_labels()), "inspect"),
        _case(fx, "IDX images not gzip", _idx(b"\x1f\x8bnot gzip at all" * 50, None), "inspect"),
        _case(fx, "classes.txt with 3 names for 10 classes", _idx(None, None, "a\nb\nc\n"), "eval"),
        _case(fx, "NPZ not a zip", _npz("not a zip"), "inspect"),
        _case(fx, "NPZ with a pickled object array", _npz("pickled object array"), "inspect", "error", _no_marker),
        _case(fx, "NPZ without known arrays", _npz("no known arrays"), "inspect"),
        _case(fx, "NPZ of 1-D images", _npz("1-D images"), "inspect"),
        _case(fx, "NPZ labels shorter than images", _npz("labels shorter than images"), "inspect"),
        _case(fx, "NPZ of zero images", _npz("no images"), "inspect"),
        _case(fx, "NPZ of 2-D labels", _npz("2-D labels"), "inspect"),
        _case(fx, "unknown kind prefix", lambda f: f"bogus:{fx.folder}", "inspect"),
        _case(fx, "unknown source option", lambda f: f"{fx.folder}?bogus=1", "inspect"),
        _case(fx, "take=abc", lambda f: f"{fx.folder}?take=abc", "inspect"),
        _case(fx, "per_class=5:2 (empty)", lambda f: f"{fx.folder}?per_class=5:2", "eval"),
    ]  # fmt: skip
