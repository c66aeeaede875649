"""The options that let the ViT and text-transformer families represent CLIP's towers."""

import re

import pytest
import torch

from tests.models.test_tower_contract import (
    assert_checkpointing_keeps_outputs_and_gradients,
    assert_declared_tables_are_parameters,
)
from unicl.errors import UserInputError
from unicl.models import create_model
from unicl.models.layers import Block, QuickGELU
from unicl.models.text_transformer import TextTransformer
from unicl.models.vit import VisionTransformer

CLIP_VIT = dict(
    patch_size=8, width=32, depth=2, heads=2, act="quick_gelu", pre_norm=True, patch_bias=False
)


def test_quick_gelu_is_clips_formula_and_the_block_uses_it():
    x = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(QuickGELU()(x), x * torch.sigmoid(1.702 * x))
    assert isinstance(Block(8, 2, act="quick_gelu").mlp[1], QuickGELU)
    assert isinstance(Block(8, 2).mlp[1], torch.nn.GELU)


def test_clip_vit_options_add_the_pre_norm_and_drop_the_patch_bias():
    plain = VisionTransformer(patch_size=8, width=32, depth=2, heads=2, image_size=32)
    clip = VisionTransformer(**CLIP_VIT, image_size=32)
    added = clip.state_dict().keys() - plain.state_dict().keys()
    removed = plain.state_dict().keys() - clip.state_dict().keys()
    assert added == {"norm_pre.weight", "norm_pre.bias"}
    assert removed == {"patch_embed.bias"}
    assert not any(name.startswith("norm_pre") for name in plain.state_dict())


def test_clip_vit_applies_the_pre_norm_before_the_blocks():
    tower = VisionTransformer(**CLIP_VIT, image_size=32).eval()
    images = torch.randn(2, 3, 32, 32)
    seen = []
    tower.blocks[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    tower(images)
    tokens = tower.patch_embed(images).flatten(2).transpose(1, 2)
    tokens = torch.cat([tower.cls_token.expand(2, -1, -1), tokens], dim=1) + tower.pos_embed
    torch.testing.assert_close(seen[0], tower.norm_pre(tokens))


def test_clip_vit_keeps_the_tower_contract():
    tower = create_model("unicl-tiny", vision={"arch": "vit", **CLIP_VIT}).image_encoder
    assert tower.no_weight_decay() == {"pos_embed", "cls_token"}
    assert_declared_tables_are_parameters(tower)
    assert_checkpointing_keeps_outputs_and_gradients(tower, torch.randn(2, 3, 32, 32))


def encoder(**options) -> TextTransformer:
    torch.manual_seed(0)
    return TextTransformer(
        vocab_size=20, pad_id=19, context_length=8, width=16, layers=2, heads=2, **options
    ).eval()


def test_eot_pooling_takes_the_first_end_of_text_when_padding_is_the_same_token():
    tower = encoder(pool="eot", eot_id=19)
    tokens = torch.tensor([[18, 5, 6, 19, 19, 19, 19, 19], [18, 7, 8, 9, 10, 11, 12, 19]])
    pooled = tower(tokens)
    # The state at position 3 (the first 19) of the first text equals a text that ends there.
    torch.testing.assert_close(pooled[0], tower(tokens[:1, :4])[0])
    torch.testing.assert_close(pooled[1], tower(tokens[1:])[0])
    # "Last non-padding token" would have pooled position 2 of the first text instead.
    assert not torch.allclose(pooled[0], encoder()(tokens)[0])


def test_argmax_pooling_takes_the_largest_id_as_openai_clip_does():
    tower = encoder(pool="argmax")
    tokens = torch.tensor([[18, 5, 6, 19, 0, 0, 0, 0]])
    torch.testing.assert_close(tower(tokens), encoder(pool="eot", eot_id=19)(tokens))
    torch.testing.assert_close(tower(tokens), tower(tokens[:, :4]))


def test_quick_gelu_text_tower_keeps_the_contract():
    text = {"arch": "transformer", "width": 32, "layers": 2, "heads": 4, "act": "quick_gelu"}
    model = create_model("unicl-tiny", text={**text, "pool": "eot", "eot_id": 2})
    tower = model.text_encoder
    assert isinstance(tower.blocks[0].mlp[1], QuickGELU)
    assert_declared_tables_are_parameters(tower)
    assert_checkpointing_keeps_outputs_and_gradients(tower, model.tokenize(["a coat", "a bag"]))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ({"act": "relu"}, "'text.act' is 'relu'; allowed values: 'gelu', 'quick_gelu'"),
        ({"pool": "mean"}, "'text.pool' is 'mean'; allowed values: 'last', 'eot', 'argmax'"),
        ({"pool": "eot"}, "text pool 'eot' needs eot_id"),
        ({"eot_id": 3}, "text pool 'eot' needs eot_id"),
        ({"pool": "eot", "eot_id": 5000}, "eot_id 5000 is outside the tokenizer's 4096 tokens"),
        ({"pool": "eot", "eot_id": -1}, "'text.eot_id' is -1; it must be an integer in"),
    ],
)
def test_bad_pooling_options_are_refused_in_one_line(text, message):
    with pytest.raises(UserInputError, match=re.escape(message)):
        create_model("unicl-tiny", text=text)


def test_bad_vit_options_are_refused_in_one_line():
    with pytest.raises(UserInputError, match=r"'vision\.pre_norm' must be bool"):
        create_model("unicl-tiny", vision={"arch": "vit", **CLIP_VIT, "pre_norm": "yes"})
