"""Evaluation during and after training: zero-shot classification of held-out image-label
sources with `unicl.evaluate`, on rank 0 while the other processes wait."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist

from unicl.data import parse_source
from unicl.evaluate.zeroshot import evaluate_zeroshot
from unicl.train.config import ZeroShotConfig
from unicl.train.state import TrainingState


def evaluation_name(item: ZeroShotConfig) -> str:
    """`item.name`, else the source's file or folder name with its split (`fashion-mnist#t10k`)."""
    if item.name:
        return item.name
    spec = parse_source(item.source)
    name = Path(spec.location).name
    return f"{name}#{spec.split}" if spec.split else name


def evaluate_run(state: TrainingState) -> dict[str, float]:
    """`<name>/zeroshot_top1`, `<name>/zeroshot_top5` and `<name>/zeroshot_mean_recall` for each
    configured source, computed with the model `state.model` (the EMA weights when kept); the
    confusion matrix of each goes to `<output_dir>/confusion_<name>.png`."""
    results: dict[str, float] = {}
    devices = [state.context.device] if state.context.device.type == "cuda" else []
    if state.context.is_main:
        with torch.random.fork_rng(devices=devices):  # evaluating never changes training
            results = _zeroshot(state)
    if dist.is_initialized():
        dist.barrier()
    return results


def _zeroshot(state: TrainingState) -> dict[str, float]:
    config = state.config
    results: dict[str, float] = {}
    for item in config.evaluation.zeroshot:
        name = evaluation_name(item)
        metrics = evaluate_zeroshot(
            state.model,
            item.source,
            templates=item.templates,
            batch_size=config.evaluation.batch_size,
            progress=False,
            confusion_png=config.output_dir / f"confusion_{name.replace('#', '_')}.png",
        )
        results[f"{name}/zeroshot_top1"] = float(metrics["top1"])
        results[f"{name}/zeroshot_top5"] = float(metrics["top5"])
        results[f"{name}/zeroshot_mean_recall"] = float(metrics["mean_per_class_recall"])
    return results
