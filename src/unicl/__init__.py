"""UniCL: unified contrastive learning in image-text-label space."""

from unicl.evaluate import build_zeroshot_classifier
from unicl.models import UniCLModel, create_model, list_models, load
from unicl.objective import (
    ClipLoss,
    MultiTaskLoss,
    UniCLLoss,
    clip_loss,
    multitask_loss,
    supcon_loss,
    target_labels,
    unicl_loss,
)

__all__ = [
    "ClipLoss",
    "MultiTaskLoss",
    "UniCLLoss",
    "UniCLModel",
    "build_zeroshot_classifier",
    "clip_loss",
    "create_model",
    "list_models",
    "load",
    "multitask_loss",
    "supcon_loss",
    "target_labels",
    "unicl_loss",
]
__version__ = "0.1.0"
