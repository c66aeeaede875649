"""Optimiser groups, the batch-size rule and the warm-up + cosine schedule."""

import math

import pytest
import torch
from torch import nn

from unicl.train.config import OptimConfig, ScheduleConfig
from unicl.train.optim import build_optimizer, build_scheduler, lr_factor, no_decay_names, scaled_lr


class Towers(nn.Module):
    def __init__(self):
        super().__init__()
        self.token_embedding = nn.Embedding(10, 4)
        self.pos_embed = nn.Parameter(torch.zeros(1, 3, 4))
        self.proj = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def test_no_decay_on_norms_biases_embeddings_and_logit_scale():
    names = no_decay_names(Towers())
    assert names >= {
        "token_embedding.weight",
        "pos_embed",
        "proj.bias",
        "norm.weight",
        "norm.bias",
        "logit_scale",
    }
    assert "proj.weight" not in names


def test_optimizer_groups_hold_only_trainable_params():
    model = Towers()
    optimizer = build_optimizer(model, OptimConfig(weight_decay=0.1), lr=1e-3)
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["decay"]["weight_decay"] == 0.1
    assert groups["no_decay"]["weight_decay"] == 0.0
    assert [p is model.proj.weight for p in groups["decay"]["params"]] == [True]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    grouped = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert grouped == trainable


def test_linear_scaling_rule():
    assert scaled_lr(OptimConfig(lr=5e-4, reference_batch=512), 4096) == pytest.approx(4e-3)
    assert scaled_lr(OptimConfig(lr=5e-4, reference_batch=None), 4096) == 5e-4


def test_schedule_warms_up_linearly_then_follows_cosine_to_floor():
    config = ScheduleConfig(steps=110, warmup_steps=10, min_lr_ratio=0.1)
    assert [lr_factor(s, config) for s in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert lr_factor(9, config) == pytest.approx(1.0)
    assert lr_factor(10, config) == pytest.approx(1.0)
    assert lr_factor(60, config) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_factor(110, config) == pytest.approx(0.1)


def test_scheduler_drives_optimizer_lr():
    model = Towers()
    optimizer = build_optimizer(model, OptimConfig(), lr=1.0)
    scheduler = build_scheduler(optimizer, ScheduleConfig(steps=4, warmup_steps=2))
    seen = []
    for _ in range(4):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.5, 1.0, 1.0, 0.5])
