"""Evaluation data: a source opened as an `EvalDataset` with the transform a model expects."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image
from torch import nn

from unicl.data import EvalDataset, EvalTransform, Modality, Source, SourceSpec
from unicl.data.images import BadSample, load_image, to_rgb
from unicl.data.source import IndexedSource
from unicl.errors import UserInputError

EvalData = str | Mapping | SourceSpec | Source | EvalDataset
"""What the evaluators accept as data: a source string or mapping (see `unicl.data.spec`), a
spec, an opened source, or an `EvalDataset` already built."""


def model_transform(model: nn.Module) -> EvalTransform:
    """Resize + centre crop + normalise with the model's image size, mean and std."""
    return EvalTransform(model.image_size, model.image_mean, model.image_std)


def open_eval_dataset(
    data: EvalData, model: nn.Module, modality: Modality | None = None
) -> EvalDataset:
    """`data` as an `EvalDataset` transformed for `model`; `modality`, when given, is required of
    the source, with an error saying what was expected."""
    dataset = data if isinstance(data, EvalDataset) else EvalDataset(data, model_transform(model))
    if modality is not None and dataset.modality != modality:
        wanted = "class labels" if modality == Modality.IMAGE_LABEL else "captions"
        raise UserInputError(
            f"{dataset.source.describe()} is {dataset.modality} data, but this evaluation needs "
            f"images with {wanted} ({modality} data)"
        )
    if len(dataset) == 0:
        raise UserInputError(f"{dataset.source.describe()} holds no samples")
    return dataset


def image_groups(dataset: EvalDataset) -> list[int]:
    """For each sample, the index of the first sample that shows the same image.

    An image-text source lists an image once per caption (e.g. a manifest with five rows for one
    photo, as in COCO captions): samples that name the same image file are one image. Images
    stored inside the source (arrays, shards) are one image per sample.
    """
    source = dataset.source
    if dataset.modality != Modality.IMAGE_TEXT or not isinstance(source, IndexedSource):
        return list(range(len(dataset)))
    first: dict[str, int] = {}
    groups = []
    for index in range(len(source)):
        payload = source.raw(index).image
        identity = str(Path(payload).resolve()) if isinstance(payload, Path) else f"#{index}"
        groups.append(first.setdefault(identity, index))
    return groups


def read_images(images: Sequence[Image.Image | str | os.PathLike]) -> list[Image.Image]:
    """RGB images from PIL images or image file paths; a missing or unreadable file raises
    `UserInputError` naming it."""
    if len(images) == 0:
        raise UserInputError("no images were given; pass at least one image file")
    loaded = []
    for image in images:
        if isinstance(image, Image.Image):
            loaded.append(to_rgb(image))
            continue
        try:
            loaded.append(load_image(Path(image), str(image)))
        except BadSample as error:
            raise UserInputError(
                f"image {str(image)!r} is {error.cause}; give a readable image file"
            ) from None
    return loaded
