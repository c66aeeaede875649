"""Overhead of `unicl train`'s step over the bare forward + backward + optimiser step.

Full step: the training loop as `unicl train` runs it (batches from the data stream and its
workers, augmentation on the device, tokenisation, the UniCL loss, non-finite checks, clipping,
schedule, logit-scale clamp, metrics bookkeeping), timed between consecutive batch fetches.
Floor: the same model (same weights) and AdamW on one batch already augmented and tokenised in
memory, `model(images, tokens)`, a trivial scalar (`sum(image * text) * scale`), backward, step.
Overhead = full / floor - 1 (goal <= 15%). Medians over steps after warm-up; prints Markdown.

    python benchmarks/train_step.py                        # configs/demo.yaml, 2 threads
    python benchmarks/train_step.py --steps 40 --set data.batch_size=64
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import sys
import tempfile
import time

import torch

from unicl.train import load_training_config
from unicl.train.launch import ProcessContext
from unicl.train.loop import run_loop
from unicl.train.signals import StopRequest
from unicl.train.trainer import build_run


def full_step_times(config, warmup: int) -> tuple[list[float], object, object]:
    """Seconds per step of the real loop, and one (images, tokens) batch for the floor."""
    context = ProcessContext(device=torch.device("cpu"))
    state, batches, augment = build_run(config, context)
    stamps: list[float] = []
    kept: list = []

    def timed():
        for batch in batches:
            stamps.append(time.perf_counter())
            if not kept:
                kept.append(batch)
            yield batch

    initial = {k: v.clone() for k, v in state.objective.model.state_dict().items()}
    with StopRequest() as stop:
        run_loop(state, timed(), augment, lambda s: {}, stop)
    batches.close()
    model = state.objective.model
    model.load_state_dict(initial)
    batch = kept[0]
    images = augment(batch.images, batch.class_ids)
    tokens = model.tokenize(batch.texts)
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    return steps[warmup:], model, (images, tokens)


def floor_step_times(model, inputs, steps: int, warmup: int) -> list[float]:
    images, tokens = inputs
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    times = []
    for _ in range(steps + warmup):
        start = time.perf_counter()
        image_features, text_features, scale = model(images, tokens)
        ((image_features * text_features).sum() * scale).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return times[warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--steps", type=int, default=30, help="timed steps of each kind")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as output:
        config = load_training_config(
            args.config,
            [
                f"schedule.steps={args.steps + args.warmup + 1}",
                "schedule.warmup_steps=1",
                f"checkpoint.every_steps={10**9}",
                "evaluation.zeroshot=[]",
                "logging.progress=false",
                f"run.output_dir={output}",
                "run.device=cpu",
                *args.overrides,
            ],
        )
        full, model, inputs = full_step_times(config, args.warmup)
    floor = floor_step_times(model, inputs, args.steps, args.warmup)
    full_s, floor_s = statistics.median(full), statistics.median(floor)
    batch = config.data.batch_size * config.data.accumulation_steps
    print(
        f"`python benchmarks/train_step.py {' '.join(sys.argv[1:])}`"
        f" on {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"torch {torch.__version__}; {config.model.name}, batch {batch}, "
        f"{config.data.num_workers} data worker(s), medians of {args.steps} steps.\n"
    )
    print("| step | median s/step | samples/s |")
    print("| --- | --- | --- |")
    print(f"| bare forward + backward + AdamW (floor) | {floor_s:.3f} | {batch / floor_s:.0f} |")
    print(f"| full `unicl train` step | {full_s:.3f} | {batch / full_s:.0f} |")
    print(f"\noverhead: {100 * (full_s / floor_s - 1):+.1f}% (goal <= 15%)")


if __name__ == "__main__":
    main()
