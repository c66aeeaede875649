"""`prepare`: public datasets into a folder tree or shards, from local copies or the official site."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from unicl.data.arrays import IdxSource, read_idx
from unicl.data.spec import SourceSpec
from unicl.data.writers import write_image_folder, write_shards
from unicl.errors import UserInputError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
"""The download location given in Fashion-MNIST's README (Zalando Research)."""
FASHION_MNIST_SPLITS = {"train": "train", "test": "t10k"}


def fashion_mnist_files(prefix: str) -> tuple[str, str]:
    return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"


def download_fashion_mnist(folder: Path, base_url: str = FASHION_MNIST_URL) -> Path:
    """Fetch the four IDX files into `folder`; each is checked (IDX header, as many labels as
    images) before it is renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in FASHION_MNIST_SPLITS.values():
        fetched = []
        for name in fashion_mnist_files(prefix):
            partial = folder / f".{name}.part"
            try:
                urllib.request.urlretrieve(base_url + name, partial)
            except OSError as error:
                raise UserInputError(
                    f"could not download {base_url + name} ({error}); install Debian's "
                    f"dataset-fashion-mnist or pass --from a folder holding {name}"
                ) from None
            fetched.append(len(read_idx(partial)))
        if fetched[0] != fetched[1]:
            raise UserInputError(
                f"{base_url}: {prefix} has {fetched[0]} images but {fetched[1]} labels"
            )
        for name in fashion_mnist_files(prefix):
            (folder / f".{name}.part").replace(folder / name)
    return folder


def locate_fashion_mnist(
    source: Path | None, download_to: Path, base_url: str = FASHION_MNIST_URL
) -> Path:
    """The folder with Fashion-MNIST's IDX files: `source`, else Debian's, else a download."""
    if source is not None:
        return source
    if all(
        (DEBIAN_FASHION_MNIST / name).is_file()
        for p in FASHION_MNIST_SPLITS.values()
        for name in fashion_mnist_files(p)
    ):
        return DEBIAN_FASHION_MNIST
    return download_fashion_mnist(download_to, base_url)


def prepare_fashion_mnist(
    out: Path, fmt: str = "folder", per_shard: int = 10000, source: Path | None = None
) -> dict:
    """Write Fashion-MNIST's splits as `out/train` and `out/test` (ImageFolder trees or shards).

    Returns per-split counts. Class names are Fashion-MNIST's (`KNOWN_CLASS_NAMES`).
    """
    if fmt not in ("folder", "shards"):
        raise UserInputError(f"format {fmt!r} is unknown; use 'folder' or 'shards'")
    folder = locate_fashion_mnist(source, out / "downloads")
    report = {"from": str(folder)}
    for split, prefix in FASHION_MNIST_SPLITS.items():
        images = folder / fashion_mnist_files(prefix)[0]
        if not images.is_file():
            raise UserInputError(f"{folder} has no {images.name}; it is not a Fashion-MNIST folder")
        idx = IdxSource(SourceSpec(str(images), kind="idx", classes="fashion-mnist"))
        if fmt == "folder":
            report[split] = write_image_folder(idx, out / split)
        else:
            report[split] = write_shards(idx, out / split, per_shard, prefix=split)
    return report
