"""UniCL: unified contrastive learning in image-text-label space.

The public names below are imported on first use (PEP 562), so that `import unicl.cli`, the
`unicl` command's `--help` and its argument errors do not pay for importing PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "build_zeroshot_classifier": "unicl.evaluate",
    "create_model_and_transforms": "unicl.evaluate",
    "get_tokenizer": "unicl.evaluate",
    "UniCLModel": "unicl.models",
    "create_model": "unicl.models",
    "list_models": "unicl.models",
    "load": "unicl.models",
    "ClipLoss": "unicl.objective",
    "LabelMix": "unicl.objective",
    "LabelSigmoidLoss": "unicl.objective",
    "label_sigmoid_loss": "unicl.objective",
    "MultiTaskLoss": "unicl.objective",
    "clip_loss": "unicl.objective",
    "multitask_loss": "unicl.objective",
    "UniCLLoss": "unicl.objective",
    "supcon_loss": "unicl.objective",
    "target_labels": "unicl.objective",
    "unicl_loss": "unicl.objective",
}

__all__ = [
    "ClipLoss",
    "LabelMix",
    "LabelSigmoidLoss",
    "MultiTaskLoss",
    "UniCLLoss",
    "UniCLModel",
    "build_zeroshot_classifier",
    "clip_loss",
    "create_model",
    "create_model_and_transforms",
    "get_tokenizer",
    "label_sigmoid_loss",
    "list_models",
    "load",
    "multitask_loss",
    "supcon_loss",
    "target_labels",
    "unicl_loss",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from unicl.evaluate import build_zeroshot_classifier, create_model_and_transforms, get_tokenizer
    from unicl.models import UniCLModel, create_model, list_models, load
    from unicl.objective import (
        ClipLoss,
        LabelMix,
        LabelSigmoidLoss,
        MultiTaskLoss,
        UniCLLoss,
        clip_loss,
        label_sigmoid_loss,
        multitask_loss,
        supcon_loss,
        target_labels,
        unicl_loss,
    )


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'unicl' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
