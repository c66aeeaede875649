"""A real (untrained) tiny model and small image files written for each test."""

import json

import numpy as np
import pytest
from PIL import Image

from unicl.models import create_model

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


@pytest.fixture(scope="module")
def tiny_model():
    return create_model("unicl-tiny").eval()


def _noisy_square(colour, seed, size=36):
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 12, (size, size, 3)), 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


@pytest.fixture
def colour_folder(tmp_path):
    """An ImageFolder tree: 6 noisy solid-colour squares per class (blue, green, red)."""

    def make(root_name="colours", per_class=6, seed=0):
        root = tmp_path / root_name
        for offset, (name, colour) in enumerate(COLOURS.items()):
            (root / name).mkdir(parents=True)
            for i in range(per_class):
                _noisy_square(colour, seed + 100 * offset + i).save(root / name / f"{i}.png")
        return root

    return make


@pytest.fixture
def caption_manifest(tmp_path):
    """A JSONL manifest of 3 images with 2, 1 and 2 captions (5 rows)."""
    rows = []
    for i, (name, colour) in enumerate(COLOURS.items()):
        path = tmp_path / f"{name}.png"
        _noisy_square(colour, i).save(path)
        captions = [f"a {name} square", f"something {name}"][: 1 + (i != 1)]
        rows += [{"image": path.name, "caption": caption} for caption in captions]
    manifest = tmp_path / "captions.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest
