"""Linear probe: a logistic regression on frozen image embeddings, L2 chosen on validation data.

The image tower encodes the training and test images once (normalised `encode_image`); the probe
(`unicl.evaluate.logistic_regression`) picks its L2 strength on a stratified split of the training
features, is refitted on all of them, and is scored on the test features.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from unicl.data import Modality
from unicl.errors import UserInputError
from unicl.evaluate.embed import Shards, encode_dataset
from unicl.evaluate.inputs import EvalData, open_eval_dataset
from unicl.evaluate.logistic_regression import (
    DEFAULT_L2_GRID,
    fit_logistic_regression,
    select_l2,
)
from unicl.evaluate.metrics import classification_metrics

logger = logging.getLogger("unicl.evaluate")


def linear_probe_on_features(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int,
    *,
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
    validation_fraction: float = 0.2,
    seed: int = 0,
    max_iter: int = 200,
) -> dict[str, float | int | dict[str, float]]:
    """Probe metrics from features float [N, D] / labels int64 [N] of each split.

    Returns `top1`, `top5`, `mean_per_class_recall` on the test split, the chosen `l2`,
    `l2_at_grid_edge` (the best strength is the grid's strongest or weakest, so a better one may
    lie outside it; also logged as a warning), `validation_top1` per L2 strength (keys formatted
    `%g`), `num_train` and `num_test`.
    """
    best, scores = select_l2(
        train_features,
        train_labels,
        num_classes,
        l2_grid,
        validation_fraction=validation_fraction,
        seed=seed,
        max_iter=max_iter,
    )
    probe = fit_logistic_regression(
        train_features, train_labels, num_classes, best, max_iter=max_iter
    )
    metrics, _ = classification_metrics(probe.logits(test_features.float()), test_labels, ks=(1, 5))
    at_edge = len(l2_grid) > 1 and best in (min(l2_grid), max(l2_grid))
    if at_edge:
        logger.warning(
            "the probe's best L2 strength %g is at the edge of its grid %s; a better one may lie "
            "outside it (pass a wider l2_grid)",
            best,
            sorted(l2_grid),
        )
    return {
        **metrics,
        "l2": best,
        "l2_at_grid_edge": at_edge,
        "validation_top1": {f"{l2:g}": accuracy for l2, accuracy in scores.items()},
        "num_train": len(train_labels),
        "num_test": len(test_labels),
    }


def linear_probe(
    model: nn.Module,
    train: EvalData,
    test: EvalData,
    *,
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
    validation_fraction: float = 0.2,
    seed: int = 0,
    max_iter: int = 200,
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool | None = None,
    shards: Shards | None = None,
) -> dict[str, float | int | dict[str, float]]:
    """Linear-probe accuracy of `model`'s image tower: train on `train`, score on `test`
    (images encoded by the ranks of `shards`, if given; each rank fits the same probe).

    Both must be image-label data with the same classes in the same order. Returns the metrics
    of `linear_probe_on_features` plus `skipped` (unreadable images in either split).
    """
    train_set = open_eval_dataset(train, model, modality=Modality.IMAGE_LABEL)
    test_set = open_eval_dataset(test, model, modality=Modality.IMAGE_LABEL)
    if train_set.class_names != test_set.class_names:
        raise UserInputError(
            f"the training classes {train_set.class_names} differ from the test classes "
            f"{test_set.class_names}; probe on two splits of the same labelled data"
        )
    options = {
        "batch_size": batch_size,
        "num_workers": num_workers,
        "progress": progress,
        "shards": shards,
    }
    encoded_train = encode_dataset(model, train_set, **options)
    encoded_test = encode_dataset(model, test_set, **options)
    result = linear_probe_on_features(
        encoded_train.features,
        torch.tensor(encoded_train.targets, dtype=torch.int64),
        encoded_test.features,
        torch.tensor(encoded_test.targets, dtype=torch.int64),
        len(train_set.class_names),
        l2_grid=l2_grid,
        validation_fraction=validation_fraction,
        seed=seed,
        max_iter=max_iter,
    )
    return {**result, "skipped": encoded_train.skipped + encoded_test.skipped}
