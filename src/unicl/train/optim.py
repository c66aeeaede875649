"""AdamW with decoupled weight decay on weight matrices only, the batch-size learning-rate rule,
and the warm-up + cosine schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from unicl.train.config import OptimConfig, ScheduleConfig


def no_decay_names(module: nn.Module) -> set[str]:
    """Names of the parameters of `module` excluded from weight decay.

    Every parameter with fewer than two dimensions (norm gains, biases, the logit scale), every
    `nn.Embedding` weight, and every name that `module` or any submodule declares with
    `no_weight_decay()` (the tower contract of `unicl.models.tower`, timm's convention), prefixed
    with the submodule's name. Names are never guessed: a table that no module declares is decayed.
    """
    names: set[str] = set()
    for prefix, child in module.named_modules():
        dot = f"{prefix}." if prefix else ""
        if isinstance(child, nn.Embedding):
            names.add(f"{dot}weight")
        declared = getattr(child, "no_weight_decay", None)
        if callable(declared):
            names.update(dot + name for name in declared())
    parameters = dict(module.named_parameters())
    names.update(name for name, param in parameters.items() if param.ndim < 2)
    return names & parameters.keys()


def scaled_lr(config: OptimConfig, global_batch: int) -> float:
    """The linear scaling rule: `lr * global_batch / reference_batch` (Goyal et al. 2017; Swin and
    UniCL use 5e-4 per 512 samples). With `reference_batch: null` the rate is `lr` unchanged."""
    if config.reference_batch is None:
        return config.lr
    return config.lr * global_batch / config.reference_batch


def build_optimizer(module: nn.Module, config: OptimConfig, lr: float) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of `module` in two groups: `decay` (weight matrices,
    `weight_decay`) and `no_decay` (see `no_decay_names`, weight decay 0)."""
    skip = no_decay_names(module)
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if param.requires_grad:
            (no_decay if name in skip else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay, "name": "decay"},
        {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
    ]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]], lr=lr, betas=config.betas, eps=config.eps
    )


def lr_factor(step: int, config: ScheduleConfig) -> float:
    """Multiplier of the peak rate before optimiser step `step` (0-based): `(step + 1) / warmup`
    during warm-up, then `m + (1 - m) * (1 + cos(pi * t)) / 2` with `t` the fraction of the decay
    phase done and `m = min_lr_ratio`."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    decay_steps = config.steps - config.warmup_steps
    t = min(1.0, (step - config.warmup_steps) / decay_steps)
    m = config.min_lr_ratio
    return m + (1 - m) * 0.5 * (1 + math.cos(math.pi * t))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: ScheduleConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """A `LambdaLR` applying `lr_factor`; call `.step()` once after each optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
