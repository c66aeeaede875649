"""AdamW with decoupled weight decay on weight matrices only, per-parameter learning-rate scales
(a scale per tower, layer-wise decay through the towers, a head scale), the batch-size
learning-rate rule, and the warm-up + cosine schedule."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from unicl.models.model import UniCLModel
from unicl.models.tower import Tower
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


def tower_lr_scales(module: nn.Module, config: OptimConfig) -> dict[str, float]:
    """The rate scale of each tower of the `UniCLModel`s inside `module`, by the tower's module
    name (`model.text_encoder`): `optim.tower_lr_scale.<side>` when set, else what the model's
    config states (`ModelConfig.tower_lr_scale`: below 1 for a tower that comes pretrained)."""
    scales = {}
    for prefix, child in module.named_modules():
        if isinstance(child, UniCLModel):
            dot = f"{prefix}." if prefix else ""
            for side in ("image", "text"):
                chosen = getattr(config.tower_lr_scale, side)
                stated = getattr(child.config.tower_lr_scale, side)
                scales[f"{dot}{side}_encoder"] = stated if chosen is None else chosen
    return scales


def lr_scales(module: nn.Module, config: OptimConfig) -> dict[str, float]:
    """The multiplier of the base rate of every parameter of `module`, by name.

    A parameter in layer group `g` of a tower (any `unicl.models.tower.Tower` submodule) of `G`
    groups (`Tower.layer_groups()`, input to output) gets `t * layer_decay ** (G - 1 - g)`, with
    `t` the tower's `tower_lr_scales` value (1 for a tower outside a `UniCLModel`): the group
    nearest the output trains at `t` times the rate, each group below it `layer_decay` times
    slower (layer-wise learning-rate decay, as in BEiT and timm's `param_groups_layer_decay`).
    Every parameter outside the towers (projections, logit scale, an objective's head) gets
    `head_lr_scale`."""
    scales = {name: config.head_lr_scale for name, _ in module.named_parameters()}
    towers = tower_lr_scales(module, config)
    for prefix, child in module.named_modules():
        if isinstance(child, Tower):
            groups = child.layer_groups()
            dot = f"{prefix}." if prefix else ""
            for index, names in enumerate(groups):
                depth = config.layer_decay ** (len(groups) - 1 - index)
                scale = towers.get(prefix, 1.0) * depth
                scales.update({dot + name: scale for name in names})
    return scales


def build_optimizer(module: nn.Module, config: OptimConfig, lr: float) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of `module` (locked ones are left out), one group per
    pair of weight decay and learning-rate scale, two independent choices: weight decay
    `weight_decay` on weight matrices and 0 on `no_decay_names`; rate `lr * scale` with the
    parameter's `lr_scales` value, kept as the group's `lr_scale`. Groups are ordered by scale,
    largest first, then decayed before not decayed (`decay` and `no_decay` without scales). On
    CUDA the update is PyTorch's fused kernel (one launch for all parameters)."""
    skip = no_decay_names(module)
    scales = lr_scales(module, config)
    groups: dict[tuple[float, bool], dict[str, Any]] = {}
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        scale, decay = scales[name], name not in skip
        group = groups.setdefault(
            (scale, decay),
            {
                "params": [],
                "weight_decay": config.weight_decay if decay else 0.0,
                "lr": lr * scale,
                "lr_scale": scale,
                "name": ("decay" if decay else "no_decay")
                + (f" x{scale:.4g}" if scale != 1 else ""),
            },
        )
        group["params"].append(param)
    ordered = [groups[key] for key in sorted(groups, key=lambda key: (-key[0], not key[1]))]
    on_cuda = all(p.is_cuda for group in ordered for p in group["params"])
    return torch.optim.AdamW(
        ordered, lr=lr, betas=config.betas, eps=config.eps, fused=True if on_cuda else None
    )


def base_lr(optimizer: torch.optim.Optimizer, key: str = "lr") -> float:
    """The rate of a parameter at scale 1 (every group's rate is this times its `lr_scale`, 1 in
    checkpoints written before scales existed): the current one, or with `key="initial_lr"` the
    peak that the schedule scales."""
    group = optimizer.param_groups[0]
    return group[key] / group.get("lr_scale", 1.0)


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
    """A `LambdaLR` applying `lr_factor` to every group's own initial rate, so the ratios between
    groups (their `lr_scale`s) hold throughout; call `.step()` once after each optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
