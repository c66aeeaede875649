"""The full `unicl train` loop against the bare training step of the same towers.

Full loop: the training loop as `unicl train` runs it (batches from the data stream and its
workers, augmentation on the device, tokenisation, the UniCL loss, the per-step agreement,
clipping, schedule, logit-scale clamp, metrics bookkeeping), timed between consecutive batch
fetches. Bare step: a fresh model of the same config on one batch already augmented, tokenised
and on the device: forward, `UniCLLoss`, backward, AdamW step (fused on CUDA), under the run's
precision. Medians over steps after warm-up; prints Markdown. Both are run eager and with
`run.compile` (the towers compiled in place, as the loop compiles them).

    python benchmarks/train_step.py                        # CPU: configs/demo.yaml, 2 threads
    python benchmarks/train_step.py --steps 40 --set data.batch_size=64
    python benchmarks/train_step.py --device cuda          # GPU: ViT-B/16, 224 px, B = 256, bf16

`--device cuda` first writes 224 px training data (the demo's 8,000 Fashion-MNIST training images
and 1,000 emoji upscaled to 256 px JPEGs: an image folder and WebDataset shards) to a temporary
folder, trains `unicl-vit-b-16` on it with `data.num_workers` = cores - 2 (at most 14), and adds
OpenCLIP's ViT-B-16 + `ClipLoss` bare step on the same batch when `open_clip` can be imported.
`--setting gpu` runs that setting on any device: on a CPU, with a small batch and a few steps, it
checks the GPU benchmark end to end before a GPU's time is spent on it:

    python benchmarks/train_step.py --setting gpu --steps 1 --warmup 1 --no-compile \
        --set data.batch_size=4
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import platform
import statistics
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from PIL import Image

from unicl.data import open_source, parse_source
from unicl.data.source import decode
from unicl.models import create_model
from unicl.objective import UniCLLoss
from unicl.train import load_training_config
from unicl.train.launch import ProcessContext
from unicl.train.loop import run_loop
from unicl.train.signals import StopRequest
from unicl.train.state import compile_towers
from unicl.train.trainer import build_run

GPU_SIDE = 256
"""The side of the JPEGs written for the GPU benchmark (cropped to the model's 224)."""
DEMO_SOURCES = ("data/demo/fashion-mnist", "data/demo/emoji/train-{000000..000003}.tar")


def full_loop_times(config, warmup: int, device: torch.device) -> tuple[list[float], object]:
    """Seconds per step of the real loop, and its first batch prepared on the device."""
    state, batches, augment = build_run(config, ProcessContext(device=device))
    stamps: list[float] = []
    kept: list = []

    def timed():
        for batch in batches:
            stamps.append(time.perf_counter())
            if not kept:
                kept.append(batch)
            yield batch

    with StopRequest() as stop:
        run_loop(state, timed(), augment, lambda s: {}, stop)
    batches.close()
    batch = kept[0]
    inputs = state.objective.prepare(batch, augment, device)
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    return steps[warmup:], inputs


def bare_step_times(config, inputs, steps: int, warmup: int, device, compiled: bool) -> list[float]:
    """Seconds per bare step of a fresh model of `config.model.name` on `inputs`."""
    torch.manual_seed(0)
    model = create_model(config.model.name, **config.model.overrides).to(device).train()
    if compiled:
        compile_towers(model)
    criterion = UniCLLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.run.precision)

    def loss():
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            images, texts, scale = model(inputs["images"], inputs["tokens"])
            return criterion(images, texts, inputs["labels"], scale)

    return _timed(loss, optimizer, steps, warmup, device)


def openclip_step_times(inputs, steps: int, warmup: int, device, compiled: bool) -> list[float]:
    """Seconds per bare step of OpenCLIP's ViT-B-16 and `ClipLoss` on the same images and batch
    size (OpenCLIP's tokenizer on captions of typical length), bf16 autocast."""
    import open_clip  # only here: unicl never depends on it

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16").to(device).train()
    if compiled:
        model.compile()
    tokens = open_clip.get_tokenizer("ViT-B-16")(
        [f"a photo of a small object number {i}" for i in range(len(inputs["images"]))]
    ).to(device)
    criterion = open_clip.ClipLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")

    def loss():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = model(inputs["images"], tokens)
            if isinstance(out, dict):
                out = (out["image_features"], out["text_features"], out["logit_scale"])
            return criterion(*out[:3])

    return _timed(loss, optimizer, steps, warmup, device)


def _timed(loss, optimizer, steps: int, warmup: int, device) -> list[float]:
    times = []
    for _ in range(steps + warmup):
        start = time.perf_counter()
        loss().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times[warmup:]


