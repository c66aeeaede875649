"""Classification and retrieval metrics on tensors (no model, no data).

Conventions: `logits` are float [N, C] scores (higher is better), `targets` int64 [N] class
indices in [0, C). Accuracies and recalls are fractions in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def topk_accuracy(
    logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int]
) -> dict[int, float]:
    """Fraction of rows whose target is among the k highest logits, for each k in `ks`.

    A k larger than the number of classes counts every row as correct (the target is always in the
    top C). Ties between logits are broken by `torch.topk`.
    """
    num_classes = logits.shape[1]
    largest = min(max(ks), num_classes)
    top = logits.topk(largest, dim=1).indices
    hits = top == targets.unsqueeze(1)
    return {k: hits[:, : min(k, num_classes)].any(dim=1).double().mean().item() for k in ks}


def confusion_matrix(
    predictions: torch.Tensor, targets: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """int64 [C, C] counts; entry (t, p) is the number of samples of class t predicted as p."""
    flat = targets.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_recall(confusion: torch.Tensor) -> torch.Tensor:
    """float [C]: recall of each class (diagonal / row sum); NaN for a class with no samples."""
    support = confusion.sum(dim=1).double()
    return torch.where(support > 0, confusion.diagonal().double() / support, math.nan)


def mean_per_class_recall(confusion: torch.Tensor) -> float:
    """Mean of the per-class recalls over the classes that have samples (balanced accuracy)."""
    return per_class_recall(confusion).nanmean().item()


def classification_metrics(
    logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> tuple[dict[str, float], torch.Tensor]:
    """Top-k accuracies (`top1`, `top5`, ...) and `mean_per_class_recall`, plus the confusion matrix.

    Returns `(metrics, confusion int64 [C, C])`.
    """
    if logits.shape[0] == 0:
        raise ValueError("classification metrics need at least one sample")
    confusion = confusion_matrix(logits.argmax(dim=1), targets, logits.shape[1])
    metrics = {f"top{k}": acc for k, acc in topk_accuracy(logits, targets, ks).items()}
    metrics["mean_per_class_recall"] = mean_per_class_recall(confusion)
    return metrics, confusion


def retrieval_recall(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    text_to_image: torch.Tensor,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Recall@k in both directions with several captions per image.

    `image_features` float [N, D] and `text_features` float [M, D] are compared by dot product
    (pass L2-normalised features for cosine similarity); `text_to_image` int64 [M] gives the image
    that each caption describes. Image->text: an image is a hit at k when any of its captions ranks
    in its top k texts. Text->image: a caption is a hit at k when its image ranks in its top k
    images. The rank of a positive is the number of candidates scoring strictly higher, so ties
    count in the query's favour. Similarities are computed `chunk_size` queries at a time.

    Returns `{"image_to_text_R@k": ..., "text_to_image_R@k": ...}`; images without a caption are
    left out of the image->text mean.
    """
    num_images = image_features.shape[0]
    owner = text_to_image.long()
    has_caption = torch.zeros(num_images, dtype=torch.bool)
    has_caption[owner] = True

    image_ranks = []
    for start in range(0, num_images, chunk_size):
        scores = image_features[start : start + chunk_size] @ text_features.T
        rows = torch.arange(start, start + scores.shape[0]).unsqueeze(1)
        positive = owner.unsqueeze(0) == rows
        best_positive = scores.masked_fill(~positive, -math.inf).amax(dim=1, keepdim=True)
        image_ranks.append((scores.masked_fill(positive, -math.inf) > best_positive).sum(dim=1))
    image_rank = torch.cat(image_ranks)[has_caption]

    text_ranks = []
    for start in range(0, text_features.shape[0], chunk_size):
        scores = text_features[start : start + chunk_size] @ image_features.T
        own = owner[start : start + scores.shape[0]]
        positive_score = scores.gather(1, own.unsqueeze(1))
        text_ranks.append((scores > positive_score).sum(dim=1))
    text_rank = torch.cat(text_ranks)

    metrics = {}
    for k in ks:
        metrics[f"image_to_text_R@{k}"] = (image_rank < k).double().mean().item()
        metrics[f"text_to_image_R@{k}"] = (text_rank < k).double().mean().item()
    return metrics
