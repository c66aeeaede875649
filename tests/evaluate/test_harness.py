"""OpenCLIP's entry points (`unicl.create_model_and_transforms`, `unicl.get_tokenizer`) used the
way CLIP_benchmark-style harnesses use them, on real demo images, against `unicl predict`."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import unicl
from unicl.cli.main import main
from unicl.data import open_source
from unicl.errors import UserInputError
from unicl.models import create_model, load
from unicl.templates import fill_template, get_templates

FASHION = "data/demo/fashion-mnist#t10k"
EMOJI = "data/demo/emoji/test-000000.tar"
LABELS = ["t-shirt or top", "trouser", "sneaker", "grinning face", "red heart"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    create_model("unicl-tiny").save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def demo_images(tmp_path_factory) -> list:
    """Image files of the demo data: 4 Fashion-MNIST test images (28 px grey) and 4 Twemoji
    test images (64 px with transparency), as a user would pass them to `unicl predict`."""
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for location in (FASHION, EMOJI):
        for i, raw in zip(range(4), open_source(location).raw_samples(), strict=False):
            path = folder / f"{location.split('/')[2]}-{i}.png"
            image = raw.image
            if isinstance(image, bytes):
                path.write_bytes(image)
            else:
                Image.fromarray(image).save(path)
            paths.append(path)
    assert {Image.open(p).mode for p in paths} >= {"L", "RGBA"}
    return paths


def harness_logits(name_or_dir, paths, labels) -> torch.Tensor:
    """Zero-shot logits as an OpenCLIP harness computes them, with nothing but the entry points:
    the prompt-ensembled classifier, unit-norm image features, `logit_scale.exp()`."""
    model, _, preprocess = unicl.create_model_and_transforms(name_or_dir)
    tokenizer = unicl.get_tokenizer(name_or_dir)
    templates = get_templates("default")
    with torch.no_grad():
        columns = []
        for label in labels:
            texts = tokenizer([fill_template(t, label) for t in templates])
            columns.append(F.normalize(model.encode_text(texts), dim=-1).mean(dim=0))
        classifier = F.normalize(torch.stack(columns), dim=-1).T
        images = torch.stack([preprocess(Image.open(path)) for path in paths])
        features = model.encode_image(images, normalize=True)
        return model.logit_scale.exp() * features @ classifier


def test_the_entry_points_give_unicl_predicts_probabilities_on_demo_images(
    model_dir, demo_images, capsys
):
    argv = ["predict", model_dir, *demo_images, "--labels", ",".join(LABELS), "--json"]
    capsys.readouterr()
    assert main([*map(str, argv), "--top-k", str(len(LABELS))]) == 0
    predicted = json.loads(capsys.readouterr().out)
    expected = torch.tensor(
        [[p["probabilities"][p["labels"].index(label)] for label in LABELS] for p in predicted]
    )
    logits = harness_logits(model_dir, demo_images, LABELS)
    assert (logits.softmax(dim=1) - expected).abs().max() <= 1e-6
    assert logits.std(dim=1).min() > 0.01  # the classes are told apart: a real comparison


def test_logit_scale_has_openclips_meaning(model_dir):
    """A parameter holding log(multiplier): `exp()` is what forward() and the loss multiply by."""
    model, _, _ = unicl.create_model_and_transforms(model_dir)
    assert isinstance(model.logit_scale, torch.nn.Parameter) and not model.training
    tokens = unicl.get_tokenizer(model_dir)(["a cat"])
    _, _, scale = model(torch.zeros(1, 3, 32, 32), tokens)
    assert torch.equal(scale, model.logit_scale.exp())
    assert scale.item() == pytest.approx(1 / 0.07)


def test_names_prefixes_and_the_training_transform(model_dir, demo_images):
    model, train, val = unicl.create_model_and_transforms("unicl-tiny")
    assert model.provenance["kind"] == "created"
    assert torch.equal(unicl.get_tokenizer("unicl-tiny")(["a cat"]), model.tokenize(["a cat"]))
    ours = unicl.get_tokenizer(f"local-dir:{model_dir}")(["a shirt"])
    assert torch.equal(ours, load(model_dir).tokenize(["a shirt"]))
    image = Image.open(demo_images[-1])
    torch.manual_seed(0)
    first = train(image)
    assert first.shape == val(image).shape == (3, 32, 32)
    assert not torch.equal(first, train(image))  # random crops, jitter and flips
    torch.manual_seed(0)
    assert torch.equal(first, train(image))
    with pytest.raises(UserInputError, match="unicl reads local files only"):
        unicl.create_model_and_transforms("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")


def test_a_hugging_face_clip_directory_is_converted_in_memory(tmp_path):
    from tests.models.clip_reference import (
        TEXTS,
        hf_ids,
        hf_tokenizer,
        save_hf_clip,
        tiny_clip,
        write_clip_vocabulary,
    )
    from unicl.models.convert import convert_checkpoint

    vocab = write_clip_vocabulary(tmp_path / "vocabulary")
    directory = save_hf_clip(tiny_clip(vocab), tmp_path / "vocabulary", tmp_path / "hf")
    model, _, _ = unicl.create_model_and_transforms(directory)
    expected = convert_checkpoint(directory).state_dict()
    assert all(torch.equal(t, expected[name]) for name, t in model.state_dict().items())
    ids = unicl.get_tokenizer(directory)(TEXTS)
    assert torch.equal(ids, hf_ids(hf_tokenizer(tmp_path / "vocabulary"), TEXTS))
