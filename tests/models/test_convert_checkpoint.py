"""The converters' pieces: reading state dicts, the explicit tensor map, and what a Hugging Face CLIP
directory may hold (shards, old `position_ids`, its preprocessor's normalisation)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tests.models.clip_reference import save_hf_clip, tiny_clip, write_clip_vocabulary
from unicl.errors import UserInputError
from unicl.models.convert import convert_checkpoint
from unicl.models.convert.state_dict import TensorMap, read_tensors


def test_a_wrapped_state_dict_loses_its_wrapper_and_ddp_prefix(tmp_path):
    state = {"module.a.weight": torch.ones(2), "module.b": torch.zeros(())}
    torch.save({"epoch": 1, "state_dict": state, "optimizer": {"lr": 0.1}}, tmp_path / "x.pt")
    assert sorted(read_tensors(tmp_path / "x.pt")) == ["a.weight", "b"]
    save_file({"a": torch.ones(1)}, tmp_path / "x.safetensors")
    assert list(read_tensors(tmp_path / "x.safetensors")) == ["a"]


def test_entries_that_are_not_tensors_are_named(tmp_path):
    torch.save({"a": torch.ones(1), "epoch": 3, "name": "x"}, tmp_path / "x.pt")
    with pytest.raises(UserInputError, match="entries epoch, name are not tensors"):
        read_tensors(tmp_path / "x.pt")


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 6)
        self.b = nn.Parameter(torch.zeros(3))


def test_a_model_tensor_without_a_rule_and_bad_constants_are_named():
    source = {"x": torch.ones(6, 2), "y": torch.ones(6), "ids": torch.arange(3)}
    tensors = TensorMap(source, where="src", hint="see the docs")
    tensors.copy("a.weight", "x")
    tensors.copy("a.bias", "y")
    tensors.ignore("ids", lambda ids: ids.tolist() == [0, 1, 2])
    with pytest.raises(
        UserInputError, match=r"^src: unicl tensors without a rule: b; see the docs$"
    ):
        tensors.load_into(Pair())
    with pytest.raises(UserInputError, match="src: ids has unexpected values"):
        tensors.ignore("ids", lambda ids: False)


def test_query_key_and_value_of_different_shapes_are_refused():
    source = {"q": torch.ones(2, 4), "k": torch.ones(2, 3), "v": torch.ones(2, 4)}
    with pytest.raises(UserInputError, match=r"cannot concatenate q \(2, 4\), k \(2, 3\)"):
        TensorMap(source, where="src", hint="").concat("qkv", ["q", "k", "v"])


@pytest.fixture(scope="module")
def hf_clip(tmp_path_factory):
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("clip")
    model = tiny_clip(write_clip_vocabulary(root / "vocabulary"))
    return model, save_hf_clip(model, root / "vocabulary", root / "hf")


def copy_of(directory, tmp_path):
    shutil.copytree(directory, tmp_path / "copy")
    return tmp_path / "copy"


def image_features(model, images):
    with torch.no_grad():
        return model.encode_image(images)


def test_shards_and_old_position_ids_are_read(hf_clip, tmp_path):
    _, directory = hf_clip
    images = torch.randn(2, 3, 32, 32)
    expected = image_features(convert_checkpoint(directory).eval(), images)
    copy = copy_of(directory, tmp_path)
    weights = load_file(copy / "model.safetensors")
    weights["text_model.embeddings.position_ids"] = torch.arange(16)[None]
    weights["vision_model.embeddings.position_ids"] = torch.arange(17)[None]
    names = sorted(weights)
    halves = {"a.safetensors": names[::2], "b.safetensors": names[1::2]}
    for shard, keys in halves.items():
        save_file({key: weights[key] for key in keys}, copy / shard)
    index = {"weight_map": {key: shard for shard, keys in halves.items() for key in keys}}
    (copy / "model.safetensors.index.json").write_text(json.dumps(index))
    (copy / "model.safetensors").unlink()
    assert torch.equal(image_features(convert_checkpoint(copy).eval(), images), expected)
    index["weight_map"]["logit_scale"] = "../elsewhere.safetensors"
    (copy / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(UserInputError, match="names a shard outside the directory"):
        convert_checkpoint(copy)


def test_position_ids_that_are_not_a_count_are_refused(hf_clip, tmp_path):
    _, directory = hf_clip
    copy = copy_of(directory, tmp_path)
    weights = load_file(copy / "model.safetensors")
    weights["text_model.embeddings.position_ids"] = torch.zeros(1, 16, dtype=torch.int64)
    save_file(weights, copy / "model.safetensors")
    with pytest.raises(
        UserInputError, match=r"text_model\.embeddings\.position_ids has unexpected"
    ):
        convert_checkpoint(copy)


def test_the_preprocessors_normalisation_is_kept(hf_clip, tmp_path):
    _, directory = hf_clip
    copy = copy_of(directory, tmp_path)
    preprocessor = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}
    (copy / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    model = convert_checkpoint(copy)
    assert (model.image_mean, model.image_std) == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": "siglip"}, "describes a 'siglip' model"),
        ({"text_config": {"hidden_act": "gelu_new"}}, "text_config.hidden_act is 'gelu_new'"),
        ({"vision_config": {"layer_norm_eps": 1e-6}}, "vision_config.layer_norm_eps is 1e-06"),
    ],
)
def test_configs_unicl_cannot_represent_exactly_are_refused(hf_clip, tmp_path, change, message):
    _, directory = hf_clip
    copy = copy_of(directory, tmp_path)
    config = json.loads((copy / "config.json").read_text())
    for key, value in change.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserInputError, match=re.escape(message)):
        convert_checkpoint(copy)
