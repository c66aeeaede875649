"""Forward + backward time and peak memory of the UniCL loss against a plain CLIP loss, and the
speed and accuracy of the tiled loss at each tile precision (fp32, tf32, bf16).

Every (method, batch size) runs in a fresh subprocess so that its peak memory is its own: on CPU the
peak resident set above what the process held once its inputs existed, on CUDA the allocator's peak.
Times are medians over repeats after one warm-up (none at B > 16384, where one step takes minutes). A configuration whose memory, extrapolated from the
measured smaller sizes as ``bytes per B**2``, exceeds what the machine has is reported as not fitting
instead of being run (it would only be killed).

    python benchmarks/loss.py                      # B in 1024 4096 16384 65536, D = 512
    python benchmarks/loss.py --sizes 1024 4096 --repeats 3
    python benchmarks/loss.py --accuracy --sizes 4096 16384   # tile precisions against float64
    python benchmarks/loss.py --tiles --sizes 4096 16384      # precisions, eager and compiled

On a GPU, one command times the tiled loss at every precision, with its elementwise work eager and
compiled (`tile_compile`), at B = 65,536 and 262,144, then B = 1,048,576 with compiled TF32 and
bf16 tiles, and measures the precisions' accuracy:

    python benchmarks/loss.py --device cuda --gpu

`--accuracy` compares the loss and its gradients at each tile precision with a float64 reference,
on features shaped like a trained model's (class clusters, captions near their image, scale 100).
Without CUDA, tf32 is emulated (operands rounded to TF32's 10 mantissa bits, float32 sums: what a
tensor core does) and bf16 runs on bfloat16-rounded operands with float32 sums, as on CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from unicl import target_labels, unicl_loss
from unicl.objective import logsumexp, tiles

METHODS = ("clip", "unicl-dense", "unicl-tiled")
PRECISIONS = tiles.TILE_PRECISIONS
VARIANTS = tuple((p, compile) for p in PRECISIONS for compile in (False, True))
"""Every (tile precision, compiled tiles) pair."""
GPU_SIZES = (65536, 262144)
"""Where `--gpu` times every variant; B = 1,048,576 only with compiled TF32 and bf16 tiles."""


def clip_loss(image_features, text_features, logit_scale):
    """OpenCLIP's ClipLoss on one process: the baseline."""
    logits = logit_scale * image_features @ text_features.T
    targets = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def tile_size_for(batch: int) -> int:
    return min(4096, max(batch // 4, 1))


def mixed_labels(batch: int, device: torch.device) -> torch.Tensor:
    """Half image-label samples over 1000 classes, half captions: a UniCL batch."""
    class_ids = torch.randint(0, 1000, (batch,))
    class_ids[batch // 2 :] = -1
    captions = [f"caption {i}" for i in range(batch)]
    return target_labels(class_ids, captions).to(device)


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(
    method: str,
    batch: int,
    dim: int,
    repeats: int,
    device: torch.device,
    precision: str = "fp32",
    compile: bool = False,
) -> dict:
    """Run one configuration in this process; return its median time and peak extra memory.
    With `compile` (tiled only) the tiles' elementwise work is compiled; the warm-up compiles."""
    generator = torch.Generator(device=device).manual_seed(0)
    images = F.normalize(torch.randn(batch, dim, device=device, generator=generator), dim=1)
    texts = F.normalize(torch.randn(batch, dim, device=device, generator=generator), dim=1)
    images.requires_grad_()
    texts.requires_grad_()
    scale = torch.tensor(100.0, device=device, requires_grad=True)
    labels = mixed_labels(batch, device)

    def step():
        if method == "clip":
            loss = clip_loss(images, texts, scale)
        else:
            tile = tile_size_for(batch) if method == "unicl-tiled" else None
            loss = unicl_loss(
                images,
                texts,
                labels,
                scale,
                tile_size=tile,
                tile_precision=precision,
                tile_compile=compile,
            )
        loss.backward()
        images.grad = texts.grad = scale.grad = None

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resident_bytes()
    warmups = 1 if batch <= 16384 or compile else 0
    timings = []
    for _ in range(warmups + repeats):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"seconds": statistics.median(timings[warmups:]), "peak_bytes": max(peak, 0)}


def available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info()[0]
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    return int(fields["MemAvailable"].split()[0]) * 1024


def run_in_subprocess(method, batch, dim, repeats, device, precision="fp32", compile=False) -> dict:
    child = {"method": method, "batch": batch, "dim": dim, "repeats": repeats, "compile": compile}
    command = [
        sys.executable,
        __file__,
        "--child",
        json.dumps({**child, "precision": precision}),
        "--device",
        str(device),
        "--threads",
        str(torch.get_num_threads()),
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        return {
            "error": completed.stderr.strip().splitlines()[-1] if completed.stderr else "killed"
        }
    return json.loads(completed.stdout.strip().splitlines()[-1])


def trained_like(batch: int, dim: int, device: torch.device, dtype: torch.dtype):
    """Features shaped like a trained model's: half image-label samples around 1000 class
    centres, half captions near their own image; labels as TargetM gives them."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)  # the class ids that mixed_labels draws
    labels = mixed_labels(batch, torch.device("cpu"))
    centres = torch.randn(1000, dim, generator=generator, dtype=torch.float64)
    images = torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    labelled = labels >= 0
    images[labelled] = centres[labels[labelled]] + 0.8 * images[labelled]
    texts = images + 0.6 * torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    texts[labelled] = centres[labels[labelled]]  # a class prompt's embedding
    normalise = lambda x: F.normalize(x, dim=1).to(device, dtype)  # noqa: E731
    return normalise(images), normalise(texts), labels.to(device)


def reference_loss(images, texts, labels, scale):
    """The UniCL loss straight from its definition, dense, in the inputs' dtype (float64 here)."""
    logits = scale * images @ texts.T
    positives = (labels[:, None] == labels[None, :]).to(logits.dtype)
    image_to_text = -(positives * logits.log_softmax(dim=1)).sum(1) / positives.sum(1)
    text_to_image = -(positives * logits.log_softmax(dim=0)).sum(0) / positives.sum(0)
    return (image_to_text.mean() + text_to_image.mean()) / 2


def loss_and_gradients(batch, dim, device, precision):
    """[loss, d/d images, d/d texts, d/d scale] as float64; `precision` None: the reference."""
    dtype = torch.float64 if precision is None else torch.float32
    images, texts, labels = trained_like(batch, dim, device, dtype)
    images.requires_grad_()
    texts.requires_grad_()
    scale = torch.tensor(100.0, device=device, dtype=dtype, requires_grad=True)
    if precision is None:
        loss = reference_loss(images, texts, labels, scale)
    else:
        tile = tile_size_for(batch)
        loss = unicl_loss(images, texts, labels, scale, tile_size=tile, tile_precision=precision)
    loss.backward()
    return [loss.detach().double(), images.grad.double(), texts.grad.double(), scale.grad.double()]


def round_to_tf32(tensor: torch.Tensor) -> torch.Tensor:
    """Float32 values rounded (to nearest, ties to even) to TF32's 10 explicit mantissa bits."""
    bits = tensor.float().contiguous().view(torch.int32).long()
    bits = (bits + 0xFFF + ((bits >> 13) & 1)) & ~0x1FFF
    return bits.int().view(torch.float32)


def accuracy(sizes, dim: int, device: torch.device) -> None:
    """Relative error of the loss and of its gradients (Frobenius norm) at every tile precision,
    against the loss computed from its definition in float64 (fp32's row: float32's own error)."""
    if device.type != "cuda":  # no TF32 units here: round the operands as a tensor core would
        plain = tiles.rounded
        logsumexp.rounded = lambda t, p: round_to_tf32(t) if p == "tf32" else plain(t, p)
    print("\n| B | tile precision | loss rel. error | image grad | text grad | scale grad |")
    print("|---|---|---|---|---|---|")
    for batch in sizes:
        reference = loss_and_gradients(batch, dim, device, None)
        for precision in PRECISIONS:
            result = loss_and_gradients(batch, dim, device, precision)
            errors = [
                float((got - want).norm() / want.norm())
                for got, want in zip(result, reference, strict=True)
            ]
            print(f"| {batch} | {precision} | " + " | ".join(f"{e:.1e}" for e in errors) + " |")


def time_precisions(sizes, dim: int, repeats: int, device: torch.device, variants=VARIANTS) -> None:
    """Seconds and peak memory of the tiled loss (forward + backward) for each of `variants`:
    (tile precision, whether the tiles' elementwise work is compiled)."""
    names = [f"{p}{' compiled' if compile else ''} (s)" for p, compile in variants]
    print("\n| B | " + " | ".join(names) + " | peak GiB |")
    print("|---|" + "---|" * len(variants) + "---|")
    bytes_per_element = 0.0
    for batch in sorted(sizes):
        needed = bytes_per_element * batch * tile_size_for(batch)
        if needed > 0.9 * available_bytes(device):
            print(f"| {batch} | does not fit: needs ~{needed / 2**30:.0f} GiB |")
            continue
        row = [
            run_in_subprocess("unicl-tiled", batch, dim, repeats, device, p, compile)
            for p, compile in variants
        ]
        cells = [f"{r['seconds']:.3f}" if "seconds" in r else r["error"] for r in row]
        peaks = [r["peak_bytes"] for r in row if "peak_bytes" in r]
        if peaks:
            bytes_per_element = max(peaks) / (batch * tile_size_for(batch))
        peak = f"{max(peaks) / 2**30:.1f}" if peaks else "-"
        print(f"| {batch} | {' | '.join(cells)} | {peak} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per size <= 4096")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--accuracy", action="store_true", help="the tile precisions' errors against float64"
    )
    parser.add_argument(
        "--tiles",
        action="store_true",
        help="time the tiled loss at every precision, eager and compiled, at --sizes",
    )
    parser.add_argument(
        "--gpu",
        action="store_true",
        help=f"--tiles at B in {GPU_SIZES}, then the largest batch, then --accuracy",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.child:
        config = json.loads(args.child)
        print(json.dumps(measure(**config, device=device)))
        return
    print(f"device={device} threads={args.threads} D={args.dim} torch={torch.__version__}")
    if args.gpu:
        time_precisions(GPU_SIZES, args.dim, 3, device)
        time_precisions((1048576,), args.dim, 1, device, [("tf32", True), ("bf16", True)])
        accuracy((4096, 16384), args.dim, device)
        return
    if args.accuracy:
        accuracy(args.sizes, args.dim, device)
        return
    if args.tiles:
        time_precisions(args.sizes, args.dim, args.repeats, device)
        return

    results: dict[tuple[str, int], dict] = {}
    bytes_per_element: dict[str, float] = {}
    for batch in sorted(args.sizes):
        repeats = args.repeats if batch <= 4096 else (3 if batch <= 16384 else 1)
        for method in METHODS:
            needed = bytes_per_element.get(method, 0.0) * batch * batch
            if method == "unicl-tiled":
                needed *= tile_size_for(batch) / batch
            if needed > 0.9 * available_bytes(device):
                results[method, batch] = {"error": f"does not fit: needs ~{needed / 2**30:.0f} GiB"}
                continue
            result = run_in_subprocess(method, batch, args.dim, repeats, device)
            results[method, batch] = result
            if "peak_bytes" in result and batch >= 4096:
                elements = batch * (tile_size_for(batch) if method == "unicl-tiled" else batch)
                bytes_per_element[method] = result["peak_bytes"] / elements
            print(method, batch, result, flush=True)

    print(
        "\n| B | CLIP loss (s) | UniCL dense (s) | UniCL tiled (s) | dense / CLIP | tiled / dense "
        "| peak MiB: CLIP / dense / tiled |"
    )
    print("|---|---|---|---|---|---|---|")
    for batch in sorted(args.sizes):
        row = [results[method, batch] for method in METHODS]
        seconds = [r.get("seconds") for r in row]
        cells = [f"{s:.3f}" if s else r["error"] for s, r in zip(seconds, row, strict=True)]
        ratio_dense = f"{seconds[1] / seconds[0]:.2f}x" if seconds[0] and seconds[1] else "-"
        ratio_tiled = f"{seconds[2] / seconds[1]:.2f}x" if seconds[1] and seconds[2] else "-"
        memory = " / ".join(
            f"{r['peak_bytes'] / 2**20:.0f}" if "peak_bytes" in r else "-" for r in row
        )
        print(f"| {batch} | {' | '.join(cells)} | {ratio_dense} | {ratio_tiled} | {memory} |")
    per_element = {
        (method, batch): r["seconds"] / batch**2
        for (method, batch), r in results.items()
        if "seconds" in r
    }
    dense_sizes = [b for (m, b) in per_element if m == "unicl-dense"]
    tiled_sizes = [b for (m, b) in per_element if m == "unicl-tiled"]
    if dense_sizes and tiled_sizes and max(tiled_sizes) > max(dense_sizes):
        largest_dense, largest_tiled = max(dense_sizes), max(tiled_sizes)
        ratio = (
            per_element["unicl-tiled", largest_tiled] / per_element["unicl-dense", largest_dense]
        )
        print(
            f"\ntiled at B={largest_tiled} vs dense at B={largest_dense}, time per matrix element: "
            f"{ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
