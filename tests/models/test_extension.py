"""A new encoder family touches only its own file: registered here, it builds, trains, saves, loads."""

import dataclasses

import pytest
import torch
from torch import nn

from unicl.errors import UserInputError
from unicl.models import create_model, load
from unicl.models.registry import IMAGE_TOWERS, register_image_family
from unicl.models.tower import ImageSize, ImageTower, Width
from unicl.train.optim import no_decay_names


class ToyTower(ImageTower):
    """A 3x3 convolution, a learned per-channel offset table, global average pooling."""

    def __init__(self, width: Width = 24, image_size: ImageSize = 224):
        super().__init__(image_size)
        self.width = width
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.offset = nn.Parameter(torch.zeros(width, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(images) + self.offset[:, :, None]).mean(dim=(2, 3))

    def no_weight_decay(self) -> set[str]:
        return {"offset"}


@pytest.fixture
def toy_family(monkeypatch):
    """`toy` (and variant `toy-wide`) registered for this test only."""
    monkeypatch.setattr(IMAGE_TOWERS, "families", dict(IMAGE_TOWERS.families))
    register_image_family("toy", ToyTower, {"toy-wide": {"width": 48}})


@pytest.mark.usefixtures("toy_family")
def test_a_family_registered_from_outside_builds_trains_saves_and_loads(tmp_path):
    model = create_model("unicl-tiny", vision={"arch": "toy"})
    assert isinstance(model.image_encoder, ToyTower) and model.image_encoder.image_size == 32
    images, tokens = torch.randn(2, 3, 32, 32), model.tokenize(["a coat", "a bag"])
    image_features, _, _ = model(images, tokens)
    assert image_features.shape == (2, model.embed_dim)

    names = no_decay_names(model)
    assert {"image_encoder.offset", "image_encoder.conv.bias"} <= names
    assert "image_encoder.conv.weight" not in names

    model.save_pretrained(tmp_path)
    loaded = load(tmp_path).eval()
    assert loaded.config == dataclasses.replace(model.config, tokenizer="tokenizer.json")
    for expected, actual in zip(model.eval()(images, tokens), loaded(images, tokens), strict=True):
        assert torch.equal(actual, expected)


@pytest.mark.usefixtures("toy_family")
def test_a_registered_familys_variants_and_bounds_apply():
    assert create_model("unicl-tiny", vision={"arch": "toy-wide"}).image_encoder.width == 48
    with pytest.raises(UserInputError, match=r"'vision.width' is 0; it must be an integer in"):
        create_model("unicl-tiny", vision={"arch": "toy", "width": 0})


def test_the_family_is_gone_after_the_test():
    assert "toy" not in IMAGE_TOWERS.families
    with pytest.raises(UserInputError, match="unknown vision arch 'toy'"):
        create_model("unicl-tiny", vision={"arch": "toy"})
