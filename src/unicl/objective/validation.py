"""Checks of the losses' arguments: shapes, dtypes, devices and finiteness, each failure a
``ValueError`` naming the argument."""

from __future__ import annotations

import torch


def validate_inputs(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    labels: torch.Tensor | None,
    logit_scale: torch.Tensor | float,
    *,
    check_finite: bool = True,
    allow_empty: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Check the loss's arguments; return the features and the scale as float32 tensors.

    ``labels`` None: the loss takes none (CLIP). ``check_finite`` scans the values (one host
    sync); the sharded loss agrees on it across ranks instead, so that all ranks raise together
    rather than some waiting in a collective. ``allow_empty``: a batch of no rows is accepted (a
    rank's share of a sharded loss).
    """
    for name, value in (("image_features", image_features), ("text_features", text_features)):
        if not isinstance(value, torch.Tensor) or value.dim() != 2:
            raise ValueError(f"{name} must be a 2-D tensor [B, D], got {_describe(value)}")
        if not value.dtype.is_floating_point:
            raise ValueError(f"{name} must be a floating-point tensor, got {value.dtype}")
    if image_features.shape[0] == 0 and not allow_empty:
        raise ValueError("image_features is empty: the batch needs at least one sample")
    if text_features.shape != image_features.shape:
        raise ValueError(
            f"text_features has shape {tuple(text_features.shape)} but image_features has "
            f"{tuple(image_features.shape)}: pass one text per image, in the same dimension"
        )
    if text_features.dtype != image_features.dtype:
        raise ValueError(
            f"text_features is {text_features.dtype} but image_features is {image_features.dtype}"
        )
    device = image_features.device
    if text_features.device != device:
        raise ValueError(f"text_features is on {text_features.device}, image_features on {device}")
    if labels is not None:
        validate_labels(labels, image_features.shape[0], device)
    scale = validated_scalar(logit_scale, device)
    images, texts = image_features.float(), text_features.float()
    if check_finite:
        raise_if_not_finite(images, texts, scale, all_finite(images, texts, scale))
    return images, texts, scale


def validate_labels(labels: torch.Tensor, rows: int, device: torch.device) -> None:
    """``ValueError`` unless ``labels`` is an int64 ``[rows]`` tensor on ``device``."""
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long:
        raise ValueError(f"labels must be an int64 tensor [B], got {_describe(labels)}")
    if labels.shape != (rows,):
        raise ValueError(f"labels has shape {tuple(labels.shape)}; expected ({rows},)")
    if labels.device != device:
        raise ValueError(f"labels is on {labels.device}, the features on {device}")


def all_finite(images: torch.Tensor, texts: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """A boolean scalar tensor: no NaN or infinity in the features or the scale (no sync)."""
    return torch.isfinite(images).all() & torch.isfinite(texts).all() & torch.isfinite(scale)


def raise_if_not_finite(
    images: torch.Tensor, texts: torch.Tensor, scale: torch.Tensor, finite: bool | torch.Tensor
) -> None:
    """Raise ``ValueError`` naming the first non-finite argument unless ``finite`` holds."""
    if bool(finite):
        return
    for name, value in (("image_features", images), ("text_features", texts)):
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
    if not bool(torch.isfinite(scale)):
        raise ValueError(f"logit_scale is not finite: {scale.item()}")
    raise ValueError("another rank's features or logit_scale contain NaN or infinite values")


def validated_scalar(
    value: torch.Tensor | float, device: torch.device, name: str = "logit_scale"
) -> torch.Tensor:
    """``value`` (a number, or a one-element floating-point tensor on ``device``) as a float32
    0-d tensor; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), device=device)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ValueError(f"{name} must be a scalar tensor or a number, got {_describe(value)}")
    if not value.dtype.is_floating_point:
        raise ValueError(f"{name} must be floating-point, got {value.dtype}")
    if value.device != device:
        raise ValueError(f"{name} is on {value.device}, the features on {device}")
    return value.float().reshape(())


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__
