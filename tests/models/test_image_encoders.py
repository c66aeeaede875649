"""Image trunks: published parameter counts, pooled shapes at many resolutions, checkpointing."""

import pytest
import torch

from unicl.models import resnet, swin, vit
from unicl.models.factory import build_image_encoder
from unicl.models.registry import IMAGE_TOWERS

from .conftest import parameter_count

# Published totals minus the 1000-way classifier (torchvision / timm / the Swin paper).
PUBLISHED_TRUNK_PARAMS = {
    "resnet18": 11.18e6,
    "resnet50": 23.51e6,
    "resnet101": 42.50e6,
    "swin-t": 27.52e6,
    "swin-s": 48.84e6,
    "swin-b": 86.74e6,
    "vit-ti-16": 5.52e6,
    "vit-s-16": 21.67e6,
    "vit-b-16": 85.80e6,
    "vit-b-32": 87.46e6,
}
WIDTHS = {"resnet18": 512, "resnet50": 2048, "swin-t": 768, "swin-b": 1024, "vit-b-16": 768}


@pytest.mark.parametrize("arch", sorted(PUBLISHED_TRUNK_PARAMS))
def test_trunk_parameter_count_matches_the_published_architecture(arch):
    with torch.device("meta"):
        trunk = build_image_encoder({"arch": arch}, image_size=224)
    assert parameter_count(trunk) == pytest.approx(PUBLISHED_TRUNK_PARAMS[arch], rel=0.01)
    if arch in WIDTHS:
        assert trunk.width == WIDTHS[arch]


def test_every_variant_is_registered_with_its_family():
    assert IMAGE_TOWERS.families["resnet"] == (resnet.ResNet, resnet.VARIANTS)
    assert IMAGE_TOWERS.families["swin"] == (swin.SwinTransformer, swin.VARIANTS)
    assert IMAGE_TOWERS.families["vit"] == (vit.VisionTransformer, vit.VARIANTS)
    assert set(resnet.VARIANTS) == {"resnet18", "resnet50", "resnet101"}
    assert set(swin.VARIANTS) == {"swin-t", "swin-s", "swin-b"}
    assert set(vit.VARIANTS) == {f"vit-{s}-{p}" for s in ("ti", "s", "b") for p in (16, 32)}


SMALL_TRUNKS = {
    "resnet-small-stem": {
        "arch": "resnet",
        "layers": [1, 1, 1, 1],
        "widths": [8, 8, 16, 16],
        "block": "basic",
        "stem": "small",
        "stem_width": 8,
    },
    "resnet-bottleneck": {
        "arch": "resnet",
        "layers": [1, 1, 1, 1],
        "widths": [4, 4, 8, 8],
        "stem_width": 8,
    },
    "swin": {"arch": "swin", "embed_dim": 16, "depths": [2, 2], "heads": [2, 4], "window": 4},
    "vit": {"arch": "vit", "patch_size": 8, "width": 32, "depth": 2, "heads": 2},
}


@pytest.mark.parametrize("name", sorted(SMALL_TRUNKS))
@pytest.mark.parametrize("size", [(28, 28), (32, 32), (64, 48), (96, 96)])
def test_trunks_pool_any_allowed_resolution_to_one_vector(name, size):
    trunk = build_image_encoder(SMALL_TRUNKS[name], image_size=32).eval()
    if name == "vit" and (size[0] % 8 or size[1] % 8):
        size = (size[0] // 8 * 8, size[1] // 8 * 8)
    out = trunk(torch.randn(2, 3, *size))
    assert out.shape == (2, trunk.width)
    assert torch.isfinite(out).all()


def test_resnet_small_stem_keeps_four_times_the_resolution_of_the_imagenet_stem():
    small = resnet.ResNet([1, 1, 1, 1], "basic", (4, 4, 4, 4), stem="small", stem_width=4)
    imagenet = resnet.ResNet([1, 1, 1, 1], "basic", (4, 4, 4, 4), stem="imagenet", stem_width=4)
    x = torch.randn(1, 3, 32, 32)
    assert small.stem(x).shape[-1] == 32
    assert imagenet.stem(x).shape[-1] == 8


def test_vit_resizes_position_embeddings_to_the_input_grid():
    trunk = vit.VisionTransformer(patch_size=8, width=32, depth=1, heads=2, image_size=32).eval()
    assert torch.equal(trunk._position_embedding(4, 4), trunk.pos_embed)
    with torch.no_grad():
        trunk.pos_embed[:, 1:] = torch.linspace(-1, 1, 32)
    resized = trunk._position_embedding(8, 6)
    assert resized.shape == (1, 1 + 48, 32)
    assert torch.equal(resized[:, 0], trunk.pos_embed[:, 0])
    torch.testing.assert_close(resized[0, 1:], torch.linspace(-1, 1, 32).expand(48, 32))


def test_vit_rejects_inputs_that_are_not_whole_patches():
    trunk = vit.VisionTransformer(patch_size=8, width=32, depth=1, heads=2, image_size=32)
    with pytest.raises(ValueError, match="multiple of patch 8"):
        trunk(torch.randn(1, 3, 30, 32))


def test_swin_block_with_a_window_covering_the_map_is_plain_global_attention():
    block = swin.SwinBlock(dim=16, heads=2, window=7, shifted=True).eval()
    with torch.no_grad():
        block.relative_position_bias.zero_()
    x = torch.randn(2, 4, 4, 16)
    tokens = x.reshape(2, 16, 16)
    attn = block.attn(block.norm1(tokens))
    expected = tokens + attn
    expected = expected + block.mlp(block.norm2(expected))
    torch.testing.assert_close(block(x), expected.reshape(2, 4, 4, 16))


def test_swin_shifted_mask_separates_regions_that_the_roll_made_adjacent():
    mask = swin.shifted_window_mask(8, 8, window=4, shift=2, device="cpu")
    assert mask.shape == (4, 1, 16, 16)
    assert (mask[0] == 0).all()
    last = mask[3, 0]
    assert (last == 0).sum() == 4 * 16
    assert (last.diagonal() == 0).all()


def test_swin_relative_position_index_of_a_smaller_window_is_inside_the_table():
    full = swin.relative_position_index(7, 7, "cpu")
    small = swin.relative_position_index(3, 7, "cpu")
    assert full.shape == (49, 49) and full.max() == 13 * 13 - 1 and full.min() == 0
    assert small.shape == (9, 9)
    assert set(small.flatten().tolist()) <= set(full.flatten().tolist())
    assert small[0, 0] == full[0, 0] == 6 * 13 + 6


@pytest.mark.parametrize("name", ["resnet-small-stem", "swin", "vit"])
def test_gradient_checkpointing_gives_the_same_gradients(name):
    trunk = build_image_encoder(SMALL_TRUNKS[name], image_size=32).train()
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for checkpointing in (False, True):
        trunk.zero_grad()
        trunk.set_grad_checkpointing(checkpointing)
        torch.manual_seed(1)
        trunk(x).square().sum().backward()
        grads.append([p.grad.clone() for p in trunk.parameters()])
    for plain, recomputed in zip(*grads, strict=True):
        torch.testing.assert_close(plain, recomputed)
