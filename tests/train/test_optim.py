"""Optimiser groups, the batch-size rule and the warm-up + cosine schedule."""

import math

import pytest
import torch
from torch import nn

from unicl.models import create_model, list_models
from unicl.models.swin import SwinBlock
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

    def no_weight_decay(self):
        return {"pos_embed"}


class Task(nn.Module):
    """A wrapper holding the towers, as the training objectives do, with an undeclared table."""

    def __init__(self):
        super().__init__()
        self.model = Towers()
        self.table = nn.Parameter(torch.zeros(3, 4))


def test_no_decay_on_norms_biases_embeddings_declared_tables_and_logit_scale():
    assert no_decay_names(Towers()) == {
        "token_embedding.weight",
        "pos_embed",
        "proj.bias",
        "norm.weight",
        "norm.bias",
        "logit_scale",
        "frozen.bias",
    }


def test_submodule_declarations_are_prefixed_and_no_name_is_guessed():
    names = no_decay_names(Task())
    assert {"model.pos_embed", "model.token_embedding.weight", "model.logit_scale"} <= names
    assert "table" not in names and "model.proj.weight" not in names


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


def weight_matrices(model: nn.Module) -> set[str]:
    """The weights of every linear and convolution layer: the parameters that must decay."""
    layers = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return {f"{name}.weight" for name, m in model.named_modules() if isinstance(m, layers)}


@pytest.mark.parametrize("name", list_models())
def test_every_shipped_model_decays_exactly_its_weight_matrices(name):
    if name in ("unicl-tiny-minilm", "unicl-lite"):
        model = create_model(name)  # pretrained towers: their weights are read from disk
    else:
        with torch.device("meta"):
            model = create_model(name)
    parameters = dict(model.named_parameters())
    names = no_decay_names(model)
    assert names == parameters.keys() - weight_matrices(model)
    assert {n for n, p in parameters.items() if p.ndim < 2} <= names
    assert "logit_scale" in names and model.no_weight_decay() <= names
    blocks = [m for m in model.modules() if isinstance(m, SwinBlock)]
    tables = {n for n in parameters if n.endswith("relative_position_bias")}
    assert len(tables) == len(blocks) and tables <= names
    assert len(blocks) == {"unicl-swin-t": 12, "unicl-swin-b": 24}.get(name, 0)


def test_swin_relative_position_tables_go_to_the_no_decay_group():
    vision = {"arch": "swin", "embed_dim": 16, "depths": [2, 2], "heads": [2, 4], "window": 4}
    model = create_model("unicl-tiny", vision=vision)
    groups = {g["name"]: g for g in build_optimizer(model, OptimConfig(), lr=1e-3).param_groups}
    no_decay = {id(p) for p in groups["no_decay"]["params"]}
    tables = [m.relative_position_bias for m in model.modules() if isinstance(m, SwinBlock)]
    assert len(tables) == 4 and all(id(t) in no_decay for t in tables)
    assert {id(p) for p in groups["decay"]["params"]} == {
        id(p) for n, p in model.named_parameters() if n in weight_matrices(model)
    }
