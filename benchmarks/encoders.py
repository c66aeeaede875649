"""Images per second of every image encoder: forward (inference) and forward + backward (training).

Each encoder runs at its usual resolution (224 px; `unicl-tiny`'s trunk at 32 px) on a batch of 32
random images. Times are medians over repeats after one warm-up; an encoder stops repeating once it
has used its time budget, so the largest encoders may report fewer repeats (the `n` column).
Prints a Markdown table for docs/performance.md.

    python benchmarks/encoders.py                         # all encoders, 2 threads
    python benchmarks/encoders.py --encoders resnet50 vit-b-16 --repeats 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from unicl.models import create_model
from unicl.models.factory import build_image_encoder

ENCODERS = (
    "unicl-tiny",
    "resnet18",
    "resnet50",
    "resnet101",
    "swin-t",
    "swin-s",
    "swin-b",
    "vit-ti-16",
    "vit-ti-32",
    "vit-s-16",
    "vit-s-32",
    "vit-b-16",
    "vit-b-32",
)


def build(name: str) -> tuple[torch.nn.Module, int]:
    """The trunk and its usual input size."""
    if name == "unicl-tiny":
        model = create_model("unicl-tiny")
        return model.image_encoder, model.image_size
    return build_image_encoder({"arch": name}, image_size=224), 224


def time_runs(step, repeats: int, budget_s: float) -> list[float]:
    step()
    times, started = [], time.perf_counter()
    while len(times) < repeats and (not times or time.perf_counter() - started < budget_s):
        begin = time.perf_counter()
        step()
        times.append(time.perf_counter() - begin)
    return times


def measure(name: str, batch: int, repeats: int, budget_s: float) -> dict:
    encoder, size = build(name)
    images = torch.randn(batch, 3, size, size)

    def forward():
        with torch.inference_mode():
            encoder.eval()(images)

    def forward_backward():
        encoder.train().zero_grad(set_to_none=True)
        encoder(images).square().mean().backward()

    inference = time_runs(forward, repeats, budget_s)
    training = time_runs(forward_backward, repeats, budget_s)
    return {
        "name": name,
        "size": size,
        "params": sum(p.numel() for p in encoder.parameters()),
        "forward": batch / statistics.median(inference),
        "train": batch / statistics.median(training),
        "n": min(len(inference), len(training)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=ENCODERS)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=30.0, help="timed seconds per mode")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{args.threads} threads, batch {args.batch}, float32\n"
    )
    print(
        "| encoder | input | params (M) | forward img/s | forward+backward img/s | fwd/train | n |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in args.encoders:
        row = measure(name, args.batch, args.repeats, args.budget_s)
        print(
            f"| {row['name']} | {row['size']} px | {row['params'] / 1e6:.2f} | "
            f"{row['forward']:.1f} | {row['train']:.1f} | {row['forward'] / row['train']:.1f} | "
            f"{row['n']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
