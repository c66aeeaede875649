"""Zero-shot classification: prompt-ensembled text classifiers scored against image embeddings.

For class names c and templates t, the classifier column w_c is the normalised mean of the
normalised text embeddings of t(c) (`unicl.models.build_zeroshot_classifier`); an image x gets
logits `logit_scale.exp() * normalize(encode_image(x)) @ W` and probabilities their softmax.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from unicl.data import Modality
from unicl.errors import UserInputError
from unicl.evaluate.datasets import EvalData, eval_dataset, model_transform, read_images
from unicl.evaluate.embed import embed_images, encode_dataset, inference_mode
from unicl.evaluate.metrics import classification_metrics
from unicl.evaluate.results import plot_confusion_matrix
from unicl.models import build_zeroshot_classifier
from unicl.templates import get_templates

Templates = str | os.PathLike | Sequence[str]
"""A template set name (`default`, `imagenet`), a file with one template per line, or templates."""


def resolve_templates(templates: Templates) -> tuple[str, ...]:
    """The templates themselves, from a set name, a file, or a sequence of templates."""
    if isinstance(templates, (str, os.PathLike)):
        return get_templates(templates)
    return tuple(templates)


def check_class_names(class_names: Sequence[str]) -> list[str]:
    """Class names stripped of surrounding spaces; raises `UserInputError` for an empty list,
    an empty name or a repeated name."""
    names = [str(name).strip() for name in class_names]
    if not names:
        raise UserInputError("the list of class names is empty; give at least one class")
    if not all(names):
        raise UserInputError(f"class names {names!r} include an empty name; remove it")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserInputError(f"class names are repeated: {repeated}; give each class once")
    return names


def zeroshot_classifier(
    model: nn.Module, class_names: Sequence[str], templates: Templates = "default"
) -> torch.Tensor:
    """float32 [E, C] normalised classifier columns for `class_names`, on the CPU."""
    names = check_class_names(class_names)
    with inference_mode(model):
        weights = build_zeroshot_classifier(model, names, resolve_templates(templates))
    return weights.float().cpu()


def zeroshot_logits(
    model: nn.Module, image_features: torch.Tensor, classifier: torch.Tensor
) -> torch.Tensor:
    """float [N, C] = logit_scale.exp() * image_features [N, E] @ classifier [E, C]."""
    return model.logit_scale.detach().exp().float().cpu() * (image_features @ classifier)


def _as_image_tensor(
    model: nn.Module, images: torch.Tensor | Sequence[Image.Image | str | os.PathLike]
) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images
    transform = model_transform(model)
    return torch.stack([transform(image) for image in read_images(images)])


def classify(
    model: nn.Module,
    images: torch.Tensor | Sequence[Image.Image | str | os.PathLike],
    class_names: Sequence[str],
    templates: Templates = "default",
    *,
    batch_size: int = 256,
    progress: bool | None = None,
) -> torch.Tensor:
    """Class probabilities float32 [N, C] (rows sum to 1) for `images`.

    `images`: PIL images, image file paths, or a float tensor [N, 3, H, W] already transformed
    for the model (`unicl.data.EvalTransform`).
    """
    classifier = zeroshot_classifier(model, class_names, templates)
    features = embed_images(
        model, _as_image_tensor(model, images), batch_size=batch_size, progress=progress
    )
    return zeroshot_logits(model, features, classifier).softmax(dim=1)


def evaluate_zeroshot(
    model: nn.Module,
    data: EvalData,
    *,
    class_names: Sequence[str] | None = None,
    templates: Templates | None = None,
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool | None = None,
    confusion_png: str | os.PathLike | None = None,
) -> dict[str, float | int | str]:
    """Zero-shot accuracy of `model` on image-label `data` (the images and their class indices).

    class_names: the names the classifier is built from, in label order (default: the source's
    own). templates: a set name, file or sequence (default: the source's templates).
    confusion_png: where to save the confusion-matrix figure (none when None).

    Returns `top1`, `top5`, `mean_per_class_recall` (fractions), `num_samples`, `num_classes`,
    `num_templates` and `skipped` (unreadable images).
    """
    dataset = eval_dataset(data, model, modality=Modality.IMAGE_LABEL)
    names = check_class_names(class_names if class_names is not None else dataset.class_names)
    chosen = resolve_templates(templates) if templates is not None else dataset.templates
    encoded = encode_dataset(
        model, dataset, batch_size=batch_size, num_workers=num_workers, progress=progress
    )
    targets = torch.tensor(encoded.targets, dtype=torch.int64)
    if int(targets.max()) >= len(names):
        raise UserInputError(
            f"the data has class index {int(targets.max())} but only {len(names)} class names "
            "were given; give one name per class, in label order"
        )
    logits = zeroshot_logits(model, encoded.features, zeroshot_classifier(model, names, chosen))
    metrics, confusion = classification_metrics(logits, targets, ks=(1, 5))
    if confusion_png is not None:
        plot_confusion_matrix(confusion, names, Path(confusion_png))
    return {
        **metrics,
        "num_samples": len(targets),
        "num_classes": len(names),
        "num_templates": len(chosen),
        "skipped": encoded.skipped,
    }
