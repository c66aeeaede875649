"""Writing evaluation results: JSON files and figures, each atomically.

A result file is written to a temporary file in the same directory and renamed over the target,
so an interrupted run never leaves a half-written file in place of a good one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from unicl.files import atomic_path, write_text_atomic

_ANNOTATE_UP_TO = 20  # classes; beyond this the cell counts would be unreadable


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write `payload` as indented JSON to `path` (atomically); returns the path."""
    path = Path(path)
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def plot_confusion_matrix(
    confusion: torch.Tensor, class_names: Sequence[str], path: str | Path
) -> Path:
    """Save a PNG of the row-normalised confusion matrix (rows: true class, columns: predicted).

    Colour is the fraction of each true class given each prediction; counts are printed in the
    cells when there are at most 20 classes. Returns the path.
    """
    path = Path(path)
    counts = confusion.double()
    fractions = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    size = max(4.0, 0.45 * len(class_names) + 2.0)
    from matplotlib.figure import Figure  # imported when drawing: 0.4 s off every command

    figure = Figure(figsize=(size, size))
    axes = figure.subplots()
    image = axes.imshow(fractions.numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of true class")
    if len(class_names) <= _ANNOTATE_UP_TO:
        ticks = range(len(class_names))
        axes.set_xticks(ticks, labels=class_names, rotation=90)
        axes.set_yticks(ticks, labels=class_names)
        for true_class in ticks:
            for predicted in ticks:
                value = fractions[true_class, predicted].item()
                axes.text(
                    predicted,
                    true_class,
                    int(counts[true_class, predicted].item()),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > 0.5 else "black",
                )
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    figure.tight_layout()
    with atomic_path(path, ".png") as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    return path
