"""Prediction: the most probable labels of images under a zero-shot classifier."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image
from torch import nn

from unicl.errors import UserInputError
from unicl.evaluate.zeroshot import Templates, check_class_names, classify


@dataclass(frozen=True)
class Prediction:
    """The `top_k` labels of one image, most probable first, with their probabilities."""

    image: str
    labels: list[str]
    probabilities: list[float]


def predict(
    model: nn.Module,
    images: Sequence[Image.Image | str | os.PathLike],
    class_names: Sequence[str],
    *,
    templates: Templates = "default",
    top_k: int = 5,
    batch_size: int = 256,
    progress: bool | None = None,
) -> list[Prediction]:
    """Top-k labels per image (file paths or PIL images) among `class_names`.

    `top_k` larger than the number of classes returns every class.
    """
    if top_k < 1:
        raise UserInputError(f"top-k is {top_k}; ask for at least 1 label per image")
    names = check_class_names(class_names)
    probabilities = classify(
        model, images, names, templates, batch_size=batch_size, progress=progress
    )
    best = probabilities.topk(min(top_k, len(names)), dim=1)
    return [
        Prediction(
            image=str(image) if isinstance(image, (str, os.PathLike)) else f"image {i}",
            labels=[names[c] for c in classes.tolist()],
            probabilities=values.tolist(),
        )
        for i, (image, values, classes) in enumerate(
            zip(images, best.values, best.indices, strict=True)
        )
    ]
