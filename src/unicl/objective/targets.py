"""TargetM: the label of every sample in the unified image-text-label space.

The paper's TargetM maps a batch to labels such that samples of one class share a label and each
image-text pair gets a label of its own. Here:

* an image-label sample keeps its class id (``class_ids[i] >= 0``);
* an image-text pair (``class_ids[i] == CAPTION_CLASS_ID``, i.e. -1) gets ``-1 - (h >> 1)`` where ``h`` is the 64-bit
  BLAKE2b digest of its caption: identical captions share a label (a repeated caption is not a false
  negative of itself), caption labels are negative so they never collide with class labels, and
  every rank computes the same label for the same caption without communicating;
* with ``unique_captions=True`` (the paper's exact rule) every caption is unique: the label hashes
  the sample's (rank, position) instead of its text.

Two different captions share a label only on a 63-bit hash collision (probability about
``B**2 / 2**64`` for a global batch of ``B`` captions).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from unicl import process_group
from unicl.process_group import Group

CAPTION_CLASS_ID = -1
"""The class id of an image-text pair: it has a caption, not a class."""


def _caption_label(key: str) -> int:
    digest = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")
    return -1 - (digest >> 1)


def target_labels(
    class_ids: torch.Tensor | Sequence[int],
    texts: Sequence[str | None],
    *,
    unique_captions: bool = False,
    rank: int | None = None,
    group: Group = None,
) -> torch.Tensor:
    """Labels for a batch: equal labels mark the positive pairs of the UniCL loss.

    Args:
        class_ids: int ``[B]``; ``>= 0`` is the sample's class in the unified label space,
            ``-1`` marks an image-text pair.
        texts: ``B`` strings; the caption of each image-text pair (ignored for image-label samples,
            whose text is a prompt of their class).
        unique_captions: give every caption its own label even when two are identical (the paper's
            TargetM); by default identical captions share one.
        rank: this process's rank in ``group``, used only with ``unique_captions`` (so that two
            ranks never give two captions one label); None reads it from ``group``. Pass it where
            the group is out of reach, e.g. in a DataLoader worker.
        group: the process group whose ranks share the batch (None: the default group when
            ``torch.distributed`` is initialised, else a single process of rank 0).

    Returns:
        int64 ``[B]`` on the device of ``class_ids`` (CPU for a sequence).
    """
    ids = torch.as_tensor(class_ids)
    if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(
            f"class_ids must be a 1-D integer tensor, got {ids.dtype} {tuple(ids.shape)}"
        )
    if len(texts) != ids.numel():
        raise ValueError(f"texts has {len(texts)} entries but class_ids has {ids.numel()}")
    ids = ids.long()
    if ids.numel() and int(ids.min()) < CAPTION_CLASS_ID:
        raise ValueError(f"class_ids must be >= 0 or -1 (image-text), found {int(ids.min())}")
    pair_positions = (ids == CAPTION_CLASS_ID).nonzero().flatten().tolist()
    if not pair_positions:
        return ids.clone()
    if unique_captions:
        owner = process_group.rank(group) if rank is None else rank
        keys = [f"\0{owner}:{position}" for position in pair_positions]
    else:
        keys = []
        for position in pair_positions:
            text = texts[position]
            if not isinstance(text, str):
                raise ValueError(f"texts[{position}] is an image-text caption and must be a str")
            keys.append(text)
    labels = ids.clone()
    caption_labels = torch.tensor([_caption_label(key) for key in keys], dtype=torch.long)
    labels[torch.tensor(pair_positions, device=ids.device)] = caption_labels.to(ids.device)
    return labels


@dataclass(frozen=True)
class LabelMix:
    """The labels of mixed images (mixup, cutmix): image ``i`` is ``weights[i]`` of its own label
    and ``1 - weights[i]`` of ``partner_labels[i]``, its membership of label ``c`` being::

        m_i(c) = w_i [c = y_i] + (1 - w_i) [c = y'_i]

    An unmixed row has ``y'_i = y_i`` (or ``w_i = 1``). Texts are never mixed. Every partner label
    is the label of some sample in the batch (the partner image's own), so the losses find each
    among the batch's labels.
    """

    partner_labels: torch.Tensor
    """int64 ``[B]``: ``y'``, TargetM labels like ``labels``."""
    weights: torch.Tensor
    """float ``[B]`` in ``[0, 1]``: ``w``, the share of each image's own label."""

    def validated(self, labels: torch.Tensor, batch_labels: torch.Tensor | None = None) -> LabelMix:
        """This mix with float32 weights, after checking it against the rows' ``labels``
        (shapes, dtypes, devices, weights in ``[0, 1]``) and every partner label against
        ``batch_labels``, the whole (gathered) batch's (None: ``labels``); one host sync.
        ``ValueError`` naming the field otherwise."""
        partner, weights = self.partner_labels, self.weights
        if not isinstance(partner, torch.Tensor) or partner.dtype != torch.long:
            raise ValueError("mix.partner_labels must be an int64 tensor [B]")
        if not isinstance(weights, torch.Tensor) or not weights.dtype.is_floating_point:
            raise ValueError("mix.weights must be a floating-point tensor [B]")
        for name, value in (("partner_labels", partner), ("weights", weights)):
            if value.shape != labels.shape:
                raise ValueError(
                    f"mix.{name} has shape {tuple(value.shape)}; expected {tuple(labels.shape)}"
                )
            if value.device != labels.device:
                raise ValueError(f"mix.{name} is on {value.device}, the labels on {labels.device}")
        weights = weights.float()
        if not bool(((weights >= 0) & (weights <= 1)).all()):
            raise ValueError("mix.weights must lie in [0, 1]")
        if not bool(torch.isin(partner, labels if batch_labels is None else batch_labels).all()):
            raise ValueError("every mix.partner_labels entry must be the label of a batch sample")
        return LabelMix(partner, weights)
