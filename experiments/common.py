"""What the experiment runners share: data locations, one training run, its evaluation, tables.

Every run goes through `unicl.train.train` (the same code as `unicl train`) and is scored with
`unicl.evaluate`; nothing here trains or evaluates on its own. A run whose `model/` directory
already exists is not trained again, and a run whose result file exists (`run_result`) is not
trained or scored again, so an interrupted experiment resumes where it stopped, run by run. The
result files and tables can live apart from the training folders (`--results`), e.g. in the
repository's `experiments/results/` while the models go to `runs/`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from unicl.data import Modality
from unicl.evaluate import (
    build_zeroshot_classifier,
    evaluate_zeroshot,
    linear_probe,
    linear_probe_on_features,
)
from unicl.evaluate.embed import encode_dataset
from unicl.evaluate.inputs import open_eval_dataset
from unicl.evaluate.results import write_json
from unicl.evaluate.zeroshot import zeroshot_logits
from unicl.files import write_text_atomic
from unicl.models import load
from unicl.train import train
from unicl.train.checkpoint import list_checkpoints, load_checkpoint
from unicl.train.config import config_from_dict

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
"""Debian's `dataset-fashion-mnist` package: 60,000 training and 10,000 test images (IDX)."""
REPOSITORY = Path(__file__).resolve().parents[1]
EMOJI_TRAIN = str(REPOSITORY / "data/demo/emoji/train-{000000..000003}.tar")
EMOJI_TEST = str(REPOSITORY / "data/demo/emoji/test-000000.tar")
"""Twemoji images captioned with their Unicode names (npm `emoji-datasource-twitter`): 1,000
training and 200 held-out pairs, shipped in `data/demo/emoji/`."""
DEMO_FASHION_MNIST = str(REPOSITORY / "data/demo/fashion-mnist")
"""A seeded random 10,000-image subset of the training images and 2,000 of the test images."""
AUGMENT = {"scale": [0.7, 1.0], "jitter": 0.2, "flip_p": 0.5}


def fashion_mnist(split: str) -> dict[str, str]:
    """The source mapping of a Fashion-MNIST split (`train` or `t10k`) with its class names."""
    return {"location": FASHION_MNIST, "split": split, "classes": "fashion-mnist"}


def demo_fashion_mnist(split: str) -> dict[str, str]:
    """The same for the demo subset shipped in `data/demo/fashion-mnist`."""
    return {"location": DEMO_FASHION_MNIST, "split": split, "classes": "fashion-mnist"}


@dataclass(frozen=True)
class Budget:
    """A training budget: optimiser `steps` of `batch_size` samples at learning rate `lr`."""

    steps: int
    batch_size: int
    lr: float = 2.0e-3

    @property
    def samples(self) -> int:
        return self.steps * self.batch_size


