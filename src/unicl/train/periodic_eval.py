"""The evaluation hook of training: every `evaluation.every_steps` steps and at the end, the model
is scored with `unicl.evaluate`: zero-shot classification, image-text retrieval and linear probes,
as configured in the `evaluation` section. Metrics are named `<name>/<metric>`.

On several processes every rank takes part: each encodes its share of the images and texts
(`unicl.evaluate.Shards` over the run's group, with `evaluation.num_workers` data workers) and
receives everyone's features, so an evaluation takes `1/W` of the time it takes on one process and
no rank waits idle at a barrier; every rank computes the same metrics, and rank 0 writes the
figures."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from unicl import process_group
from unicl.data import parse_source
from unicl.evaluate.embed import Shards
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
    `<name>/probe_top1`. Every rank of the run calls it."""
    devices = [state.context.device] if state.context.device.type == "cuda" else []
    model = state.model  # gathered once when sharded
    with torch.random.fork_rng(devices=devices):  # evaluating never changes training
        return {
            **_zeroshot(state, model),
            **_retrieval(state, model),
            **_linear_probe(state, model),
        }


def _options(state: TrainingState) -> dict[str, Any]:
    """The keyword arguments every evaluator takes: batch size, workers, no progress bar, and
    the ranks that share the encoding."""
    config, group = state.config, state.context.group
    workers = config.evaluation.num_workers
    return {
        "batch_size": config.evaluation.batch_size,
        "num_workers": config.data.num_workers if workers is None else workers,
        "progress": False,
        "shards": Shards(group) if process_group.spans_processes(group) else None,
    }


def _zeroshot(state: TrainingState, model: nn.Module) -> dict[str, float]:
    config = state.config
    results: dict[str, float] = {}
    for item in config.evaluation.zeroshot:
        name = evaluation_name(item.name, item.source)
        confusion = config.output_dir / f"confusion_{name.replace('#', '_')}.png"
        metrics = evaluate_zeroshot(
            model,
            item.source,
            templates=item.templates,
            confusion_png=confusion if state.context.is_main else None,
            **_options(state),
        )
        results[f"{name}/zeroshot_top1"] = float(metrics["top1"])
        results[f"{name}/zeroshot_top5"] = float(metrics["top5"])
        results[f"{name}/zeroshot_mean_recall"] = float(metrics["mean_per_class_recall"])
    return results


def _retrieval(state: TrainingState, model: nn.Module) -> dict[str, float]:
    results: dict[str, float] = {}
    for item in state.config.evaluation.retrieval:
        name = evaluation_name(item.name, item.source)
        metrics = evaluate_retrieval(model, item.source, **_options(state))
        for key, value in metrics.items():
            if key.startswith(("image_to_text_R@", "text_to_image_R@")):
                results[f"{name}/{key}"] = float(value)
    return results


def _linear_probe(state: TrainingState, model: nn.Module) -> dict[str, float]:
    results: dict[str, float] = {}
    for item in state.config.evaluation.linear_probe:
        name = evaluation_name(item.name, item.test)
        metrics = linear_probe(
            model,
            item.train,
            item.test,
            seed=state.config.run.seed,
            **_options(state),
        )
        results[f"{name}/probe_top1"] = float(metrics["top1"])
    return results
