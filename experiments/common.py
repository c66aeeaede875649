"""What the experiment runners share: data locations, one training run, its evaluation, tables.

Every run goes through `unicl.train.train` (the same code as `unicl train`) and is scored with
`unicl.evaluate`; nothing here trains or evaluates on its own. A run whose `model/` directory
already exists is not trained again, so an interrupted experiment resumes where it stopped.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from unicl.evaluate import evaluate_zeroshot, linear_probe
from unicl.evaluate.results import write_json
from unicl.files import write_text_atomic
from unicl.models import load
from unicl.train import train
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
) -> tuple[Path, float]:
    """Train `unicl-tiny` on `sources` with `objective` (`unicl`, `ce`, `supcon`).

    The learning rate is `budget.lr`, times `batch_size / reference_batch` when that is set (the
    linear scaling rule). Returns `(model directory, training seconds)`; 0 seconds when the model
    was already there.
    """
    model_dir = output_dir / "model"
    if (model_dir / "config.json").is_file():
        return model_dir, 0.0
    config = config_from_dict(
        {
            "model": {"name": "unicl-tiny"},
            "data": {
                "sources": list(sources),
                "batch_size": budget.batch_size,
                "num_workers": 1,
                "augment": AUGMENT,
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
            "checkpoint": {"every_steps": budget.steps, "keep_last": 1},
            "logging": {"every_steps": max(1, budget.steps // 20), "progress": False},
        }
    )
    start = time.perf_counter()
    result = train(config)
    return result.model_dir, time.perf_counter() - start


def probe_top1(model: torch.nn.Module, train_source: Any, test_source: Any) -> float:
    """Linear-probe top-1 on `test_source` of a probe fitted on `train_source` (image-label)."""
    return linear_probe(model, train_source, test_source, progress=False)["top1"]


def zeroshot_top1(model: torch.nn.Module, source: Any) -> float:
    """Zero-shot top-1 with the default prompt templates over the source's class names."""
    return evaluate_zeroshot(model, source, progress=False)["top1"]


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


def percent(summary: dict[str, Any]) -> str:
    """`81.2 ± 0.4` from a `mean_and_spread` summary of fractions."""
    return f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def parse_arguments(
    description: str, variants: dict[str, dict[str, Any]]
) -> tuple[argparse.Namespace, dict[str, Any]]:
    """`--variant NAME --out DIR --threads N`; returns the arguments and the chosen settings."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--variant", choices=sorted(variants), default="short")
    parser.add_argument("--out", type=Path, help="output folder (default runs/experiments/...)")
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