def train_run(
    output_dir: Path,
    sources: Sequence[Any],
    objective: str,
    budget: Budget,
    seed: int,
    *,
    threads: int | None,
    reference_batch: int | None = None,
    model: dict[str, Any] | None = None,
    augment: dict[str, Any] | None = None,
    balance: bool = True,
) -> tuple[Path, float]:
    """Train a model (`model`: the `model` section of a training config, default `unicl-tiny`
    from scratch) on `sources` with `objective` (`unicl`, `unicl-sigmoid`, `clip`, `multitask`,
    `ce`, `supcon`), augmented with `augment` (`data.augment`; default `AUGMENT`), the sources
    balanced by the paper's sampler unless `balance` is False.

    The learning rate is `budget.lr`, times `batch_size / reference_batch` when that is set (the
    linear scaling rule). A checkpoint is written every quarter of the run and the last one is
    kept (it holds a classifier head, if any); a run that was interrupted resumes from its
    checkpoint. Returns `(model directory, training seconds)`; 0 seconds when the model was
    already there.
    """
    model_dir = output_dir / "model"
    if (model_dir / "config.json").is_file():
        return model_dir, 0.0
    config = config_from_dict(
        {
            "model": model or {"name": "unicl-tiny"},
            "data": {
                "sources": list(sources),
                "batch_size": budget.batch_size,
                "num_workers": 1,
                "balance": balance,
                "augment": AUGMENT if augment is None else augment,
            },
            "objective": {"name": objective},
            "optim": {"lr": budget.lr, "reference_batch": reference_batch},
            "schedule": {"steps": budget.steps, "warmup_steps": max(1, budget.steps // 10)},
            "run": {
                "output_dir": str(output_dir),
                "device": "cpu",
                "seed": seed,
                "threads": threads,
            },
            "checkpoint": {"every_steps": max(1, budget.steps // 4), "keep_last": 1},
            "logging": {"every_steps": max(1, budget.steps // 20), "progress": False},
        }
    )
    started = (output_dir / "config.yaml").is_file()  # interrupted: continue from its checkpoint
    start = time.perf_counter()
    result = train(config, resume="latest" if started else None)
    return result.model_dir, time.perf_counter() - start


def run_result(
    results_dir: Path, name: str, compute: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The scores of run `name`: read from `results_dir/runs/<name>.json` when it exists, else
    `compute()` (train and score the run), written there before it is returned."""
    path = results_dir / "runs" / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    result = compute()
    write_json(path, result)
    return result


def head_top1(run_dir: Path, model: torch.nn.Module, source: Any) -> float:
    """Top-1 on the image-label `source` of the classifier head that `ce` or `multitask` trained
    in `run_dir` (read from its last checkpoint; its classes are the source's, in order)."""
    state = load_checkpoint(list_checkpoints(run_dir)[-1])["objective"]
    weight, bias = state["head.weight"], state["head.bias"]
    dataset = open_eval_dataset(source, model, modality=Modality.IMAGE_LABEL)
    if weight.shape[0] != len(dataset.class_names):
        raise ValueError(f"the head has {weight.shape[0]} classes, {source} has another number")
    correct = 0
    with torch.inference_mode():
        for images, targets in DataLoader(dataset, batch_size=256):
            logits = model.encode_image(images) @ weight.T + bias
            correct += int((logits.argmax(dim=1) == targets).sum())
    return correct / len(dataset)


def probe_top1(model: torch.nn.Module, train_source: Any, test_source: Any) -> float:
    """Linear-probe top-1 on `test_source` of a probe fitted on `train_source` (image-label)."""
    return linear_probe(model, train_source, test_source, progress=False)["top1"]


def zeroshot_top1(model: torch.nn.Module, source: Any) -> float:
    """Zero-shot top-1 with the default prompt templates over the source's class names."""
    return evaluate_zeroshot(model, source, progress=False)["top1"]


@dataclass(frozen=True)
class Labelled:
    """Encoded image-label data: normalised image features [N, E], class indices [N], names."""

    features: torch.Tensor
    targets: torch.Tensor
    class_names: list[str]


def encode_labelled(model: torch.nn.Module, source: Any) -> Labelled:
    """Encode an image-label source once, to score several classifiers on it."""
    dataset = open_eval_dataset(source, model, modality=Modality.IMAGE_LABEL)
    encoded = encode_dataset(model, dataset, progress=False)
    return Labelled(encoded.features, torch.tensor(encoded.targets), list(dataset.class_names))


def zeroshot_subset_top1(
    model: torch.nn.Module, test: Labelled, classes: Sequence[str] | None = None
) -> float:
    """Zero-shot top-1 on the images of `classes` (default: all) among the encoded `test`
    images, the classifier built over those classes only from the default prompt templates (as
    `evaluate_zeroshot` on a source holding just those classes)."""
    names = list(classes) if classes is not None else test.class_names
    column = torch.full((len(test.class_names),), -1)  # test class index -> classifier column
    column[[test.class_names.index(name) for name in names]] = torch.arange(len(names))
    targets = column[test.targets]
    keep = targets >= 0
    classifier = build_zeroshot_classifier(model, names).cpu()
    logits = zeroshot_logits(model, test.features[keep], classifier)
    return float((logits.argmax(dim=1) == targets[keep]).float().mean())


def probe_on(model: torch.nn.Module, train_source: Any, test: Labelled) -> float:
    """Linear-probe top-1 on the encoded `test` images of a probe fitted on `train_source`, as
    `probe_top1` does (`unicl.evaluate.linear_probe_on_features`, same classes in order)."""
    train_set = encode_labelled(model, train_source)
    if train_set.class_names != test.class_names:
        raise ValueError(f"probe classes {train_set.class_names} differ from {test.class_names}")
    result = linear_probe_on_features(
        train_set.features,
        train_set.targets,
        test.features,
        test.targets,
        len(test.class_names),
    )
    return result["top1"]


def load_model(model_dir: Path) -> torch.nn.Module:
    """A trained run's model, in eval mode."""
    return load(model_dir).eval()


def mean_and_spread(values: Sequence[float]) -> dict[str, float | list[float]]:
    """`mean`, `std` (sample standard deviation; 0 for one value), `min`, `max` and `values`."""
    values = list(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return {
        "mean": statistics.fmean(values),
        "std": spread,
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def percent(summary: dict[str, Any] | None) -> str:
    """`81.2 ± 0.4` from a `mean_and_spread` summary of fractions; `n/a` for None."""
    if summary is None:
        return "n/a"
    return f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}"


def summarize(
    runs: dict[str, dict[str, Any]], groups: dict[str, list[str]], metrics: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """For each group (e.g. one setting's seeds) the `mean_and_spread` of every metric that its
    runs have, over the runs of the group that are done."""
    summary = {}
    for group, names in groups.items():
        done = [runs[name] for name in names if name in runs]
        summary[group] = {
            metric: mean_and_spread([run[metric] for run in done])
            for metric in metrics
            if done and all(metric in run for run in done)
        }
        summary[group]["runs"] = len(done)
    return summary


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def parse_arguments(
    description: str, variants: dict[str, dict[str, Any]]
) -> tuple[argparse.Namespace, dict[str, Any]]:
    """`--variant NAME --out DIR --results DIR --threads N`; returns the arguments and the
    chosen settings."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--variant", choices=sorted(variants), default="short")
    parser.add_argument(
        "--out", type=Path, help="folder of the training runs (default runs/experiments/...)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="folder of results.json, results.md and one runs/NAME.json per run; runs already "
        "there are skipped (default: the --out folder)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads per run (default: all cores)"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return args, variants[args.variant]


def write_results(out: Path, results: dict[str, Any], table: str) -> None:
    """`results.json` and `results.md` in `out`, and the table on stdout."""
    write_json(out / "results.json", results)
    write_text_atomic(out / "results.md", table)
    print(table)
    print(f"results: {out / 'results.json'}")
