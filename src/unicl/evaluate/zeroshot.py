"""Zero-shot classification: prompt-ensembled text classifiers scored against image embeddings.

For class names c and templates t, the classifier column is CLIP's prompt ensemble
`w_c = normalize(mean_t normalize(encode_text(t(c))))`; an image x gets logits
`logit_scale.exp() * normalize(encode_image(x)) @ W` and probabilities their softmax.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from unicl.data import Modality
from unicl.errors import UserInputError
from unicl.evaluate.embed import (
    Shards,
    embed_images,
    embed_texts,
    encode_dataset,
    model_device,
)
from unicl.evaluate.inputs import EvalData, model_transform, open_eval_dataset, read_images
from unicl.evaluate.metrics import classification_metrics
from unicl.evaluate.results import plot_confusion_matrix
from unicl.templates import fill_template, get_templates, validate_template

Templates = str | os.PathLike | Sequence[str]
"""A template set name (`default`, `imagenet`), a file with one template per line, or templates."""


def resolve_templates(templates: Templates) -> tuple[str, ...]:
    """The templates themselves, from a set name, a file, or a sequence of templates (each with
    exactly one `{}`)."""
    if isinstance(templates, (str, os.PathLike)):
        return get_templates(templates)
    chosen = tuple(validate_template(t, "zero-shot templates") for t in templates)
    if not chosen:
        raise UserInputError("the list of templates is empty; give at least one, e.g. 'a {}.'")
    return chosen


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


def build_zeroshot_classifier(
    model: nn.Module,
    class_names: Sequence[str],
    templates: Templates = "default",
    batch_size: int = 256,
    *,
    progress: bool | None = False,
    shards: Shards | None = None,
) -> torch.Tensor:
    """float32 [E, C] classifier columns `w_c` (unit norm) for `class_names`, on the model's
    device, so that `encode_image(x, normalize=True) @ W` gives cosine-similarity logits [B, C].
    Every (class, template) prompt is encoded in eval mode, `batch_size` prompts at a time
    (shared by the ranks of `shards`)."""
    names = check_class_names(class_names)
    chosen = resolve_templates(templates)
    prompts = [fill_template(template, name) for name in names for template in chosen]
    features = embed_texts(model, prompts, batch_size=batch_size, progress=progress, shards=shards)
    per_class = features.view(len(names), len(chosen), -1).mean(dim=1)
    return F.normalize(per_class, dim=-1).T.contiguous().to(model_device(model))


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
    classifier = build_zeroshot_classifier(model, class_names, templates).cpu()
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
    shards: Shards | None = None,
) -> dict[str, float | int | str]:
    """Zero-shot accuracy of `model` on image-label `data` (the images and their class indices).

    class_names: the names the classifier is built from, in label order (default: the source's
    own). templates: a set name, file or sequence (default: the source's templates).
    confusion_png: where to save the confusion-matrix figure (none when None).
    shards: the ranks that share the encoding (`Shards`); each returns the same metrics.

    Returns `top1`, `top5`, `mean_per_class_recall` (fractions), `num_samples`, `num_classes`,
    `num_templates` and `skipped` (unreadable images).
    """
    dataset = open_eval_dataset(data, model, modality=Modality.IMAGE_LABEL)
    names = check_class_names(class_names if class_names is not None else dataset.class_names)
    chosen = resolve_templates(templates) if templates is not None else dataset.templates
    encoded = encode_dataset(
        model,
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        shards=shards,
    )
    targets = torch.tensor(encoded.targets, dtype=torch.int64)
    if int(targets.max()) >= len(names):
        raise UserInputError(
            f"the data has class index {int(targets.max())} but only {len(names)} class names "
            "were given; give one name per class, in label order"
        )
    classifier = build_zeroshot_classifier(model, names, chosen, batch_size, shards=shards)
    logits = zeroshot_logits(model, encoded.features, classifier.cpu())
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
