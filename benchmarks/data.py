"""Samples/s of one data worker: the unified stream from shards against a bare Pillow decode.

For each corpus of WebDataset shards (the demo's Twemoji PNGs; the demo's Fashion-MNIST images
written as JPEG shards) it times, in this one process (= one DataLoader worker):

- bare: webdataset reads the tar shards and Pillow decodes each image to RGB, nothing else;
- stream: `UnifiedStream(num_workers=0)` over the same shards: decode, transparency handling,
  fit to the crop, uint8 batches, prompts and TargetM labels;
- stream + augment: the same followed by `BatchAugment` (kornia) on this CPU; in training this
  step runs on the accelerator, outside the workers.

Each corpus is cropped at its native size (pure pipeline cost) and at `--image-size` (adds
resampling, which bare decoding does not do). Medians of `--repeats` passes after one warm-up,
the three runs alternating so that load from other processes affects them alike.
Goal: stream >= 80% of bare.

    python benchmarks/data.py                 # 5 repeats, second crop 96
    python benchmarks/data.py --repeats 3 --image-size 64
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import webdataset as wds
from PIL import Image

from unicl.data import BatchAugment, UnifiedStream
from unicl.data.arrays import read_idx
from unicl.data.shards import IMAGE_EXTENSIONS, expand_shards, iterate_shard

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def bare_decode(pattern: str) -> int:
    count = 0
    for url in expand_shards(pattern):
        for sample in iterate_shard(url):
            data = next(sample[e] for e in IMAGE_EXTENSIONS if e in sample)
            Image.open(io.BytesIO(data)).convert("RGB")
            count += 1
    return count


def stream_pass(stream: UnifiedStream, augment: BatchAugment | None) -> int:
    count = 0
    for batch in stream:
        if augment is not None:
            augment(batch.images, batch.class_ids)
        count += len(batch)
    return count


def interleaved_rates(runs: dict, repeats: int) -> dict[str, float]:
    """Median samples/s of each run; the runs alternate within each repeat."""
    for run in runs.values():
        run()
    rates = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            count = run()
            rates[name].append(count / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def fashion_jpeg_shards(folder: Path) -> str:
    """The demo's 8,000 Fashion-MNIST training images as JPEG (quality 90) + cls shards."""
    images = read_idx(DEMO / "fashion-mnist" / "train-images-idx3-ubyte.gz")
    labels = read_idx(DEMO / "fashion-mnist" / "train-labels-idx1-ubyte.gz")
    with wds.ShardWriter(str(folder / "fashion-%06d.tar"), maxcount=2000, verbose=0) as sink:
        for index, (pixels, label) in enumerate(zip(images, labels, strict=True)):
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
            sink.write({"__key__": f"{index:06d}", "jpg": buffer.getvalue(), "cls": int(label)})
    return str(folder / "fashion-{000000..000003}.tar")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=96, help="second, resampled crop")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        corpora = {
            "Twemoji PNG 64x64 RGBA, 1,000 (demo shards)": (
                {"location": str(DEMO / "emoji" / "train-{000000..000003}.tar")},
                64,
            ),
            "Fashion-MNIST JPEG 28x28, 8,000 (demo images as shards)": (
                {"location": fashion_jpeg_shards(Path(work)), "classes": "fashion-mnist"},
                28,
            ),
        }
        print(f"{platform.machine()}, {os.cpu_count()} cores (shared), torch {torch.__version__}")
        print(f"1 thread, batch {args.batch_size}, median of {args.repeats} passes per corpus")
        print(
            "| corpus | crop | bare decode (samples/s) | stream (samples/s) | stream / bare "
            "| stream + BatchAugment on CPU (samples/s) |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, (spec, native) in corpora.items():
            for crop in (native, args.image_size):
                stream = UnifiedStream([spec], batch_size=args.batch_size, image_size=crop)
                augment = BatchAugment(crop)
                rates = interleaved_rates(
                    {
                        "bare": lambda spec=spec: bare_decode(spec["location"]),
                        "stream": lambda stream=stream: stream_pass(stream, None),
                        "augmented": lambda s=stream, a=augment: stream_pass(s, a),
                    },
                    args.repeats,
                )
                print(
                    f"| {name} | {crop} | {rates['bare']:,.0f} | {rates['stream']:,.0f} | "
                    f"{rates['stream'] / rates['bare']:.0%} | {rates['augmented']:,.0f} |"
                )


if __name__ == "__main__":
    main()
