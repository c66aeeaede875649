"""Regenerate the demo data shipped in `data/demo/` from its two public sources.

- `fashion-mnist/`: a seeded random subset of Fashion-MNIST (MIT licence, Zalando Research), kept
  in the original IDX + gzip layout, read from Debian's `dataset-fashion-mnist` package
  (`/usr/share/datasets/fashion-mnist`). Class names go to `classes.txt`.
- `emoji/`: Twemoji 64x64 PNGs (graphics CC-BY 4.0, Twitter Inc. and contributors) with their
  Unicode names and CLDR categories as captions, from the npm package `emoji-datasource-twitter`
  (metadata MIT, Cal Henderson), written as WebDataset shards in img2dataset's layout
  (`KEY.png`, `KEY.txt`, `KEY.json`).

Run from the repository root: `python data/demo/make_demo_data.py` (needs `npm` unless
`--emoji-package` names an already downloaded `emoji-datasource-twitter-*.tgz`).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image

from unicl.data.arrays import read_idx, write_idx
from unicl.data.classes import KNOWN_CLASS_NAMES

EMOJI_PACKAGE = "emoji-datasource-twitter@16.0.0"


def make_fashion_mnist(source: Path, out: Path, counts: dict[str, int], seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        images = read_idx(source / f"{split}-images-idx3-ubyte.gz")
        labels = read_idx(source / f"{split}-labels-idx1-ubyte.gz")
        keep = np.sort(rng.choice(len(labels), size=count, replace=False))
        write_idx(out / f"{split}-images-idx3-ubyte.gz", images[keep])
        write_idx(out / f"{split}-labels-idx1-ubyte.gz", labels[keep])
    (out / "classes.txt").write_text("\n".join(KNOWN_CLASS_NAMES["fashion-mnist"]) + "\n")


def fetch_emoji_package(workdir: Path) -> Path:
    subprocess.run(["npm", "pack", EMOJI_PACKAGE], cwd=workdir, check=True)
    return next(workdir.glob("emoji-datasource-twitter-*.tgz"))


def emoji_caption(entry: dict) -> str:
    """The Unicode name and CLDR category of an emoji, e.g. 'grinning face (smileys & emotion)'."""
    return f"{entry['name'].lower()} ({entry['category'].lower()})"


def make_emoji(package: Path, out: Path, counts: dict[str, int], seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(package) as archive:
        entries = json.load(archive.extractfile("package/emoji.json"))
        entries = [e for e in entries if e["has_img_twitter"] and e["name"]]
        chosen = random.Random(seed).sample(entries, sum(counts.values()))
        start = 0
        for split, count in counts.items():
            pattern = str(out / f"{split}-%06d.tar")
            with wds.ShardWriter(pattern, maxcount=250, verbose=0, mtime=0) as writer:
                for entry in sorted(chosen[start : start + count], key=lambda e: e["sort_order"]):
                    png = archive.extractfile(f"package/img/twitter/64/{entry['image']}").read()
                    Image.open(io.BytesIO(png)).verify()
                    meta = {k: entry[k] for k in ("name", "unified", "category", "subcategory")}
                    writer.write(
                        {
                            "__key__": entry["unified"].lower(),
                            "png": png,
                            "txt": emoji_caption(entry),
                            "json": meta,
                        }
                    )
            start += count


def main() -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fashion-mnist", type=Path, default=Path("/usr/share/datasets/fashion-mnist")
    )
    parser.add_argument("--emoji-package", type=Path, help="emoji-datasource-twitter-*.tgz")
    parser.add_argument("--out", type=Path, default=here)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make_fashion_mnist(
        args.fashion_mnist, args.out / "fashion-mnist", {"train": 8000, "t10k": 2000}, args.seed
    )
    with tempfile.TemporaryDirectory() as workdir:
        package = args.emoji_package or fetch_emoji_package(Path(workdir))
        make_emoji(package, args.out / "emoji", {"train": 1000, "test": 200}, args.seed)


if __name__ == "__main__":
    main()
