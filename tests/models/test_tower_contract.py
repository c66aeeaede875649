"""Every registered encoder family keeps the tower contract of `unicl.models.tower`."""

import pytest
import torch
from torch import nn

from unicl.models import create_model
from unicl.models.registry import IMAGE_TOWERS, TEXT_TOWERS, register_image_family
from unicl.models.tower import ImageTower, TextTower

# A small configuration of every registered family, built into `unicl-tiny` (32 px, context 32).
IMAGE_FAMILIES = {
    "efficientnet": {"arch": "efficientnet", "width_multiplier": 0.25, "depth_multiplier": 0.5},
    "resnet": {"arch": "resnet", "layers": [1, 1], "widths": [8, 16], "stem": "small"},
    "swin": {"arch": "swin", "embed_dim": 16, "depths": [2, 2], "heads": [2, 4], "window": 4},
    "vit": {"arch": "vit", "patch_size": 8, "width": 32, "depth": 2, "heads": 2},
}
TEXT_FAMILIES = {
    "transformer": ("unicl-tiny", {"arch": "transformer", "width": 32, "layers": 2, "heads": 4}),
    "hf": ("unicl-tiny-minilm", {}),
}


def image_tower(family: str) -> ImageTower:
    return create_model("unicl-tiny", vision=IMAGE_FAMILIES[family]).image_encoder


def text_model(family: str):
    name, text = TEXT_FAMILIES[family]
    return create_model(name, text=text)


def test_every_registered_family_has_a_test_configuration():
    assert set(IMAGE_TOWERS.families) == set(IMAGE_FAMILIES)
    assert set(TEXT_TOWERS.families) == set(TEXT_FAMILIES)


def assert_declared_tables_are_parameters(tower: nn.Module) -> None:
    parameters = dict(tower.named_parameters())
    declared = tower.no_weight_decay()
    assert declared <= parameters.keys()
    assert all(parameters[name].ndim >= 2 for name in declared)


def assert_checkpointing_keeps_outputs_and_gradients(tower: nn.Module, inputs) -> None:
    """Checkpointing recomputes modules in the backward pass (more forward calls) and changes
    neither the outputs nor the gradients."""
    calls = []
    hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for m in tower.modules()]
    tower.train()
    results, counts = [], []
    for enable in (False, True):
        tower.set_grad_checkpointing(enable)
        assert tower.grad_checkpointing is enable
        tower.zero_grad(set_to_none=True)
        calls.clear()
        torch.manual_seed(1)
        out = tower(inputs)
        out.square().sum().backward()
        counts.append(len(calls))
        results.append([out.detach(), *(p.grad for p in tower.parameters() if p.grad is not None)])
    for hook in hooks:
        hook.remove()
    assert counts[1] > counts[0]
    for plain, recomputed in zip(*results, strict=True):
        torch.testing.assert_close(recomputed, plain)
    tower.set_grad_checkpointing(False)
    assert tower.grad_checkpointing is False


@pytest.mark.parametrize("family", sorted(IMAGE_FAMILIES))
def test_image_families_keep_the_contract(family):
    tower = image_tower(family)
    assert isinstance(tower, ImageTower) and tower.image_size == 32
    assert tower.eval()(torch.randn(2, 3, 32, 32)).shape == (2, tower.width)
    assert_declared_tables_are_parameters(tower)
    assert_checkpointing_keeps_outputs_and_gradients(tower, torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("family", sorted(TEXT_FAMILIES))
@pytest.mark.usefixtures("no_network")
def test_text_families_keep_the_contract(family):
    model = text_model(family)
    tower, tokenizer = model.text_encoder, model.tokenizer
    assert isinstance(tower, TextTower)
    assert (tower.vocab_size, tower.pad_id) == (tokenizer.vocab_size, tokenizer.pad_id)
    assert tower.context_length == model.context_length == 32
    tokens = model.tokenize(["a wool coat", "an ankle boot"])
    assert tower.eval()(tokens).shape == (2, tower.width)
    assert_declared_tables_are_parameters(tower)
    assert_checkpointing_keeps_outputs_and_gradients(tower, tokens)


def test_the_model_declares_its_towers_tables_by_full_name_and_the_logit_scale():
    model = create_model("unicl-tiny", vision=IMAGE_FAMILIES["vit"])
    assert model.no_weight_decay() == {
        "image_encoder.pos_embed",
        "image_encoder.cls_token",
        "text_encoder.token_embedding.weight",
        "text_encoder.positional_embedding",
        "logit_scale",
    }


class NotATower(nn.Module):
    def __init__(self, image_size: int):
        super().__init__()


class NoImageSize(ImageTower):
    def __init__(self):
        super().__init__(224)

    def no_weight_decay(self) -> set[str]:
        return set()


def test_the_registry_refuses_classes_that_break_the_contract_and_taken_names(monkeypatch):
    monkeypatch.setattr(IMAGE_TOWERS, "families", dict(IMAGE_TOWERS.families))
    with pytest.raises(TypeError, match="is not a subclass of ImageTower"):
        register_image_family("plain", NotATower)
    with pytest.raises(TypeError, match=r"must take \['image_size'\]"):
        register_image_family("sizeless", NoImageSize)
    with pytest.raises(ValueError, match=r"\['vit-b-16'\] are already registered"):
        register_image_family("mine", IMAGE_TOWERS.families["vit"][0], {"vit-b-16": {}})