def write_224px_data(directory: Path) -> list[str]:
    """The demo's Fashion-MNIST training images as an image folder and its emoji shards as
    WebDataset shards, every image upscaled to `GPU_SIDE` px and stored as a JPEG."""
    folder, shards = directory / "folder", directory / "shards"
    image_label = open_source(parse_source(DEMO_SOURCES[0] + "?take=0:8000"))
    image_text = open_source(parse_source(DEMO_SOURCES[1]))
    names = [name.replace("/", "-") for name in image_label.class_names]
    jobs = [(raw, folder / names[raw.class_id]) for raw in image_label.raw_samples()]
    with ProcessPoolExecutor(max(1, (os.cpu_count() or 2) - 1)) as pool:
        list(pool.map(_write_jpeg, jobs, chunksize=256))
    shards.mkdir(parents=True)
    samples = list(image_text.raw_samples())
    for index in range(4):
        with tarfile.open(shards / f"{index:06d}.tar", "w") as tar:
            for number, raw in enumerate(samples[index::4]):
                _add(tar, f"{index:02d}{number:05d}.jpg", _jpeg(decode(raw)[0]))
                _add(tar, f"{index:02d}{number:05d}.txt", raw.text.encode("utf-8"))
    return [str(folder), str(shards / "{000000..000003}.tar")]


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.resize((GPU_SIDE, GPU_SIDE), Image.BICUBIC).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _write_jpeg(job) -> None:
    raw, folder = job
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{raw.key.replace('/', '_').replace('#', '_')}.jpg").write_bytes(
        _jpeg(decode(raw)[0])
    )


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _median_row(name: str, times: list[float], batch: int) -> tuple[str, float]:
    median = statistics.median(times)
    return f"| {name} | {median:.3f} | {batch / median:.0f} |", median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument(
        "--setting",
        choices=("cpu", "gpu"),
        help="the run measured: cpu (demo config, default on a CPU) or gpu (ViT-B/16 at 224 px, "
        "B = 256, bf16; default on cuda)",
    )
    parser.add_argument("--config", help="default: configs/demo.yaml; the ViT-B/16 run on cuda")
    parser.add_argument("--steps", type=int, help="timed steps of each kind (30 CPU, 50 GPU)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (3 CPU, 10 GPU)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled runs")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    gpu = args.device == "cuda"
    gpu_setting = (args.setting or ("gpu" if gpu else "cpu")) == "gpu"
    steps = args.steps or (50 if gpu else 30)
    warmup = args.warmup or (10 if gpu else 3)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        defaults = [f"run.device={args.device}"]
        if gpu_setting:
            started = time.perf_counter()
            sources = write_224px_data(work / "data")
            print(f"wrote 224 px data in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            workers = min(14, max(1, (os.cpu_count() or 2) - 2))
            defaults += [
                "model.name=unicl-vit-b-16",
                f"data.sources={sources}",
                "data.batch_size=256",
                f"data.num_workers={workers}",
                "optim.lr=5.0e-4",
                "run.precision=bf16",
                "run.threads=null",
            ]
        rows, medians = [], {}
        compile_modes = (False,) if args.no_compile else (False, True)
        for compiled in compile_modes:
            config = load_training_config(
                args.config or "configs/demo.yaml",
                [
                    *defaults,
                    f"schedule.steps={steps + warmup + 1}",
                    "schedule.warmup_steps=1",
                    f"checkpoint.every_steps={10**9}",
                    "evaluation.zeroshot=[]",
                    "logging.progress=false",
                    f"logging.every_steps={10**9}",
                    f"run.output_dir={work / f'run-{compiled}'}",
                    f"run.compile={str(compiled).lower()}",
                    *args.overrides,
                ],
            )
            batch = config.data.batch_size * config.data.accumulation_steps
            label = "compiled" if compiled else "eager"
            full, inputs = full_loop_times(config, warmup, device)
            name = f"full `unicl train` loop, {label}"
            row, medians[f"full {label}"] = _median_row(name, full, batch)
            rows.append(row)
            bare = bare_step_times(config, inputs, steps, warmup, device, compiled)
            row, medians[f"bare {label}"] = _median_row(f"bare unicl step, {label}", bare, batch)
            rows.append(row)
            if gpu_setting:
                try:
                    other = openclip_step_times(inputs, steps, warmup, device, compiled)
                    row, _ = _median_row(f"OpenCLIP ViT-B-16 bare step, {label}", other, batch)
                except ImportError:
                    row = f"| OpenCLIP ViT-B-16 bare step, {label} | open_clip not installed | - |"
                rows.append(row)
            del inputs
            torch._dynamo.reset()
            if gpu:
                torch.cuda.empty_cache()
    where = torch.cuda.get_device_name() if gpu else platform.processor() or platform.machine()
    print(
        f"`python benchmarks/train_step.py {' '.join(sys.argv[1:])}` on {where}, "
        f"{args.threads} threads, torch {torch.__version__}; {config.model.name}, batch {batch}, "
        f"{config.run.precision}, {config.data.num_workers} data worker(s), medians of {steps} "
        f"steps after {warmup}.\n"
    )
    print("| step | median s/step | samples/s |")
    print("| --- | --- | --- |")
    print("\n".join(rows))
    print()
    for label in ("eager", "compiled")[: len(compile_modes)]:
        ratio = medians[f"bare {label}"] / medians[f"full {label}"]
        print(f"{label}: the full loop runs at {100 * ratio:.0f}% of the bare step's rate")


if __name__ == "__main__":
    main()
