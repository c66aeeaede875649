"""Optimiser groups, the batch-size rule and the warm-up + cosine schedule."""

import math

import pytest
import torch
from torch import nn

from tests.conftest import build_shipped_model
from tests.models.test_block_groups import ToyTower
from unicl.errors import UserInputError
from unicl.models import create_model, list_models
from unicl.models.config import TowerLRScale, load_model_config
from unicl.models.swin import SwinBlock
from unicl.train import load_training_config
from unicl.train.config import OptimConfig, ScheduleConfig, TowerScaleConfig
from unicl.train.launch import ProcessContext
from unicl.train.logger import read_metrics
from unicl.train.loop import run_loop
from unicl.train.optim import (
    base_lr,
    build_optimizer,
    build_scheduler,
    lr_factor,
    lr_scales,
    no_decay_names,
    scaled_lr,
    tower_lr_scales,
)
from unicl.train.signals import StopRequest
from unicl.train.trainer import build_run


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
    model = build_shipped_model(name)
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


def rates(optimizer) -> dict[int, tuple[float, float]]:
    """id(parameter) -> (learning rate, weight decay) of its group."""
    return {
        id(p): (group["lr"], group["weight_decay"])
        for group in optimizer.param_groups
        for p in group["params"]
    }


def test_layer_decay_and_head_scale_give_each_parameter_its_rate():
    """unicl-tiny: image tower of 5 groups (stem, 4 blocks), text tower of 4 (embeddings, 2
    blocks, final norm); rates `lr * 0.5 ** (G - 1 - g)`, the projections and logit scale
    `lr * 10`; weight decay as without scales."""
    model = create_model("unicl-tiny")
    config = OptimConfig(weight_decay=0.05, layer_decay=0.5, head_lr_scale=10.0)
    got = rates(build_optimizer(model, config, lr=1e-3))
    params = dict(model.named_parameters())
    expected = {
        "image_encoder.stem.0.weight": (1e-3 * 0.5**4, 0.05),
        "image_encoder.stem.1.bias": (1e-3 * 0.5**4, 0.0),
        "image_encoder.stages.0.0.body.0.weight": (1e-3 * 0.5**3, 0.05),
        "image_encoder.stages.3.0.body.3.weight": (1e-3, 0.05),
        "text_encoder.token_embedding.weight": (1e-3 * 0.5**3, 0.0),
        "text_encoder.positional_embedding": (1e-3 * 0.5**3, 0.0),
        "text_encoder.blocks.0.attn.qkv.weight": (1e-3 * 0.5**2, 0.05),
        "text_encoder.blocks.1.mlp.0.bias": (1e-3 * 0.5, 0.0),
        "text_encoder.norm.weight": (1e-3, 0.0),
        "image_projection.weight": (1e-2, 0.05),
        "text_projection.weight": (1e-2, 0.05),
        "logit_scale": (1e-2, 0.0),
    }
    for name, (lr, decay) in expected.items():
        assert got[id(params[name])] == (pytest.approx(lr), decay), name
    plain = rates(build_optimizer(model, OptimConfig(weight_decay=0.05), lr=1e-3))
    assert {k: wd for k, (_, wd) in got.items()} == {k: wd for k, (_, wd) in plain.items()}
    assert {lr for lr, _ in plain.values()} == {1e-3}


def test_groups_pair_one_rate_with_one_weight_decay_and_hold_each_parameter_once():
    model = create_model("unicl-tiny")
    optimizer = build_optimizer(model, OptimConfig(layer_decay=0.8, head_lr_scale=3.0), lr=1.0)
    keys = [(g["lr_scale"], g["weight_decay"]) for g in optimizer.param_groups]
    assert len(keys) == len(set(keys)) == 2 * (5 + 1)  # scales 0.8**0..4 and 3, x decay or not
    assert [g["lr"] for g in optimizer.param_groups] == [
        g["lr_scale"] for g in optimizer.param_groups
    ]
    grouped = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    assert base_lr(optimizer) == pytest.approx(1.0)


def test_the_schedule_keeps_the_ratio_between_groups_through_warmup_and_decay():
    model = create_model("unicl-tiny")
    optimizer = build_optimizer(model, OptimConfig(layer_decay=0.7, head_lr_scale=5.0), lr=2e-3)
    schedule = ScheduleConfig(steps=12, warmup_steps=4, min_lr_ratio=0.1)
    scheduler = build_scheduler(optimizer, schedule)
    scales = [g["lr_scale"] for g in optimizer.param_groups]
    for step in range(12):
        lrs = [g["lr"] for g in optimizer.param_groups]
        assert lrs == pytest.approx([2e-3 * lr_factor(step, schedule) * s for s in scales])
        assert base_lr(optimizer) == pytest.approx(2e-3 * lr_factor(step, schedule))
        optimizer.step()
        scheduler.step()


