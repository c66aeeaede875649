"""The UniCL objective: the loss (dense, tiled, across processes), TargetM and the paper's
baselines (SupCon, CLIP, multi-task), and the label-aware sigmoid loss."""

from unicl.objective.clip_baseline import ClipLoss, clip_loss
from unicl.objective.gather import BatchGather, gather_labels, gather_with_grad
from unicl.objective.loss import UniCLLoss, unicl_loss
from unicl.objective.multitask import MultiTaskLoss, labelled_cross_entropy, multitask_loss
from unicl.objective.sigmoid import LabelSigmoidLoss, label_sigmoid_loss
from unicl.objective.supcon import supcon_loss
from unicl.objective.targets import CAPTION_CLASS_ID, LabelMix, target_labels

__all__ = [
    "CAPTION_CLASS_ID",
    "BatchGather",
    "ClipLoss",
    "LabelMix",
    "LabelSigmoidLoss",
    "MultiTaskLoss",
    "UniCLLoss",
    "clip_loss",
    "gather_labels",
    "gather_with_grad",
    "label_sigmoid_loss",
    "labelled_cross_entropy",
    "multitask_loss",
    "supcon_loss",
    "target_labels",
    "unicl_loss",
]
