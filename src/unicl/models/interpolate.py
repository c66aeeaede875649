"""Weight-space ensembles of a zero-shot and a fine-tuned model (WiSE-FT, Wortsman et al. 2022).

For a mixing coefficient `alpha` in [0, 1], every floating tensor of the state dict becomes

    theta(alpha) = (1 - alpha) * theta_zeroshot + alpha * theta_finetuned

computed as `theta_zeroshot + alpha * (theta_finetuned - theta_zeroshot)` (`torch.lerp`) in at
least float32, then cast back. `alpha = 0` and `alpha = 1` return the endpoints' tensors
themselves, bit for bit. Integer and boolean buffers (BatchNorm's `num_batches_tracked`) are
counters, not weights: they are taken from the fine-tuned model.
"""

from __future__ import annotations

import copy

import torch

from unicl.errors import UserInputError
from unicl.models.model import UniCLModel


def interpolate_weights(zeroshot: UniCLModel, finetuned: UniCLModel, alpha: float) -> UniCLModel:
    """A new model, a copy of `finetuned` (its config and tokenizer) holding the WiSE-FT weights
    `(1 - alpha) * zeroshot + alpha * finetuned` (see the module docstring), `alpha` in [0, 1].

    Models of different architectures (another tensor name, shape or dtype, or another tokenizer)
    are refused with a one-line `UserInputError` naming the first difference."""
    if not 0.0 <= alpha <= 1.0:
        raise UserInputError(f"alpha is {alpha}; it must be between 0 and 1")
    _check_same_architecture(zeroshot, finetuned)
    start = zeroshot.state_dict()
    mixed = {}
    for name, end in finetuned.state_dict().items():
        if not end.is_floating_point() or alpha == 1.0:
            mixed[name] = end
        elif alpha == 0.0:
            mixed[name] = start[name]
        else:
            dtype = torch.promote_types(end.dtype, torch.float32)
            begin = start[name].to(end.device, dtype)
            mixed[name] = torch.lerp(begin, end.to(dtype), alpha).to(end.dtype)
    model = copy.deepcopy(finetuned)
    model.load_state_dict(mixed)
    return model


def _check_same_architecture(zeroshot: UniCLModel, finetuned: UniCLModel) -> None:
    a, b = zeroshot.state_dict(), finetuned.state_dict()
    for name in [*a, *(n for n in b if n not in a)]:
        if name not in a or name not in b:
            which = "zero-shot" if name in a else "fine-tuned"
            raise UserInputError(
                f"the models have different architectures: {name!r} is only in the {which} model"
            )
        if (a[name].shape, a[name].dtype) != (b[name].shape, b[name].dtype):
            raise UserInputError(
                f"the models have different architectures: {name!r} is {tuple(a[name].shape)} "
                f"{a[name].dtype} in the zero-shot model and {tuple(b[name].shape)} "
                f"{b[name].dtype} in the fine-tuned one"
            )
    if zeroshot.tokenizer.to_str() != finetuned.tokenizer.to_str():
        raise UserInputError(
            "the models have different tokenizers, so their text weights mean different things; "
            "interpolate a fine-tuned model with the model it was fine-tuned from"
        )