def test_a_real_run_logs_the_base_rate_and_ends_with_the_ratios_it_began_with(tmp_path):
    config = load_training_config(
        "configs/demo.yaml",
        [
            f"run.output_dir={tmp_path}",
            "data.batch_size=8",
            "data.num_workers=0",
            "schedule.steps=3",
            "schedule.warmup_steps=2",
            "schedule.min_lr_ratio=0.1",
            "optim.layer_decay=0.6",
            "optim.head_lr_scale=4",
            "evaluation.zeroshot=[]",
            "logging.every_steps=1",
            "logging.progress=false",
        ],
    )
    state, batches, augment = build_run(config, ProcessContext(device=torch.device("cpu")))
    try:
        with StopRequest() as stop:
            run_loop(state, batches, augment, lambda state: {}, stop)
    finally:
        batches.close()
    schedule = config.schedule
    logged = [r["lr"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert logged == pytest.approx([5e-3 * lr_factor(s, schedule) for s in range(3)])
    for group in state.optimizer.param_groups:
        factor = lr_factor(3, schedule)
        assert group["lr"] == pytest.approx(5e-3 * group["lr_scale"] * factor)
        assert group["initial_lr"] == pytest.approx(5e-3 * group["lr_scale"])
    scales = sorted({g["lr_scale"] for g in state.optimizer.param_groups})
    assert scales == pytest.approx(sorted([4.0, *(0.6**k for k in range(5))]))


def test_rate_keys_are_checked():
    with pytest.raises(UserInputError, match=r"'optim.layer_decay' is 1.5; it must be in \(0, 1\]"):
        OptimConfig(layer_decay=1.5).validate()
    with pytest.raises(UserInputError, match=r"'optim.head_lr_scale' is 0; it must be > 0"):
        OptimConfig(head_lr_scale=0).validate()


def test_checkpoints_written_before_rate_scales_resume_at_scale_one():
    model = create_model("unicl-tiny")
    saved = build_optimizer(model, OptimConfig(), lr=1e-3).state_dict()
    for group in saved["param_groups"]:
        del group["lr_scale"]  # as the optimiser of an older checkpoint wrote them
    optimizer = build_optimizer(model, OptimConfig(), lr=1e-3)
    optimizer.load_state_dict(saved)
    assert base_lr(optimizer) == 1e-3


def test_a_family_without_layer_groups_trains_at_the_full_rate():
    """The default of `Tower.layer_groups()`: one group, `layer_decay ** 0 = 1`."""
    model = create_model("unicl-tiny")
    model.image_encoder = ToyTower(width=model.image_encoder.width)
    scales = lr_scales(model, OptimConfig(layer_decay=0.5, head_lr_scale=2.0))
    image = {name: s for name, s in scales.items() if name.startswith("image_encoder.")}
    assert len(image) == 6 and set(image.values()) == {1.0}
    assert scales["text_encoder.token_embedding.weight"] == 0.5**3
    assert scales["image_projection.weight"] == scales["logit_scale"] == 2.0


def test_a_tower_trains_at_the_share_its_model_config_states_unless_optim_says_otherwise():
    """`tower_lr_scale` multiplies the tower's layer-wise rates; the rest keeps `head_lr_scale`."""
    model = create_model("unicl-tiny", tower_lr_scale={"text": 0.1})
    scales = lr_scales(model, OptimConfig(layer_decay=0.5, head_lr_scale=2.0))
    assert scales["text_encoder.norm.weight"] == pytest.approx(0.1)
    assert scales["text_encoder.token_embedding.weight"] == pytest.approx(0.1 * 0.5**3)
    assert scales["image_encoder.stages.3.0.body.3.weight"] == 1.0
    assert scales["text_projection.weight"] == scales["logit_scale"] == 2.0
    chosen = OptimConfig(tower_lr_scale=TowerScaleConfig(image=0.5, text=1.0))
    assert tower_lr_scales(model, chosen) == {"image_encoder": 0.5, "text_encoder": 1.0}
    assert tower_lr_scales(model, OptimConfig()) == {"image_encoder": 1.0, "text_encoder": 0.1}


def test_pretrained_towers_train_at_a_hundredth_of_the_rate():
    assert load_model_config("unicl-tiny-minilm").tower_lr_scale == TowerLRScale(text=0.01)
    assert load_model_config("unicl-lite").tower_lr_scale == TowerLRScale(image=0.01, text=0.01)
    for name in set(list_models()) - {"unicl-tiny-minilm", "unicl-lite"}:
        assert load_model_config(name).tower_lr_scale == TowerLRScale(), name


def test_tower_rate_keys_are_checked():
    with pytest.raises(
        UserInputError, match=r"'optim.tower_lr_scale.text' is 0.0; it must be > 0 or null"
    ):
        load_training_config("configs/demo.yaml", ["optim.tower_lr_scale.text=0"])
    with pytest.raises(UserInputError, match=r"unknown config key 'optim.tower_lr_scale.txt'"):
        load_training_config("configs/demo.yaml", ["optim.tower_lr_scale.txt=0.1"])
    with pytest.raises(UserInputError, match=r"'tower_lr_scale.text' is 2; it must be a number in"):
        create_model("unicl-tiny", tower_lr_scale={"text": 2})
