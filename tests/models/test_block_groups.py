"""Every tower describes its depth (`layer_groups`): every parameter in exactly one group, the
groups in the order the forward pass uses them; `lock` freezes all but the last groups."""

import pytest
import torch
from torch import nn

from tests.conftest import build_shipped_model
from tests.models.test_tower_contract import IMAGE_FAMILIES, TEXT_FAMILIES, image_tower, text_model
from unicl.models import list_models
from unicl.models.tower import ImageSize, ImageTower, Width
from unicl.models.vit import VisionTransformer


def assert_groups_partition_the_parameters(tower: nn.Module) -> list[list[str]]:
    groups = tower.layer_groups()
    names = [name for group in groups for name in group]
    assert all(groups), "a layer group is empty"
    assert sorted(names) == sorted(name for name, _ in tower.named_parameters())
    assert len(names) == len(set(names)), "a parameter is in two groups"
    return groups


def groups_in_forward_order(tower: nn.Module, inputs: torch.Tensor) -> list[int]:
    """The group of each parameter in the order the forward pass first reaches it (a module's own
    parameters when the module is called)."""
    group_of = {name: g for g, group in enumerate(tower.layer_groups()) for name in group}
    names = {param: name for name, param in tower.named_parameters()}
    order: list[int] = []

    def record(module, _):
        for param in module.parameters(recurse=False):
            if param in names and group_of[names[param]] not in order[-1:]:
                order.append(group_of[names[param]])

    hooks = [module.register_forward_pre_hook(record) for module in tower.modules()]
    try:
        with torch.no_grad():
            tower.eval()(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return order


@pytest.mark.parametrize("family", sorted(IMAGE_FAMILIES))
def test_image_families_group_every_parameter_from_input_to_output(family):
    tower = image_tower(family)
    groups = assert_groups_partition_the_parameters(tower)
    order = groups_in_forward_order(tower, torch.randn(1, 3, 32, 32))
    assert order == list(range(len(groups)))


@pytest.mark.parametrize("family", sorted(TEXT_FAMILIES))
@pytest.mark.usefixtures("no_network")
def test_text_families_group_every_parameter_from_input_to_output(family):
    model = text_model(family)
    groups = assert_groups_partition_the_parameters(model.text_encoder)
    order = groups_in_forward_order(model.text_encoder, model.tokenize(["a wool coat"]))
    assert order == list(range(len(groups)))


EXPECTED_DEPTHS = {
    # image tower: stem + blocks (+ merges) + final norm; text tower: embeddings + blocks + norm
    "unicl-tiny": (1 + 4, 1 + 2 + 1),
    "unicl-tiny-minilm": (1 + 4, 1 + 6 + 1),
    "unicl-lite": (1 + 16 + 1, 1 + 6 + 1),
    "unicl-resnet50": (1 + 16, 1 + 12 + 1),
    "unicl-swin-t": (1 + 12 + 3 + 1, 1 + 12 + 1),
    "unicl-swin-b": (1 + 24 + 3 + 1, 1 + 12 + 1),
    "unicl-vit-b-16": (1 + 12 + 1, 1 + 12 + 1),
}


@pytest.mark.parametrize("name", list_models())
@pytest.mark.usefixtures("no_network")
def test_every_shipped_model_groups_its_towers_by_depth(name):
    model = build_shipped_model(name)
    image = assert_groups_partition_the_parameters(model.image_encoder)
    text = assert_groups_partition_the_parameters(model.text_encoder)
    assert (len(image), len(text)) == EXPECTED_DEPTHS[name]


def test_named_groups_of_each_family():
    resnet = image_tower("resnet").layer_groups()
    assert resnet[0] == ["stem.0.weight", "stem.1.weight", "stem.1.bias"]
    assert {n.split(".")[:3] == ["stages", "1", "0"] for n in resnet[2]} == {True}
    swin = [
        sorted({".".join(n.split(".")[:2]) for n in g}) for g in image_tower("swin").layer_groups()
    ]
    assert swin == [
        ["patch_embed.bias", "patch_embed.weight", "patch_norm.bias", "patch_norm.weight"],
        ["stages.0"],
        ["stages.0"],
        ["merges.0"],
        ["stages.1"],
        ["stages.1"],
        ["norm.bias", "norm.weight"],
    ]
    vit = image_tower("vit").layer_groups()
    assert set(vit[0]) == {"cls_token", "pos_embed", "patch_embed.weight", "patch_embed.bias"}
    assert vit[-1] == ["norm.weight", "norm.bias"]
    clip_vit = VisionTransformer(patch_size=8, width=32, depth=2, heads=2, image_size=32,
                                 pre_norm=True, patch_bias=False)  # fmt: skip
    assert set(clip_vit.layer_groups()[0]) == {
        "cls_token", "pos_embed", "patch_embed.weight", "norm_pre.weight", "norm_pre.bias"
    }  # fmt: skip
    text = text_model("transformer").text_encoder.layer_groups()
    assert set(text[0]) == {"token_embedding.weight", "positional_embedding"}
    assert text[-1] == ["norm.weight", "norm.bias"]


@pytest.mark.usefixtures("no_network")
def test_the_hugging_face_tower_groups_embeddings_encoder_layers_and_the_rest():
    groups = text_model("hf").text_encoder.layer_groups()
    assert {n.split(".")[1] for n in groups[0]} == {"embeddings"}
    for index, group in enumerate(groups[1:-1]):
        assert {".".join(n.split(".")[1:4]) for n in group} == {f"encoder.layer.{index}"}
    assert {n.split(".")[1] for n in groups[-1]} == {"pooler"}


class ToyTower(ImageTower):
    """A family that does not describe its depth: it inherits the one-group default."""

    def __init__(self, width: Width = 8, image_size: ImageSize = 32):
        super().__init__(image_size)
        self.width = width
        self.conv = nn.Conv2d(3, width, 3)
        self.bn = nn.BatchNorm2d(width)
        self.head = nn.Linear(width, width)

    def forward(self, images):
        return self.head(self.bn(self.conv(images)).mean(dim=(2, 3)))

    def no_weight_decay(self):
        return set()


def test_a_family_without_layer_groups_is_one_group_locked_or_trained_as_a_whole():
    tower = ToyTower()
    assert tower.layer_groups() == [[name for name, _ in tower.named_parameters()]]
    tower.lock(unlocked_groups=1)
    assert all(p.requires_grad for p in tower.parameters())
    tower.lock(unlocked_groups=0, freeze_bn_stats=True)
    assert not any(p.requires_grad for p in tower.parameters())
    assert tower.train().frozen_norms == ("bn",) and not tower.bn.training


def test_a_parameter_outside_every_group_is_named():
    tower = image_tower("vit")
    tower.proj = nn.Parameter(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="parameter 'proj' of VisionTransformer is in no layer"):
        tower.layer_groups()


def test_lock_freezes_all_but_the_last_groups_and_their_batchnorm_statistics():
    tower = image_tower("resnet")  # stem, stages.0.0, stages.1.0
    tower.lock(unlocked_groups=1, freeze_bn_stats=True)
    groups = tower.layer_groups()
    trainable = {name for name, p in tower.named_parameters() if p.requires_grad}
    assert trainable == set(groups[2])
    norms = {n: m for n, m in tower.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert set(tower.frozen_norms) == {n for n in norms if not n.startswith("stages.1.")}
    before = {n: m.running_mean.clone() for n, m in norms.items()}
    tower.eval().train()  # as evaluation during training does
    tower(torch.randn(4, 3, 32, 32))
    for name, module in norms.items():
        frozen = name in tower.frozen_norms
        assert module.training is not frozen
        assert torch.equal(module.running_mean, before[name]) is frozen, name


def test_lock_refuses_more_groups_than_the_tower_has():
    with pytest.raises(ValueError, match=r"unlocked_groups must be in \[0, 3\], got 4"):
        image_tower("resnet").lock(unlocked_groups=4)
