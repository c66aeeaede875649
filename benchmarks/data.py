"""Samples/s of the data path: one worker against a bare decode, and W workers against W x one.

1. Small images. For each corpus of WebDataset shards (the demo's Twemoji PNGs; the demo's
Fashion-MNIST images written as JPEG shards) it times, in this one process (= one DataLoader
worker):

- bare: webdataset reads the tar shards and Pillow decodes each image to RGB, nothing else;
- stream: `UnifiedStream(num_workers=0)` over the same shards: decode, transparency handling,
  fit to the crop, uint8 batches, prompts and TargetM labels;
- stream + augment: the same followed by `BatchAugment` (kornia) on this CPU; in training this
  step runs on the accelerator, outside the workers.

Each corpus is cropped at its native size (pure pipeline cost) and at `--image-size` (adds
resampling, which bare decoding does not do). Medians of `--repeats` passes after one warm-up,
the runs alternating so that load from other processes affects them alike.
Goal: stream >= 80% of bare.

2. 224 px from larger JPEGs: the demo's Fashion-MNIST images (`--images` of them, with class
shards) and its 1,000 emoji (with captions, over white), upscaled to `--side` px JPEGs
(quality 90) in `--shards` shards each. One process times webdataset + Pillow decode + Pillow's
bicubic fit to 224 (bare), the same with JPEG draft decoding (bare + draft), and the stream's
worker path (draft, fit, batch, prompts, TargetM labels, tokens of the `bpe-4k` tokenizer).
Goal: stream >= 80% of bare.

3. Workers: `UnifiedStream(num_workers=W)` over the same shards, read without end as training
reads it (epoch after epoch), for each W of `--workers` (default 0, 1, 2, 4, ... up to the
cores). With a GPU, each batch is copied (pinned, non-blocking) to it and augmented there by
`BatchAugment`, as the training loop does. After the first 2W batches the stream is read as fast
as it delivers for `--seconds` and two epoch boundaries: samples/s, the ratio to W x the
one-worker rate (goal >= 80%), the main process's CPU time per batch. Then simulated training
work after each batch holds the stream at 80% load for two more epoch boundaries: the median
wait for a batch and the longest wait for the first batch of an epoch (goal: no longer than
the median, no dip at epoch boundaries).

4. Fewer shards than consumers: the same images in `--few-shards` shards per source, read by one
consumer of C (rank 0 of C ranks, no workers; C from `--consumers`), which keeps every C-th
sample of every shard. Each kept sample should cost what it costs at C = 1, so a consumer's rate
at C against C = 1 is the share of scaling that the data layout allows (goal >= 80%), through
the tar index (`unicl.data.tar_index`) and, for comparison, streaming every shard whole.

    python benchmarks/data.py                      # everything; on a GPU machine as well
    python benchmarks/data.py --cases 224 workers --repeats 3 --workers 1 2
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import PIL
import torch
import webdataset as wds
from jpeg_shards import EMOJI, fashion_jpeg_shards, large_jpeg_corpus
from PIL import Image, ImageOps

from unicl.data import BatchAugment, UnifiedStream, shards
from unicl.data.shards import IMAGE_EXTENSIONS, expand_shards, iterate_shard
from unicl.models.tokenizer import Tokenizer


def bare_decode(patterns: list[str], fit: int | None = None, draft: bool = False) -> int:
    """webdataset reads the shards, Pillow decodes each image to RGB; with `fit`, Pillow's
    bicubic centre fit to `fit` px (torchvision's Resize + CenterCrop), from a JPEG draft decode
    when `draft`. Returns the number of samples."""
    count = 0
    for url in (url for pattern in patterns for url in expand_shards(pattern)):
        for sample in iterate_shard(url):
            image = Image.open(io.BytesIO(next(sample[e] for e in IMAGE_EXTENSIONS if e in sample)))
            if draft:
                image.draft("RGB", (fit, fit))
            image = image.convert("RGB")
            if fit is not None:
                ImageOps.fit(image, (fit, fit), method=Image.Resampling.BICUBIC)
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


def small_images(args: argparse.Namespace) -> None:
    """Case 1: one worker on the demo's small images, at their native size and at a crop."""
    with tempfile.TemporaryDirectory() as work:
        corpora = {
            "Twemoji PNG 64x64 RGBA, 1,000 (demo shards)": ({"location": EMOJI}, 64),
            "Fashion-MNIST JPEG 28x28, 8,000 (demo images as shards)": (
                {"location": fashion_jpeg_shards(Path(work)), "classes": "fashion-mnist"},
                28,
            ),
        }
        print(f"\n1 thread, batch {args.batch_size}, median of {args.repeats} passes per corpus\n")
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
                        "bare": lambda spec=spec: bare_decode([spec["location"]]),
                        "stream": lambda stream=stream: stream_pass(stream, None),
                        "augmented": lambda s=stream, a=augment: stream_pass(s, a),
                    },
                    args.repeats,
                )
                print(
                    f"| {name} | {crop} | {rates['bare']:,.0f} | {rates['stream']:,.0f} | "
                    f"{rates['stream'] / rates['bare']:.0%} | {rates['augmented']:,.0f} |"
                )


