"""The UniCL objective: the loss (dense, tiled, across processes), TargetM and the SupCon baseline."""

from unicl.objective.gather import BatchGather, gather_labels, gather_with_grad
from unicl.objective.loss import UniCLLoss, unicl_loss
from unicl.objective.supcon import supcon_loss
from unicl.objective.targets import CAPTION_CLASS_ID, target_labels

__all__ = [
    "CAPTION_CLASS_ID",
    "BatchGather",
    "UniCLLoss",
    "gather_labels",
    "gather_with_grad",
    "supcon_loss",
    "target_labels",
    "unicl_loss",
]
