"""UniCL: unified contrastive learning in image-text-label space."""

from unicl.objective import UniCLLoss, supcon_loss, target_labels, unicl_loss

__all__ = ["UniCLLoss", "supcon_loss", "target_labels", "unicl_loss"]
__version__ = "0.1.0"
