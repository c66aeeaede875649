"""Image-text retrieval: recall@k in both directions, several captions per image allowed."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import Subset

from unicl.data import Modality
from unicl.errors import UserInputError
from unicl.evaluate.embed import Shards, embed_texts, encode_dataset
from unicl.evaluate.inputs import EvalData, image_groups, open_eval_dataset
from unicl.evaluate.metrics import retrieval_recall


def evaluate_retrieval(
    model: nn.Module,
    data: EvalData,
    *,
    ks: Sequence[int] = (1, 5, 10),
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool | None = None,
    shards: Shards | None = None,
) -> dict[str, float | int]:
    """Recall@k of `model` on image-text `data` (encoded by the ranks of `shards`, if given).

    Samples that show the same image (see `image_groups`) are one image with several captions:
    each image is encoded once, each caption once. Returns `image_to_text_R@k`,
    `text_to_image_R@k` (fractions), `num_images`, `num_texts` and `skipped` (unreadable images,
    whose captions are left out too).
    """
    dataset = open_eval_dataset(data, model, modality=Modality.IMAGE_TEXT)
    groups = image_groups(dataset)
    firsts = sorted(set(groups))
    encoded = encode_dataset(
        model,
        Subset(dataset, firsts),
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        shards=shards,
    )
    kept = [firsts[position] for position in encoded.indices.tolist()]
    row_of = {sample: row for row, sample in enumerate(kept)}
    caption_of = dict(zip(kept, encoded.targets, strict=True))
    texts, owners = [], []
    for sample, first in enumerate(groups):
        if first not in row_of:
            continue
        text = caption_of[first] if sample == first else dataset.source.raw(sample).text
        if text:
            texts.append(text)
            owners.append(row_of[first])
    if not texts:
        raise UserInputError(f"{dataset.source.describe()} has no captions to retrieve")
    text_features = embed_texts(
        model, texts, batch_size=batch_size, progress=progress, shards=shards
    )
    metrics = retrieval_recall(encoded.features, text_features, torch.tensor(owners), ks=ks)
    return {
        **metrics,
        "num_images": len(kept),
        "num_texts": len(texts),
        "skipped": len(firsts) - len(kept),
    }
