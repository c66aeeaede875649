"""Batched encoding of images and texts with a UniCL model, with a progress bar for long inputs.

Every function here runs the model in eval mode without gradients on the model's own device and
puts the model back in the mode it was in (training calls these at its evaluation interval).
Features come back L2-normalised, float32, on the CPU. With `shards=Shards(group)` the ranks of
`group` share the work: each encodes a contiguous share of the items and every rank receives all
features in item order, as one process would have computed them.
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

from unicl import process_group
from unicl.data import collate_skipping_bad
from unicl.errors import UserInputError
from unicl.process_group import Group


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


@dataclass(frozen=True)
class Shards:
    """Encoding shared by the ranks of `group` (None: the default group, as in
    `torch.distributed`): rank `r` of `W` encodes items `[n * r // W, n * (r + 1) // W)` of `n`,
    and the features are gathered to every rank in item order. Every rank of `group` must make
    the same call with the same items."""

    group: Group = None

    def share(self, count: int) -> range:
        """The positions, among `count` items, that this rank encodes."""
        rank, size = process_group.rank(self.group), process_group.world_size(self.group)
        return range(count * rank // size, count * (rank + 1) // size)


class _WithIndex(Dataset):
    """Items `(image, (position, target))` of the wrapped dataset at `positions`, or None where
    the dataset gives None."""

    def __init__(self, dataset: Dataset, positions: range) -> None:
        self.dataset = dataset
        self.positions = positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int):
        position = self.positions[index]
        item = self.dataset[position]
        return None if item is None else (item[0], (position, item[1]))


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
    shards: Shards | None = None,
) -> EncodedImages:
    """Encode every image of a map-style dataset of `(image float [3,H,W], target)` items.

    Items that are None (a bad sample, as `unicl.data.EvalDataset` gives them) are skipped and
    counted. Raises `UserInputError` when no image at all could be encoded (on every rank
    together when sharded).
    """
    positions = range(len(dataset)) if shards is None else shards.share(len(dataset))
    loader = DataLoader(
        _WithIndex(dataset, positions),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_skipping_bad,
        pin_memory=model_device(model).type == "cuda",
    )
    device = model_device(model)
    features, targets, indices = [], [], []
    with (
        inference_mode(model),
        _progress(len(positions), batch_size, progress, "img", "encoding images") as bar,
    ):
        for images, batch in loader:
            if batch:
                encoded = model.encode_image(images.to(device, non_blocking=True), normalize=True)
                features.append(encoded.float().cpu())
                indices.extend(index for index, _ in batch)
                targets.extend(target for _, target in batch)
            bar.update(min(batch_size, len(positions) - bar.n))
    local = torch.cat(features) if features else torch.empty(0, model.embed_dim)
    encoded = EncodedImages(local, targets, torch.tensor(indices, dtype=torch.int64), 0)
    if shards is not None:
        encoded = _gathered(encoded, device, shards.group)
    if not len(encoded.features):
        raise UserInputError(
            f"none of the {len(dataset)} images could be encoded (empty, missing or unreadable)"
        )
    encoded.skipped = len(dataset) - len(encoded.indices)
    return encoded


def _gathered(encoded: EncodedImages, device: torch.device, group: Group) -> EncodedImages:
    """Every rank's share of `encoded`, concatenated in rank order (so in item order)."""
    sizes = process_group.gather_sizes(len(encoded.indices), device, group)
    features = process_group.gather_rows(encoded.features.to(device), group, sizes)
    indices = process_group.gather_rows(encoded.indices.to(device), group, sizes)
    targets = [t for part in process_group.gather_objects(encoded.targets, group) for t in part]
    return EncodedImages(features.cpu(), targets, indices.cpu(), 0)


def embed_images(
    model: nn.Module,
    images: torch.Tensor | Dataset,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool | None = None,
    shards: Shards | None = None,
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
        model,
        images,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        shards=shards,
    )
    return encoded.features


def embed_texts(
    model: nn.Module,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    progress: bool | None = None,
    shards: Shards | None = None,
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
    positions = range(len(texts)) if shards is None else shards.share(len(texts))
    features = [torch.empty(0, model.embed_dim)]
    with (
        inference_mode(model),
        _progress(len(positions), batch_size, progress, "text", "encoding texts") as bar,
    ):
        for start in range(0, len(positions), batch_size):
            batch = [texts[i] for i in positions[start : start + batch_size]]
            tokens = model.tokenize(batch).to(device, non_blocking=True)
            features.append(model.encode_text(tokens, normalize=True).float().cpu())
            bar.update(len(batch))
    local = torch.cat(features)
    if shards is None:
        return local
    return process_group.gather_rows(local.to(device), shards.group).cpu()
