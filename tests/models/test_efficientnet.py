"""EfficientNet-Lite: published sizes, TensorFlow padding, refusal of pickled checkpoints."""

import pytest
import torch
import torch.nn.functional as F

from unicl.errors import UserInputError
from unicl.models.efficientnet import VARIANTS, ConvBN, EfficientNet
from unicl.models.factory import build_image_encoder
from unicl.models.registry import IMAGE_TOWERS

from .conftest import parameter_count

# Published totals (TensorFlow's EfficientNet-Lite README) minus the 1000-way classifier,
# 1280 * 1000 + 1000 = 1.281 M.
PUBLISHED_TRUNK_PARAMS = {
    "efficientnet-lite0": 4.652e6 - 1.281e6,
    "efficientnet-lite1": 5.417e6 - 1.281e6,
    "efficientnet-lite2": 6.092e6 - 1.281e6,
    "efficientnet-lite3": 8.197e6 - 1.281e6,
    "efficientnet-lite4": 13.007e6 - 1.281e6,
}


@pytest.mark.parametrize("arch", sorted(PUBLISHED_TRUNK_PARAMS))
def test_lite_trunks_have_the_published_parameter_counts(arch):
    with torch.device("meta"):
        trunk = build_image_encoder({"arch": arch}, image_size=224)
    assert parameter_count(trunk) == pytest.approx(PUBLISHED_TRUNK_PARAMS[arch], rel=1e-3)
    assert trunk.width == 1280


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
