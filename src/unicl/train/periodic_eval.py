"""The evaluation hook of training: every `evaluation.every_steps` steps and at the end, rank 0
scores the model with `unicl.evaluate` while the other processes wait: zero-shot classification,
image-text retrieval and linear probes, as configured in the `evaluation` section. Metrics are
named `<name>/<metric>`."""

from __future__ import annotations

from typing import Any

import torch

from unicl import process_group
from unicl.data import parse_source
from unicl.evaluate.linear_probe import linear_probe
from unicl.evaluate.retrieval import evaluate_retrieval
from unicl.evaluate.zeroshot import evaluate_zeroshot
from unicl.train.state import TrainingState


def evaluation_name(name: str | None, source: Any) -> str:
    """`name`, else the source's own name (`SourceSpec.name`, e.g. `fashion-mnist-t10k`), the
    name the evaluation commands give their result files."""
    return name or parse_source(source).name


def evaluate_run(state: TrainingState) -> dict[str, float]:
    """Every configured evaluation of `state.model` (the EMA weights when kept):
    `<name>/zeroshot_{top1,top5,mean_recall}` (confusion matrix to
    `<output_dir>/confusion_<name>.png`), `<name>/{image_to_text,text_to_image}_R@{1,5,10}` and
    `<name>/probe_top1`."""
    results: dict[str, float] = {}
    devices = [state.context.device] if state.context.device.type == "cuda" else []
    if state.context.is_main:
        with torch.random.fork_rng(devices=devices):  # evaluating never changes training
            results = {**_zeroshot(state), **_retrieval(state), **_linear_probe(state)}
    process_group.barrier(state.context.group)
    return results


def _zeroshot(state: TrainingState) -> dict[str, float]:
    config = state.config
    results: dict[str, float] = {}
    for item in config.evaluation.zeroshot:
        name = evaluation_name(item.name, item.source)
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


def _retrieval(state: TrainingState) -> dict[str, float]:
    results: dict[str, float] = {}
    for item in state.config.evaluation.retrieval:
        name = evaluation_name(item.name, item.source)
        metrics = evaluate_retrieval(
            state.model, item.source, batch_size=state.config.evaluation.batch_size, progress=False
        )
        for key, value in metrics.items():
            if key.startswith(("image_to_text_R@", "text_to_image_R@")):
                results[f"{name}/{key}"] = float(value)
    return results


def _linear_probe(state: TrainingState) -> dict[str, float]:
    results: dict[str, float] = {}
    for item in state.config.evaluation.linear_probe:
        name = evaluation_name(item.name, item.test)
        metrics = linear_probe(
            state.model,
            item.train,
            item.test,
            seed=state.config.run.seed,
            batch_size=state.config.evaluation.batch_size,
            progress=False,
        )
        results[f"{name}/probe_top1"] = float(metrics["top1"])
    return results