def large_jpegs(args: argparse.Namespace, sources: list[dict], tokenizer: Tokenizer) -> float:
    """Case 2: one worker at 224 px from large JPEGs against a bare decode + resize; returns the
    stream's rate."""
    stream = UnifiedStream(sources, batch_size=args.batch_size, image_size=224, tokenize=tokenizer)
    patterns = [source["location"] for source in sources]
    rates = interleaved_rates(
        {
            "bare": lambda: bare_decode(patterns, fit=224),
            "draft": lambda: bare_decode(patterns, fit=224, draft=True),
            "stream": lambda: stream_pass(stream, None),
        },
        args.repeats,
    )
    print(
        f"\n{args.images:,} Fashion-MNIST + 1,000 emoji as {args.side} px JPEGs, "
        f"{args.shards} shards each; 1 thread, batch {args.batch_size}, "
        f"median of {args.repeats} passes\n"
    )
    print(
        "| crop | bare: decode + Pillow fit | bare + draft | stream (1 worker) "
        "| stream / bare | stream / (bare + draft) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| 224 | {rates['bare']:,.0f} | {rates['draft']:,.0f} | {rates['stream']:,.0f} | "
        f"{rates['stream'] / rates['bare']:.0%} | {rates['stream'] / rates['draft']:.0%} |"
    )
    return rates["stream"]


class Reader:
    """Reads a stream without end as training does (a GPU, if any, receives and augments each
    batch) and notes when each batch arrived and whether it opened an epoch."""

    def __init__(self, stream: UnifiedStream, device: torch.device | None) -> None:
        self.stream, self.device = stream, device
        self.augment = BatchAugment(224).to(device) if device is not None else None
        self.batches = (batch for _ in itertools.count() for batch in stream)

    def read(self, count: int = 0, seconds: float = 0.0, pace: float = 0.0) -> dict[str, list]:
        """At least `count` batches, `seconds` and two epoch boundaries; `pace` s of simulated
        training work after each batch. Returns the waits for each batch (s) and whether it was
        the first of an epoch."""
        stream = self.stream
        waits, first, start = [], [], time.perf_counter()
        end_epoch = stream.epoch + 2 if count == 0 else 0
        while (
            len(waits) < count
            or time.perf_counter() - start < seconds
            or (stream.epoch < end_epoch)
        ):
            asked = time.perf_counter()
            batch = next(self.batches)
            if self.device is not None:
                self.augment(batch.images.to(self.device, non_blocking=True), batch.class_ids)
                batch.tokens.to(self.device, non_blocking=True)
                torch.cuda.synchronize()
            waits.append(time.perf_counter() - asked)
            first.append(stream.state_dict()["batches"] == 1)
            if pace:
                time.sleep(pace)
        return {"waits": waits, "first": first, "seconds": time.perf_counter() - start}


def worker_rate(
    args: argparse.Namespace, sources: list[dict], tokenizer: Tokenizer, workers: int
) -> dict[str, float]:
    """Case 3 for one worker count: samples/s and the main process's CPU ms per batch, read as
    fast as the stream delivers; then, with simulated training work after each batch that takes
    the stream to 80% load, the median wait for a batch and the longest at an epoch start."""
    device = torch.device("cuda") if torch.cuda.is_available() else None
    stream = UnifiedStream(
        sources,
        batch_size=args.batch_size,
        image_size=224,
        num_workers=workers,
        tokenize=tokenizer,
        pin_memory=device is not None,
        prefetch_factor=args.prefetch_factor,
    )
    reader = Reader(stream, device)
    reader.read(count=2 * max(workers, 1))  # the workers start, shuffle buffers fill
    cpu = time.process_time()
    fast = reader.read(seconds=args.seconds)
    cpu = time.process_time() - cpu
    rate = len(fast["waits"]) * args.batch_size / fast["seconds"]
    result = {"rate": rate, "cpu_ms": 1000 * cpu / len(fast["waits"])}
    if workers:
        paced = reader.read(pace=args.batch_size / (0.8 * rate))
        waits = paced["waits"][1:]  # the first one waited for the pipeline to refill
        at_start = [wait for wait, first in zip(waits, paced["first"][1:], strict=True) if first]
        result.update(median_wait_ms=1000 * statistics.median(waits), start_ms=1000 * max(at_start))
    stream.close()
    return result


