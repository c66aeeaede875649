"""`unicl convert`: CLIP checkpoints built by `transformers` become unicl models with the same
features, token ids and logit scale; anything the converter does not map is refused by name."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from tests.cli.conftest import run_command
from tests.models.clip_reference import (
    TEXTS,
    features,
    hf_ids,
    hf_tokenizer,
    openai_state_dict,
    save_hf_clip,
    tiny_clip,
)
from unicl.cli.main import main
from unicl.models import load
from unicl.models.tokenizer import SHIPPED_DIR

TOLERANCE = 1e-5
"""Largest absolute difference allowed between unicl's and transformers' unnormalised features."""


def convert(capsys, *argv) -> str:
    """Run `unicl convert ARGV`; the one-line error when it fails, else ''."""
    return run_command(capsys, "convert", *argv)


def assert_same_clip(converted_dir, model, vocabulary) -> None:
    """Same token ids, features (within TOLERANCE) and logit scale as the transformers model."""
    ours = load(converted_dir).eval()
    ids = hf_ids(hf_tokenizer(vocabulary), TEXTS)
    assert torch.equal(ours.tokenize(TEXTS), ids)
    torch.manual_seed(1)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        image_gap = ours.encode_image(images) - features(model.get_image_features(images))
        text_gap = ours.encode_text(ids) - features(model.get_text_features(input_ids=ids))
    assert image_gap.abs().max() <= TOLERANCE and text_gap.abs().max() <= TOLERANCE
    assert ours.logit_scale.item() == model.logit_scale.item()


def test_a_hugging_face_clip_directory_converts_exactly(reference, vocabulary, tmp_path, capsys):
    model, directory = reference
    assert convert(capsys, directory, "--out", tmp_path / "unicl") == ""
    assert_same_clip(tmp_path / "unicl", model, vocabulary)
    config = json.loads((tmp_path / "unicl" / "config.json").read_text())
    act = model.config.text_config.hidden_act
    assert (
        config["vision"] | {"act": act, "pre_norm": True, "patch_bias": False} == config["vision"]
    )
    eos = model.config.text_config.eos_token_id
    expected_pool = {"pool": "argmax"} if eos == 2 else {"pool": "eot", "eot_id": eos}
    assert config["text"] | expected_pool == config["text"]
    assert config["image_mean"] == [0.48145466, 0.4578275, 0.40821073]


def test_vocab_and_merges_stand_in_for_tokenizer_json_and_bin_for_safetensors(
    reference, vocabulary, tmp_path, capsys
):
    model, directory = reference
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(directory / "config.json", bare)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(vocabulary / name, bare)
    torch.save(load_file(directory / "model.safetensors"), bare / "pytorch_model.bin")
    assert convert(capsys, bare, "--out", tmp_path / "unicl") == ""
    assert_same_clip(tmp_path / "unicl", model, vocabulary)


@pytest.mark.parametrize(
    ("container", "tokenizer"),
    [("bare.pt", "hf"), ("wrapped.pt", "merges"), ("weights.safetensors", "vocab")],
)
def test_the_openai_layout_converts_exactly(
    reference, vocabulary, tmp_path, capsys, container, tokenizer
):
    model, directory = reference
    state = openai_state_dict(model)
    path = tmp_path / container
    if container == "bare.pt":
        torch.save(state, path)
    elif container == "wrapped.pt":
        torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    else:
        save_file(state, path)
    tokenizers = {"hf": directory, "merges": vocabulary / "bpe.txt.gz", "vocab": vocabulary}
    act = model.config.text_config.hidden_act
    out = tmp_path / "unicl"
    assert (
        convert(capsys, path, "--out", out, "--tokenizer", tokenizers[tokenizer], "--act", act)
        == ""
    )
    assert_same_clip(out, model, vocabulary)
    assert json.loads((out / "config.json").read_text())["text"]["pool"] == "argmax"


def test_the_activation_is_not_in_an_openai_file_and_matters(reference, tmp_path, capsys):
    """A wrong `--act` converts without complaint but changes the features: the equality above
    is sensitive to it."""
    model, directory = reference
    torch.save(openai_state_dict(model), tmp_path / "clip.pt")
    wrong = "gelu" if model.config.text_config.hidden_act == "quick_gelu" else "quick_gelu"
    out = tmp_path / "unicl"
    assert (
        convert(
            capsys, tmp_path / "clip.pt", "--out", out, "--tokenizer", directory, "--act", wrong
        )
        == ""
    )
    ids = load(out).tokenize(TEXTS)
    with torch.no_grad():
        gap = load(out).encode_text(ids) - features(model.get_text_features(input_ids=ids))
    assert gap.abs().max() > 1e-3


def test_heads_come_from_the_width_unless_given(vocabulary, tmp_path, capsys):
    vocab = json.loads((vocabulary / "vocab.json").read_text())
    model = tiny_clip(vocab, vision_width=32, text_width=48, heads=(2, 3))
    directory = save_hf_clip(model, vocabulary, tmp_path / "hf")
    torch.save(openai_state_dict(model), tmp_path / "clip.pt")
    argv = [tmp_path / "clip.pt", "--tokenizer", directory]
    error = convert(capsys, *argv, "--out", tmp_path / "a")
    assert (
        "visual.transformer width 32 is not a multiple of 64" in error and "--vision-heads" in error
    )
    heads = ["--vision-heads", 2, "--text-heads", 3]
    assert convert(capsys, *argv, *heads, "--out", tmp_path / "b") == ""
    assert_same_clip(tmp_path / "b", model, vocabulary)


@pytest.fixture
def openai_file(reference, tmp_path):
    model, directory = reference
    return openai_state_dict(model), directory


def test_leftover_and_missing_tensors_are_refused_by_name(openai_file, tmp_path, capsys):
    state, directory = openai_file
    state["visual.transformer.resblocks.0.ls_1.gamma"] = torch.ones(64)
    del state["visual.ln_pre.bias"]
    torch.save(state, tmp_path / "clip.pt")
    error = convert(
        capsys, tmp_path / "clip.pt", "--out", tmp_path / "out", "--tokenizer", directory
    )
    assert "missing tensors: visual.ln_pre.bias" in error
    assert "tensors not converted: visual.transformer.resblocks.0.ls_1.gamma" in error
    assert not (tmp_path / "out").exists()


def test_a_leftover_tensor_in_a_hugging_face_directory_is_named(reference, tmp_path, capsys):
    _, directory = reference
    copy = tmp_path / "hf"
    shutil.copytree(directory, copy)
    weights = load_file(copy / "model.safetensors")
    weights["vision_model.head.weight"] = torch.zeros(2, 2)
    save_file(weights, copy / "model.safetensors")
    error = convert(capsys, copy, "--out", tmp_path / "out")
    assert "tensors not converted: vision_model.head.weight" in error


def test_wrong_shapes_and_a_foreign_tokenizer_are_refused(openai_file, tmp_path, capsys):
    state, directory = openai_file
    torch.save(state, tmp_path / "clip.pt")
    foreign = SHIPPED_DIR / "bpe-4k.json"
    error = convert(capsys, tmp_path / "clip.pt", "--out", tmp_path / "a", "--tokenizer", foreign)
    rows = state["token_embedding.weight"].shape[0]
    assert f"the tokenizer has 4096 tokens but the text tower embeds {rows}" in error
    state["visual.proj"] = state["visual.proj"].T.contiguous()
    torch.save(state, tmp_path / "clip.pt")
    error = convert(capsys, tmp_path / "clip.pt", "--out", tmp_path / "b", "--tokenizer", directory)
    assert "shape mismatches" in error and "image_projection.weight (64, 24) != (24, 64)" in error


def test_a_modified_resnet_checkpoint_is_named_and_refused(tmp_path, vocabulary, capsys):
    state = {
        "visual.layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1),
        "logit_scale": torch.ones(()),
    }
    torch.save(state, tmp_path / "rn50.pt")
    error = convert(
        capsys, tmp_path / "rn50.pt", "--out", tmp_path / "o", "--tokenizer", vocabulary
    )
    assert "ModifiedResNet CLIP" in error and "ViT image towers only" in error


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_a_torchscript_archive_is_refused_with_the_export_command(tmp_path, vocabulary, capsys):
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / "ViT-B-32.pt"))
    error = convert(
        capsys, tmp_path / "ViT-B-32.pt", "--out", tmp_path / "o", "--tokenizer", vocabulary
    )
    assert "is a TorchScript archive" in error and "torch.jit.load" in error
    assert "convert clip-state.pt" in error


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tokenizer", "x"], "--tokenizer does not apply to a Hugging Face CLIP directory"),
        (
            ["--act", "gelu", "--text-heads", "2"],
            "--act, --text-heads do not apply to a Hugging Face CLIP directory",
        ),
        (
            ["--format", "openai-clip"],
            "is not a file; the openai-clip format is one checkpoint file",
        ),
    ],
)
def test_options_that_do_not_fit_the_format_are_refused(
    reference, tmp_path, capsys, extra, message
):
    _, directory = reference
    assert message in convert(capsys, directory, "--out", tmp_path / "o", *extra)


def test_sources_and_outputs_are_checked_first(openai_file, tmp_path, capsys):
    state, directory = openai_file
    torch.save(state, tmp_path / "clip.pt")
    assert "holds no tokenizer; pass --tokenizer" in convert(
        capsys, tmp_path / "clip.pt", "--out", tmp_path / "o"
    )
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    error = convert(
        capsys, tmp_path / "clip.pt", "--out", tmp_path / "full", "--tokenizer", directory
    )
    assert "already exists and is not an empty folder" in error
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    assert "without config.json" in convert(capsys, tmp_path / "full", "--out", tmp_path / "o")
    assert "does not exist" in convert(capsys, tmp_path / "none.pt", "--out", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    argv = [tmp_path / "clip.pt", "--out", tmp_path / "empty", "--tokenizer", directory]
    assert convert(capsys, *argv) == ""


@pytest.fixture
def labelled(tmp_path):
    """An ImageFolder of 2 classes x 4 plain images."""
    for name, value in (("black", 10), ("white", 240)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (40, 40), (value, value, value - i)).save(
                tmp_path / "data" / name / f"{i}.png"
            )
    return tmp_path / "data"


def test_a_converted_model_evaluates_zero_shot(reference, labelled, tmp_path, capsys):
    _, directory = reference
    assert convert(capsys, directory, "--out", tmp_path / "unicl") == ""
    argv = ["eval", "zeroshot", tmp_path / "unicl", "--data", labelled, "--json"]
    assert main(list(map(str, argv))) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_samples"] == 8 and 0.0 <= result["top1"] <= 1.0


@pytest.mark.slow
def test_a_converted_model_trains_from_its_directory(reference, labelled, tmp_path, capsys):
    _, directory = reference
    assert convert(capsys, directory, "--out", tmp_path / "unicl") == ""
    settings = [
        f"model.name={tmp_path / 'unicl'}",
        f"data.sources=[{labelled}]",
        "data.batch_size=4",
        "data.num_workers=0",
        "schedule.steps=2",
        "schedule.warmup_steps=1",
        "evaluation.zeroshot=[]",
        "logging.progress=false",
        "checkpoint.every_steps=2",
        f"run.output_dir={tmp_path / 'run'}",
    ]
    argv = ["train", "configs/demo.yaml"]
    for setting in settings:
        argv += ["--set", setting]
    assert main(argv) == 0
    before, after = load(tmp_path / "unicl"), load(tmp_path / "run" / "model")
    assert after.config == before.config
    assert not torch.equal(
        after.image_encoder.norm_pre.weight, before.image_encoder.norm_pre.weight
    )
