"""UniCL: unified contrastive learning in image-text-label space."""

from unicl.evaluate import build_zeroshot_classifier, create_model_and_transforms, get_tokenizer
from unicl.models import UniCLModel, create_model, list_models, load
from unicl.objective import UniCLLoss, supcon_loss, target_labels, unicl_loss

__all__ = [
    "UniCLLoss",
    "UniCLModel",
    "build_zeroshot_classifier",
    "create_model",
    "create_model_and_transforms",
    "get_tokenizer",
    "list_models",
    "load",
    "supcon_loss",
    "target_labels",
    "unicl_loss",
]
__version__ = "0.1.0"
