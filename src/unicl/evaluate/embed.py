"""Batched encoding of images and texts with a UniCL model, with a progress bar for long inputs.

Every function here runs the model in eval mode without gradients on the model's own device and
puts the model back in the mode it was in (training calls these at its evaluation interval).
Features come back L2-normalised, float32, on the CPU.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm import tqdm

from unicl.data import collate_skipping_bad
from unicl.errors import UserInputError


def model_device(model: nn.Module) -> torch.device:
    """The device holding the model's parameters."""
    return next(model.parameters()).device


@contextlib.contextmanager
def inference_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and no gradients inside; the model's previous train/eval mode restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _progress(total: int, batch_size: int, progress: bool | None, unit: str, desc: str) -> tqdm:
    show = progress if progress is not None else sys.stderr.isatty() and total > batch_size
    return tqdm(total=total, unit=unit, desc=desc, disable=not show, leave=False)


class _WithIndex(Dataset):
    """Items `(image, (index, target))`, or None where the wrapped dataset gives None."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        item = self.dataset[index]
        return None if item is None else (item[0], (index, item[1]))


@dataclass
class EncodedImages:
    """Image features and what the dataset said about each encoded image.

    features: float32 [N, E], L2-normalised. targets: the N targets (class index or caption).
    indices: int64 [N], each row's position in the dataset. skipped: items the dataset gave as
    None (unreadable or missing images), which have no row.
    """

    features: torch.Tensor
    targets: list[Any]
    indices: torch.Tensor
    skipped: int


def encode_dataset(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool | None = None,
) -> EncodedImages:
    """Encode every image of a map-style dataset of `(image float [3,H,W], target)` items.

    Items that are None (a bad sample, as `unicl.data.EvalDataset` gives them) are skipped and
    counted. Raises `UserInputError` when no image at all could be encoded.
    """
    loader = DataLoader(
        _WithIndex(dataset),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_skipping_bad,
    )
    device = model_device(model)
    features, targets, indices = [], [], []
    with (
        inference_mode(model),
        _progress(len(dataset), batch_size, progress, "img", "encoding images") as bar,
    ):
        for images, batch in loader:
            if batch:
                encoded = model.encode_image(images.to(device, non_blocking=True), normalize=True)
                features.append(encoded.float().cpu())
                indices.extend(index for index, _ in batch)
                targets.extend(target for _, target in batch)
            bar.update(min(batch_size, len(dataset) - bar.n))
    if not features:
        raise UserInputError(
            f"none of the {len(dataset)} images could be encoded (empty, missing or unreadable)"
        )
    return EncodedImages(
        torch.cat(features), targets, torch.tensor(indices), len(dataset) - len(indices)
    )


def embed_images(
    model: nn.Module,
    images: torch.Tensor | Dataset,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool | None = None,
) -> torch.Tensor:
    """float32 [N, E] normalised image embeddings.

    `images`: a float tensor [N, 3, H, W] already transformed for the model (see
    `unicl.data.EvalTransform`), or a map-style dataset of `(image tensor, target)` items
    (items that are None are skipped, so rows then no longer match positions: use
    `encode_dataset` to know which were kept).
    """
    if isinstance(images, torch.Tensor):
        images = TensorDataset(images, torch.zeros(len(images)))
    encoded = encode_dataset(
        model, images, batch_size=batch_size, num_workers=num_workers, progress=progress
    )
    return encoded.features


def embed_texts(
    model: nn.Module,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    progress: bool | None = None,
) -> torch.Tensor:
    """float32 [M, E] normalised embeddings of `texts`, tokenised with the model's tokenizer.

    Every use of the text tower (zero-shot, prediction, retrieval, text export) goes through
    here, so a model whose text tower was never trained (`config.image_only`) is refused here."""
    if getattr(getattr(model, "config", None), "image_only", False):
        raise UserInputError(
            "this model's text tower was not trained (it comes from a ce or supcon run), so it "
            "cannot embed texts or classify zero-shot; use its image features: eval linear-probe, "
            "or embed --modality image"
        )
    if len(texts) == 0:
        raise UserInputError("there are no texts to encode: the list is empty")
    device = model_device(model)
    features = []
    with (
        inference_mode(model),
        _progress(len(texts), batch_size, progress, "text", "encoding texts") as bar,
    ):
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            tokens = model.tokenize(batch).to(device, non_blocking=True)
            features.append(model.encode_text(tokens, normalize=True).float().cpu())
            bar.update(len(batch))
    return torch.cat(features)
