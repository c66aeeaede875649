"""`unicl convert` never runs code from a checkpoint: a pickle whose unpickling would write a file is
refused with one line, and the file never appears; microsoft/UniCL's config object, the one class
it accepts, yields a plain mapping whatever the pickle asks of it."""

from __future__ import annotations

import json
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from tests.models.unicl_checkpoint import (
    CfgNode,
    official_config,
    save_official,
    yacs_importable,
)
from tests.reliability.conftest import run_unicl
from unicl.models.convert.microsoft_unicl import STAND_INS
from unicl.models.convert.state_dict import read_checkpoint


class WritesMarker:
    """Unpickling this calls `exec`, which writes `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def payload(marker, container: str) -> bytes:
    """A state dict with one hostile entry, as `torch.save` (zip) or a bare pickle writes it."""
    state = {"visual.proj": torch.zeros(2, 2), "logit_scale": WritesMarker(marker)}
    if container == "pickle":
        return pickle.dumps(state, protocol=2)
    path = marker.parent / "zip.pt"
    torch.save(state, path)
    return path.read_bytes()


@pytest.mark.parametrize("container", ["zip", "pickle"])
def test_the_payload_is_live_when_unpickled_unsafely(tmp_path, container):
    """The control: loading the same bytes without `weights_only` does run the code."""
    marker = tmp_path / "code-ran"
    data = payload(marker, container)
    if container == "pickle":
        pickle.loads(data)
    else:
        (tmp_path / "clip.pt").write_bytes(data)
        torch.load(tmp_path / "clip.pt", weights_only=False)
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("container", ["zip", "pickle"])
@pytest.mark.parametrize("name", ["clip.pt", "open_clip_pytorch_model.bin"])
def test_a_hostile_openai_checkpoint_is_refused_without_running_it(tmp_path, container, name):
    marker = tmp_path / "code-ran"
    (tmp_path / name).write_bytes(payload(marker, container))
    (tmp_path / "tok").mkdir()
    outcome = run_unicl(
        "convert", tmp_path / name, "--out", tmp_path / "out", "--tokenizer", tmp_path / "tok"
    )
    assert outcome.status == 2
    assert "holds objects other than tensors" in outcome.error_line
    assert "never runs their code" in outcome.error_line
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_hostile_hugging_face_bin_is_refused_without_running_it(tmp_path):
    pytest.importorskip("transformers")
    marker = tmp_path / "code-ran"
    source = tmp_path / "clip"
    source.mkdir()
    (source / "config.json").write_text(json.dumps({"model_type": "clip"}))
    (source / "pytorch_model.bin").write_bytes(payload(marker, "zip"))
    outcome = run_unicl("convert", source, "--out", tmp_path / "out")
    assert outcome.status == 2
    assert "pytorch_model.bin holds objects other than tensors (it needs exec)" in (
        outcome.error_line
    )
    assert not marker.exists() and not (tmp_path / "out").exists()


def save_hostile_unicl(marker, place: str) -> Path:
    """A microsoft/UniCL-like checkpoint whose `config` is, or holds, a hostile object."""
    state = {"image_encoder.norm.weight": torch.ones(2), "logit_scale": torch.zeros(())}
    config = official_config()
    if place == "config":
        config = WritesMarker(marker)
    else:
        config["MODEL"]["TEXT_ENCODER"]["TOKENIZER"] = WritesMarker(marker)
    return save_official(marker.parent / "in1k.pth", state, config)


@pytest.mark.parametrize("place", ["config", "inside-config"])
def test_the_unicl_payload_is_live_when_unpickled_unsafely(tmp_path, place):
    marker = tmp_path / "code-ran"
    with yacs_importable():
        torch.load(save_hostile_unicl(marker, place), weights_only=False)
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("place", ["config", "inside-config"])
def test_a_hostile_unicl_checkpoint_is_refused_without_running_it(tmp_path, place):
    """The config object is the one class the reader accepts beyond tensors and containers; code
    placed as, or inside, it is still refused."""
    marker = tmp_path / "code-ran"
    path = save_hostile_unicl(marker, place)
    (tmp_path / "tok").mkdir()
    outcome = run_unicl("convert", path, "--out", tmp_path / "out", "--tokenizer", tmp_path / "tok")
    assert outcome.status == 2
    assert "in1k.pth holds objects other than tensors (it needs exec)" in (outcome.error_line)
    assert not marker.exists() and not (tmp_path / "out").exists()


class CallsConfigNode:
    """Unpickles as `yacs.config.CfgNode("open(...)")`: the allowed class name, called with
    arguments of the attacker's choosing."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return CfgNode, (f"open({self.marker!r}, 'w').write('ran')",)


def test_the_config_class_name_builds_only_an_empty_mapping(tmp_path):
    marker = tmp_path / "code-ran"
    save_official(tmp_path / "in1k.pth", {"a": torch.ones(1)}, CallsConfigNode(marker))
    state, extras = read_checkpoint(tmp_path / "in1k.pth", STAND_INS)
    assert extras["config"] == {} and type(extras["config"]) is OrderedDict
    assert list(state) == ["a"] and not marker.exists()
