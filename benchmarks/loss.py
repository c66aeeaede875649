"""Forward + backward time and peak memory of the UniCL loss against a plain CLIP loss.

Every (method, batch size) runs in a fresh subprocess so that its peak memory is its own: on CPU the
peak resident set above what the process held once its inputs existed, on CUDA the allocator's peak.
Times are medians over repeats after one warm-up (none at B > 16384, where one step takes minutes). A configuration whose memory, extrapolated from the
measured smaller sizes as ``bytes per B**2``, exceeds what the machine has is reported as not fitting
instead of being run (it would only be killed).

    python benchmarks/loss.py                      # B in 1024 4096 16384 65536, D = 512
    python benchmarks/loss.py --sizes 1024 4096 --repeats 3
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

METHODS = ("clip", "unicl-dense", "unicl-tiled")


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


def measure(method: str, batch: int, dim: int, repeats: int, device: torch.device) -> dict:
    """Run one configuration in this process; return its median time and peak extra memory."""
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
            loss = unicl_loss(images, texts, labels, scale, tile_size=tile)
        loss.backward()
        images.grad = texts.grad = scale.grad = None

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resident_bytes()
    warmups = 1 if batch <= 16384 else 0
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


def run_in_subprocess(method, batch, dim, repeats, device) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        json.dumps({"method": method, "batch": batch, "dim": dim, "repeats": repeats}),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per size <= 4096")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.child:
        config = json.loads(args.child)
        print(
            json.dumps(
                measure(config["method"], config["batch"], config["dim"], config["repeats"], device)
            )
        )
        return

    print(f"device={device} threads={args.threads} D={args.dim} torch={torch.__version__}")
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