def scaling(args: argparse.Namespace, sources: list[dict], tokenizer: Tokenizer) -> None:
    """Case 3: W workers against W x one worker's rate, and the wait at an epoch start."""
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(
        f"\nUnifiedStream(num_workers=W, prefetch_factor={args.prefetch_factor}), 224 px, batch "
        f"{args.batch_size}, read for {args.seconds:g} s after 2W batches; to a GPU: {device}\n"
    )
    print(
        "| W | samples/s | / (W x one worker) | main-process CPU ms per batch "
        "| at 80% load: median wait for a batch (ms) | longest wait at an epoch start (ms) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    one = None
    for workers in args.workers:
        result = worker_rate(args, sources, tokenizer, workers)
        one = result["rate"] if workers == 1 else one
        ratio = f"{result['rate'] / (workers * one):.0%}" if one and workers else "-"
        waits = f"{result['median_wait_ms']:.0f} | {result['start_ms']:.0f}" if workers else "- | -"
        print(
            f"| {workers or '0 (main process)'} | {result['rate']:,.0f} | {ratio} | "
            f"{result['cpu_ms']:.1f} | {waits} |"
        )


def consumer_pass(stream: UnifiedStream, minimum: int) -> int:
    """Whole epochs of `stream` until at least `minimum` samples."""
    count = 0
    while count < minimum:
        count += stream_pass(stream, None)
    return count


def streamed_pass(stream: UnifiedStream, minimum: int) -> int:
    """The same with the tar index turned off: every consumer streams every shard whole."""
    with mock.patch.object(shards, "sample_index", lambda path: None):
        return consumer_pass(stream, minimum)


def one_consumer_of_many(args: argparse.Namespace, tokenizer: Tokenizer) -> None:
    """Case 4: one consumer (rank 0 of C, no workers) over fewer shards than consumers."""
    print(
        f"\nOne consumer of C (rank 0 of C, no workers), 224 px, batch {args.batch_size}: "
        f"{args.images:,} Fashion-MNIST + 1,000 emoji as {args.side} px JPEGs in "
        f"{args.few_shards} shards each; median of {args.repeats} passes of >= 1,000 samples\n"
    )
    print("| C | indexed (samples/s) | / C = 1 | streamed (samples/s) | / C = 1 |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as work:
        sources = large_jpeg_corpus(Path(work), args.images, args.side, args.few_shards)
        first = None
        for consumers in args.consumers:
            stream = UnifiedStream(
                sources,
                batch_size=args.batch_size,
                image_size=224,
                tokenize=tokenizer,
                world_size=consumers,
            )
            rates = interleaved_rates(
                {
                    "indexed": lambda stream=stream: consumer_pass(stream, 1000),
                    "streamed": lambda stream=stream: streamed_pass(stream, 1000),
                },
                args.repeats,
            )
            first = first or rates
            print(
                f"| {consumers} | {rates['indexed']:,.0f} | "
                f"{rates['indexed'] / first['indexed']:.0%} | {rates['streamed']:,.0f} | "
                f"{rates['streamed'] / first['streamed']:.0%} |"
            )


def default_workers() -> list[int]:
    cores = os.cpu_count() or 1
    return sorted({0, 1, cores, *(2**k for k in range(1, cores.bit_length()) if 2**k < cores)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["small", "224", "workers", "consumers"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=96, help="case 1: second crop")
    parser.add_argument("--images", type=int, default=2000, help="Fashion-MNIST images, 2 and 3")
    parser.add_argument("--side", type=int, default=512, help="JPEG side of cases 2 and 3")
    parser.add_argument("--shards", type=int, default=max(32, os.cpu_count() or 1))
    parser.add_argument("--workers", type=int, nargs="+", default=default_workers())
    parser.add_argument("--seconds", type=float, default=10.0, help="case 3: time per W")
    parser.add_argument("--prefetch-factor", type=int, default=2, help="case 3")
    parser.add_argument("--few-shards", type=int, default=2, help="case 4: shards per source")
    parser.add_argument("--consumers", type=int, nargs="+", default=[1, 2, 4, 8, 14], help="case 4")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"Pillow {PIL.__version__}, webdataset {wds.__version__}"
    )
    if "small" in args.cases:
        small_images(args)
    tokenizer = Tokenizer.from_file("bpe-4k", 77)
    if {"224", "workers"} & set(args.cases):
        with tempfile.TemporaryDirectory() as work:
            sources = large_jpeg_corpus(Path(work), args.images, args.side, args.shards)
            if "224" in args.cases:
                large_jpegs(args, sources, tokenizer)
            if "workers" in args.cases:
                scaling(args, sources, tokenizer)
    if "consumers" in args.cases:
        one_consumer_of_many(args, tokenizer)


if __name__ == "__main__":
    main()
