"""`unicl convert` of microsoft/UniCL checkpoints: a Swin (`transformers.SwinModel`) and a CLIP text
transformer (`CLIPTextModelWithProjection`), saved in the official layout, become a unicl model
with the same features, token ids and logit scale; anything not mapped is refused by name."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from tests.cli.test_convert import convert
from tests.models.clip_reference import TEXTS, hf_ids, hf_tokenizer, write_clip_vocabulary
from tests.models.unicl_checkpoint import IMAGE_SIZE, PROJECTION, official_config, save_official
from tests.models.unicl_reference import tiny_swin, tiny_text, unicl_state_dict
from unicl.models import load

TOLERANCE = 1e-5
"""Largest absolute difference allowed between unicl's and transformers' unnormalised features."""
LOGIT_SCALE = 2.7


@pytest.fixture(scope="module")
def vocabulary(tmp_path_factory):
    directory = tmp_path_factory.mktemp("vocabulary")
    write_clip_vocabulary(directory)
    return directory


@pytest.fixture(scope="module")
def towers(vocabulary):
    """(SwinModel, CLIPTextModelWithProjection, image projection [in, out])."""
    vocab = json.loads((vocabulary / "vocab.json").read_text())
    torch.manual_seed(2)
    projection = torch.randn(tiny_swin().config.hidden_size, PROJECTION) * 0.1
    return tiny_swin(), tiny_text(vocab), projection


@pytest.fixture
def official(towers, tmp_path):
    """The official state dict of `towers` and its saved file (with config and optimizer)."""
    swin, text, projection = towers
    state = unicl_state_dict(swin, text, projection, LOGIT_SCALE)
    optimizer = {"state": {0: {"exp_avg": torch.zeros(2)}}, "param_groups": [{"lr": 1e-3}]}
    return state, save_official(
        tmp_path / "in1k.pth", state, official_config(), optimizer=optimizer
    )


def assert_same_unicl(converted_dir, towers, vocabulary) -> None:
    """Same token ids as transformers' CLIPTokenizer, image features = SwinModel's pooled output
    @ the image projection, text features = CLIPTextModelWithProjection's, same logit scale."""
    swin, text, projection = towers
    ours = load(converted_dir).eval()
    ids = hf_ids(hf_tokenizer(vocabulary), TEXTS)
    assert torch.equal(ours.tokenize(TEXTS), ids)
    torch.manual_seed(3)
    images = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        image_gap = ours.encode_image(images) - swin(images).pooler_output @ projection
        text_gap = ours.encode_text(ids) - text(input_ids=ids).text_embeds
    assert image_gap.abs().max() <= TOLERANCE and text_gap.abs().max() <= TOLERANCE
    assert ours.logit_scale.item() == pytest.approx(LOGIT_SCALE, abs=1e-7)


def test_an_official_checkpoint_is_detected_and_converts_exactly(
    official, towers, vocabulary, tmp_path, capsys
):
    _, path = official
    out = tmp_path / "unicl"
    assert convert(capsys, path, "--out", out, "--tokenizer", vocabulary) == ""
    assert_same_unicl(out, towers, vocabulary)
    config = json.loads((out / "config.json").read_text())
    assert config["vision"] == {
        "arch": "swin",
        "embed_dim": 16,
        "depths": [2, 2, 2],
        "heads": [1, 2, 4],
        "window": 4,
        "patch_size": 4,
        "mlp_ratio": 4.0,
    }
    assert (
        config["text"] | {"pool": "argmax", "norm_eps": 1e-12, "act": "quick_gelu"}
        == (config["text"])
    )
    assert config["image_mean"] == [0.485, 0.456, 0.406] and config["image_size"] == IMAGE_SIZE


@pytest.mark.parametrize(
    ("names", "container"),
    [
        (("visual", "text", "vision_projection", "text_projection"), "m.pt"),
        (("image_encoder", "lang_encoder", "image_projection", "lang_projection"), "m.safetensors"),
    ],
    ids=["visual-text", "lang-encoder"],
)
def test_other_prefixes_and_a_bare_state_dict_convert_exactly(
    names, container, towers, vocabulary, tmp_path, capsys
):
    """Without a config, the image size comes from the shifted-window masks, the window from the
    bias tables, and the text heads (width 32: not width // 64) from --text-heads."""
    swin, text, projection = towers
    state = unicl_state_dict(swin, text, projection, LOGIT_SCALE, names)
    path = tmp_path / container
    if container.endswith(".safetensors"):
        save_file(state, path)
    else:
        torch.save(state, path)
    argv = [path, "--tokenizer", vocabulary]
    error = convert(capsys, *argv, "--out", tmp_path / "a")
    assert f"{names[1]} width 32 is not a multiple of 64" in error and "--text-heads" in error
    assert convert(capsys, *argv, "--text-heads", 2, "--out", tmp_path / "b") == ""
    assert_same_unicl(tmp_path / "b", towers, vocabulary)


