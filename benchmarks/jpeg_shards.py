"""The WebDataset JPEG shards that `benchmarks/data.py` reads, written from the demo data."""

from __future__ import annotations

import io
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image

from unicl.data.arrays import read_idx
from unicl.data.images import to_rgb
from unicl.data.shards import expand_shards, iterate_shard

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
FASHION = DEMO / "fashion-mnist"
EMOJI = str(DEMO / "emoji" / "train-{000000..000003}.tar")


def fashion_jpeg_shards(folder: Path) -> str:
    """The demo's 8,000 Fashion-MNIST training images as JPEG (quality 90) + cls shards."""
    images = read_idx(FASHION / "train-images-idx3-ubyte.gz")
    labels = read_idx(FASHION / "train-labels-idx1-ubyte.gz")
    with wds.ShardWriter(str(folder / "fashion-%06d.tar"), maxcount=2000, verbose=0) as sink:
        for index, (pixels, label) in enumerate(zip(images, labels, strict=True)):
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
            sink.write({"__key__": f"{index:06d}", "jpg": buffer.getvalue(), "cls": int(label)})
    return str(folder / "fashion-{000000..000003}.tar")


def _upscaled_jpeg(pixels, side: int) -> bytes:
    buffer = io.BytesIO()
    to_rgb(Image.fromarray(pixels)).resize((side, side), Image.Resampling.BICUBIC).save(
        buffer, format="JPEG", quality=90
    )
    return buffer.getvalue()


def _write_shard(job: tuple[str, list[dict], int]) -> None:
    path, samples, side = job
    with wds.TarWriter(path) as sink:
        for sample in samples:
            pixels = sample.pop("pixels")
            sink.write({**sample, "jpg": _upscaled_jpeg(pixels, side)})


def large_jpeg_corpus(folder: Path, images: int, side: int, shards: int) -> list[dict]:
    """`images` Fashion-MNIST training images (class shards) and the 1,000 demo emoji (caption
    shards), upscaled to `side` px JPEGs, `shards` shards each: the sources of cases 2 and 3."""
    pixels = read_idx(FASHION / "train-images-idx3-ubyte.gz")[:images]
    labels = read_idx(FASHION / "train-labels-idx1-ubyte.gz")[:images]
    fashion = [
        {"__key__": f"{i:06d}", "pixels": p, "cls": int(c)}
        for i, (p, c) in enumerate(zip(pixels, labels, strict=True))
    ]
    emoji = [
        {
            "__key__": sample["__key__"],
            "pixels": np.asarray(Image.open(io.BytesIO(sample["png"])).convert("RGBA")),
            "txt": sample["txt"],
        }
        for url in expand_shards(EMOJI)
        for sample in iterate_shard(url)
    ]
    jobs = [
        (str(folder / f"{name}-{shard:06d}.tar"), samples[shard::shards], side)
        for name, samples in (("fashion", fashion), ("emoji", emoji))
        for shard in range(shards)
    ]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_write_shard, jobs))
    last = f"{shards - 1:06d}"
    return [
        {"location": str(folder / f"fashion-{{000000..{last}}}.tar"), "classes": "fashion-mnist"},
        {"location": str(folder / f"emoji-{{000000..{last}}}.tar")},
    ]
