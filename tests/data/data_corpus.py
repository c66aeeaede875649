"""Real test corpora: the shipped demo subsets, rewritten into every supported format."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image

from unicl.data.arrays import read_idx, write_idx
from unicl.data.classes import KNOWN_CLASS_NAMES
from unicl.data.shards import iterate_shard

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"
FASHION = DEMO / "fashion-mnist"
EMOJI_TRAIN = str(DEMO / "emoji" / "train-{000000..000003}.tar")
EMOJI_TEST = str(DEMO / "emoji" / "test-000000.tar")
CLASSES = KNOWN_CLASS_NAMES["fashion-mnist"]


def fashion_arrays(count: int, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """The first `count` Fashion-MNIST images uint8 [N,28,28] and labels [N] of the demo split."""
    images = read_idx(FASHION / f"{split}-images-idx3-ubyte.gz")[:count]
    labels = read_idx(FASHION / f"{split}-labels-idx1-ubyte.gz")[:count]
    return images, labels


def emoji_pairs(count: int) -> list[tuple[str, bytes, str]]:
    """(key, PNG bytes, caption) of the first `count` demo emoji (held-out shard)."""
    pairs = []
    for sample in iterate_shard(EMOJI_TEST):
        pairs.append((sample["__key__"], sample["png"], sample["txt"].decode()))
        if len(pairs) == count:
            break
    return pairs


def write_image_folder(root: Path, count: int, suffix: str = ".png") -> Path:
    """Fashion-MNIST as ROOT/<class name>/<index><suffix>; returns ROOT."""
    images, labels = fashion_arrays(count)
    for index, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{index:05d}{suffix}")
    return root


def write_caption_manifest(root: Path, count: int, kind: str = "csv") -> Path:
    """Emoji PNG files plus a csv/tsv/jsonl manifest (filepath, caption); returns the manifest."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for key, png, caption in emoji_pairs(count):
        (root / "images" / f"{key}.png").write_bytes(png)
        rows.append({"filepath": f"images/{key}.png", "caption": caption})
    manifest = root / f"captions.{kind}"
    with manifest.open("w", newline="", encoding="utf-8") as file:
        if kind == "jsonl":
            file.writelines(json.dumps(row) + "\n" for row in rows)
        else:
            writer = csv.DictWriter(
                file, ["filepath", "caption"], delimiter="\t" if kind == "tsv" else ","
            )
            writer.writeheader()
            writer.writerows(rows)
    return manifest


def write_label_shards(root: Path, count: int, per_shard: int) -> str:
    """Fashion-MNIST as JPEG + cls WebDataset shards; returns the brace pattern."""
    root.mkdir(parents=True, exist_ok=True)
    images, labels = fashion_arrays(count)
    with wds.ShardWriter(str(root / "part-%04d.tar"), maxcount=per_shard, verbose=0) as writer:
        for index, (pixels, label) in enumerate(zip(images, labels, strict=True)):
            writer.write(
                {"__key__": f"{index:05d}", "jpg": Image.fromarray(pixels), "cls": int(label)}
            )
    last = (count - 1) // per_shard
    return str(root / f"part-{{0000..{last:04d}}}.tar")


def write_idx_folder(root: Path, counts: dict[str, int]) -> Path:
    """A small Fashion-MNIST folder in the Debian layout: `{split}-images-idx3-ubyte.gz` etc."""
    root.mkdir(parents=True, exist_ok=True)
    for split, count in counts.items():
        images, labels = fashion_arrays(count, split)
        write_idx(root / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", labels)
    return root
