"""save_pretrained / load: a self-contained, pickle-free directory and precise errors."""

import dataclasses
import json
import re

import pytest
import torch
from safetensors.torch import load_file, save_file

from unicl.errors import UserInputError
from unicl.models import create_model, load

IMAGES = torch.randn(2, 3, 32, 32)
TEXTS = ["a photo of a pullover.", "an ankle boot"]


@pytest.fixture
def saved(tiny_model, tmp_path):
    with torch.no_grad():
        tiny_model.logit_scale.fill_(3.0)
        for module in tiny_model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
    tiny_model.save_pretrained(tmp_path / "model")
    return tiny_model, tmp_path / "model"


def test_round_trip_gives_bit_identical_embeddings(saved):
    model, directory = saved
    loaded = load(directory).eval()
    assert torch.equal(loaded.tokenize(TEXTS), model.tokenize(TEXTS))
    for expected, actual in zip(
        model(IMAGES, model.tokenize(TEXTS)), loaded(IMAGES, loaded.tokenize(TEXTS)), strict=True
    ):
        assert torch.equal(actual, expected)
    assert loaded.config == dataclasses.replace(model.config, tokenizer="tokenizer.json")


def test_the_directory_holds_safetensors_json_the_tokenizer_and_the_card_only(saved):
    _, directory = saved
    assert sorted(p.name for p in directory.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "provenance.json",
        "tokenizer.json",
    ]
    record = json.loads((directory / "config.json").read_text())
    assert record["format"] == "unicl-model" and record["version"] == 1
    assert (directory / "model.safetensors").read_bytes()[8:9] == b"{"


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.json"])
def test_a_missing_file_is_named(saved, name):
    _, directory = saved
    (directory / name).unlink()
    with pytest.raises(UserInputError, match=re.escape(name)):
        load(directory)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.json"])
def test_a_truncated_file_is_named(saved, name):
    _, directory = saved
    path = directory / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserInputError, match=re.escape(name)):
        load(directory)


def test_weights_that_do_not_match_the_config_are_reported_with_the_tensor_names(saved):
    _, directory = saved
    record = json.loads((directory / "config.json").read_text())
    record["embed_dim"] = 64
    record["text"]["layers"] = 1
    (directory / "config.json").write_text(json.dumps(record))
    with pytest.raises(
        UserInputError, match=re.escape("model.safetensors does not match")
    ) as error:
        load(directory)
    message = str(error.value)
    assert "unexpected tensors (" in message and "text_encoder.blocks.1" in message
    assert "image_projection.weight (128, 256) != (64, 256)" in message


def test_a_directory_from_something_else_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 3}')
    with pytest.raises(UserInputError, match="not a unicl model config"):
        load(tmp_path)
    with pytest.raises(UserInputError, match="not a directory"):
        load(tmp_path / "absent")


def test_saving_again_replaces_the_files_atomically(saved, tmp_path):
    model, directory = saved
    model.save_pretrained(directory)
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]
    assert torch.equal(load(directory).logit_scale, model.logit_scale)


def test_weights_with_nan_are_not_saved_and_warned_about_on_load(tmp_path, caplog):
    model = create_model("unicl-tiny")
    model.save_pretrained(tmp_path / "good")
    with torch.no_grad():
        model.logit_scale.fill_(float("nan"))
    with pytest.raises(
        UserInputError, match=r"1 tensors hold NaN or infinite values \(e\.g\. logit_scale\)"
    ):
        model.save_pretrained(tmp_path / "diverged")
    assert not (tmp_path / "diverged" / "model.safetensors").exists()

    weights = tmp_path / "good" / "model.safetensors"
    tensors = load_file(str(weights))
    tensors["logit_scale"] = torch.tensor(float("inf"))
    save_file(tensors, str(weights), metadata={"format": "pt"})
    load(tmp_path / "good")
    assert "holds NaN or infinite values in 1 tensors (e.g. logit_scale)" in caplog.text
