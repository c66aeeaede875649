"""The UniCLModel contract that training and evaluation rely on (OpenCLIP call shapes)."""

import math

import pytest
import torch

from unicl.models import UniCLModel, create_model

from .conftest import parameter_count


def test_unicl_tiny_is_a_few_million_parameters_at_32_px(tiny_model):
    assert isinstance(tiny_model, UniCLModel)
    assert 1e6 < parameter_count(tiny_model) < 5e6
    assert tiny_model.image_size == 32
    assert tiny_model.image_mean == (0.5, 0.5, 0.5) and tiny_model.image_std == (0.5, 0.5, 0.5)


def test_tokenize_pads_and_truncates_to_the_context_length(tiny_model):
    tokens = tiny_model.tokenize(["a photo of a coat.", "word " * 200])
    assert tokens.dtype == torch.int64
    assert tokens.shape == (2, tiny_model.context_length)


def test_encoders_and_forward_follow_the_openclip_call_shapes(tiny_model):
    images = torch.randn(3, 3, 32, 32)
    tokens = tiny_model.tokenize(["a photo of a bag.", "a sandal", "a dress"])
    image_features = tiny_model.encode_image(images)
    text_features = tiny_model.encode_text(tokens)
    assert image_features.shape == text_features.shape == (3, tiny_model.embed_dim)
    image_out, text_out, scale = tiny_model(images, tokens)
    torch.testing.assert_close(image_out, torch.nn.functional.normalize(image_features, dim=-1))
    torch.testing.assert_close(text_out, tiny_model.encode_text(tokens, normalize=True))
    torch.testing.assert_close(image_out.norm(dim=-1), torch.ones(3))
    assert scale.item() == torch.tensor(1 / 0.07).item()


def test_images_of_other_sizes_are_accepted(tiny_model):
    assert tiny_model.encode_image(torch.randn(2, 3, 28, 28)).shape == (2, tiny_model.embed_dim)


def test_logit_scale_is_a_trainable_log_multiplier_clamped_to_100(tiny_model):
    assert tiny_model.logit_scale.requires_grad
    assert tiny_model.logit_scale.item() == torch.tensor(math.log(1 / 0.07)).item()
    with torch.no_grad():
        tiny_model.logit_scale.fill_(10.0)
    tiny_model.clamp_logit_scale_()
    assert tiny_model.logit_scale.exp().item() == torch.tensor(math.log(100)).exp().item()
    with torch.no_grad():
        tiny_model.logit_scale.fill_(-1.0)
    tiny_model.clamp_logit_scale_()
    assert tiny_model.logit_scale.item() == 0.0


def test_both_towers_receive_gradients_from_a_contrastive_step(tiny_model):
    tiny_model.train()
    images = torch.randn(4, 3, 32, 32)
    tokens = tiny_model.tokenize(["a coat", "a bag", "a shirt", "a dress"])
    image_features, text_features, scale = tiny_model(images, tokens)
    logits = scale * image_features @ text_features.T
    torch.nn.functional.cross_entropy(logits, torch.arange(4)).backward()
    for name in ("image_encoder", "text_encoder", "image_projection", "text_projection"):
        grads = [p.grad for p in getattr(tiny_model, name).parameters()]
        assert all(g is not None for g in grads), name
    assert tiny_model.logit_scale.grad is not None


def test_grad_checkpointing_switches_both_towers_without_changing_outputs(tiny_model):
    images = torch.randn(2, 3, 32, 32)
    tokens = tiny_model.tokenize(["a coat", "a bag"])
    before = tiny_model(images, tokens)
    tiny_model.set_grad_checkpointing(True)
    assert tiny_model.image_encoder.grad_checkpointing
    assert tiny_model.text_encoder.grad_checkpointing
    for expected, actual in zip(before, tiny_model(images, tokens), strict=True):
        torch.testing.assert_close(actual, expected)


def test_overrides_change_the_built_architecture():
    model = create_model("unicl-tiny", embed_dim=64, text={"layers": 1}, image_size=28)
    assert model.embed_dim == 64 and model.image_size == 28
    assert len(model.text_encoder.blocks) == 1
    assert model.encode_image(torch.randn(1, 3, 28, 28)).shape == (1, 64)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["swin", "vit"])
def test_torch_compile_gives_the_eager_outputs(arch):
    vision = {
        "swin": {"arch": "swin", "embed_dim": 16, "depths": [2, 2], "heads": [2, 4], "window": 4},
        "vit": {"arch": "vit", "patch_size": 8, "width": 32, "depth": 2, "heads": 2},
    }[arch]
    model = create_model("unicl-tiny", vision=vision).eval()
    images = torch.randn(2, 3, 32, 32)
    tokens = model.tokenize(["a coat", "a bag"])
    compiled = torch.compile(model)
    for expected, actual in zip(model(images, tokens), compiled(images, tokens), strict=True):
        torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)