def test_leftover_and_missing_tensors_are_refused_by_name(official, vocabulary, tmp_path, capsys):
    state, _ = official
    state["image_encoder.head.weight"] = torch.zeros(10, 64)
    del state["text_encoder.ln_final.bias"]
    del state["image_encoder.layers.1.downsample.reduction.weight"]
    save_official(tmp_path / "m.pth", state, official_config())
    error = convert(capsys, tmp_path / "m.pth", "--out", tmp_path / "o", "--tokenizer", vocabulary)
    assert "missing tensors: image_encoder.layers.1.downsample.reduction.weight, " in error
    assert "text_encoder.ln_final.bias" in error
    assert "tensors not converted: image_encoder.head.weight" in error
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ("mask on an unshifted block", "image_encoder.layers.2.blocks.1.attn_mask"),
        ("shifted mask", "image_encoder.layers.0.blocks.1.attn_mask"),
        ("relative index", "image_encoder.layers.1.blocks.0.attn.relative_position_index"),
    ],
)
def test_buffers_unlike_what_unicl_computes_are_refused(
    official, vocabulary, tmp_path, capsys, change, name
):
    """A stage of one window never shifts; a mask or index that says otherwise means a model
    that windows differently, and is refused."""
    state, _ = official
    if change == "mask on an unshifted block":
        state[name] = torch.zeros(1, 16, 16)
    elif change == "shifted mask":
        state[name] = torch.zeros_like(state[name])
    else:
        state[name] = state[name].flip(0)
    save_official(tmp_path / "m.pth", state, official_config())
    error = convert(capsys, tmp_path / "m.pth", "--out", tmp_path / "o", "--tokenizer", vocabulary)
    assert f"{name} has unexpected values" in error


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"TOKENIZER": "bert-base-uncased"}, "MODEL.TEXT_ENCODER.TOKENIZER is 'bert-base-uncased'"),
        ({"AUTOGRESSIVE": False}, "with a causal text encoder"),
        ({"NAME": "hf_model"}, "MODEL.TEXT_ENCODER.NAME is 'hf_model'"),
    ],
)
def test_configs_unicl_cannot_reproduce_are_refused(
    official, vocabulary, tmp_path, capsys, setting, message
):
    state, _ = official
    save_official(tmp_path / "m.pth", state, official_config(**setting))
    error = convert(capsys, tmp_path / "m.pth", "--out", tmp_path / "o", "--tokenizer", vocabulary)
    assert message in error and "unicl converts models with" in error


def test_image_sizes_that_do_not_fit_the_windows_are_refused(
    official, vocabulary, tmp_path, capsys
):
    state, _ = official
    config = official_config()
    config["MODEL"]["IMAGE_ENCODER"]["IMG_SIZE"] = 32
    save_official(tmp_path / "m.pth", state, config)
    error = convert(capsys, tmp_path / "m.pth", "--out", tmp_path / "o", "--tokenizer", vocabulary)
    assert "stage 2's map (2 cells at 32 px) is smaller than the window (4)" in error
    config["MODEL"]["IMAGE_ENCODER"]["IMG_SIZE"] = 96
    save_official(tmp_path / "m.pth", state, config)
    error = convert(capsys, tmp_path / "m.pth", "--out", tmp_path / "o", "--tokenizer", vocabulary)
    assert "stage 2's map (6 cells at 96 px) is not a whole number of windows (4)" in error


def test_options_that_do_not_fit_the_format_are_refused(official, vocabulary, tmp_path, capsys):
    _, path = official
    argv = [path, "--out", tmp_path / "o"]
    assert "holds no tokenizer; pass --tokenizer" in convert(capsys, *argv)
    error = convert(capsys, *argv, "--tokenizer", vocabulary, "--act", "gelu")
    assert "--act does not apply to a microsoft/UniCL checkpoint" in error
    error = convert(capsys, *argv, "--tokenizer", vocabulary, "--text-heads", 4)
    assert "--text-heads 4 contradicts the file's config (MODEL.TEXT_ENCODER.HEADS: 2)" in error
    assert not (tmp_path / "o").exists()
