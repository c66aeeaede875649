"""The UniCL objective: the loss (dense, tiled, distributed), TargetM and the SupCon baseline."""

from unicl.objective.distributed import UniCLLoss, gather_labels, gather_with_grad, is_distributed
from unicl.objective.loss import unicl_loss
from unicl.objective.supcon import supcon_loss
from unicl.objective.targets import CAPTION_CLASS_ID, target_labels

__all__ = [
    "CAPTION_CLASS_ID",
    "UniCLLoss",
    "gather_labels",
    "gather_with_grad",
    "is_distributed",
    "supcon_loss",
    "target_labels",
    "unicl_loss",
]
