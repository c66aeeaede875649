"""`unicl export`: the way back out. CLIP models built by `transformers` go through `unicl convert`
and `unicl export` and come back bit for bit, loadable by `transformers` alone; models without a
CLIP counterpart are refused by name."""

from __future__ import annotations

import json
from itertools import islice

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tokenizers import normalizers

from tests.cli.conftest import run_command
from tests.models.clip_reference import (
    TEXTS,
    features,
    hf_ids,
    hf_tokenizer,
    openai_state_dict,
    save_hf_clip,
    tiny_clip,
    transformers,
)
from unicl.constants import CLIP_MEAN, CLIP_STD
from unicl.data import EvalTransform, open_source
from unicl.errors import UserInputError
from unicl.models import create_model, load
from unicl.models.convert import convert_checkpoint
from unicl.models.convert.clip_export import check_clip_tokenizer
from unicl.models.tokenizer import clip_tokenizer

IMAGES = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def export(capsys, *argv) -> str:
    """Run `unicl export ARGV`; the one-line error when it fails, else ''."""
    return run_command(capsys, "export", *argv)


@pytest.fixture(scope="module")
def converted(reference, tmp_path_factory):
    """(transformers model, its unicl conversion's directory)."""
    model, directory = reference
    out = tmp_path_factory.mktemp("converted") / "unicl"
    from unicl.cli.main import main

    assert main(["convert", str(directory), "--out", str(out)]) == 0
    return model, out


def test_hf_clip_round_trip_is_bit_identical(converted, vocabulary, tmp_path, capsys):
    """HF CLIP -> unicl convert -> unicl export -> CLIPModel: the same tensors bit for bit, the
    same config where it matters, the same features, token ids and processor."""
    model, unicl_dir = converted
    out = tmp_path / "hf"
    assert export(capsys, unicl_dir, "--format", "hf-clip", "--out", out) == ""
    back = transformers.CLIPModel.from_pretrained(str(out), local_files_only=True).eval()
    theirs, ours = model.state_dict(), back.state_dict()
    assert sorted(ours) == sorted(theirs)
    assert all(torch.equal(ours[name], theirs[name]) for name in theirs)
    for section in ("text_config", "vision_config"):
        a, b = getattr(model.config, section), getattr(back.config, section)
        keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
        keys += ("hidden_act", "layer_norm_eps")
        assert [getattr(a, k) for k in keys] == [getattr(b, k) for k in keys]
    assert back.config.text_config.eos_token_id == model.config.text_config.eos_token_id
    ids = hf_ids(hf_tokenizer(vocabulary), TEXTS)
    for tokenizer_class in (transformers.CLIPTokenizerFast, transformers.CLIPTokenizer):
        assert torch.equal(hf_ids(tokenizer_class.from_pretrained(str(out)), TEXTS), ids)
    assert torch.equal(clip_features(back, ids), clip_features(model, ids))
    processor = transformers.CLIPProcessor.from_pretrained(str(out))
    assert processor.image_processor.crop_size == {"height": 32, "width": 32}
    assert 'CLIPModel.from_pretrained("path/to/hf")' in (out / "README.md").read_text()


def clip_features(model, ids) -> torch.Tensor:
    """A transformers CLIP model's image features of IMAGES and text features of `ids`, stacked."""
    with torch.no_grad():
        images = features(model.get_image_features(pixel_values=IMAGES))
        texts = features(model.get_text_features(input_ids=ids))
    return torch.cat([images, texts])


def test_an_exported_directory_converts_back_to_the_same_unicl_model(converted, tmp_path, capsys):
    _, unicl_dir = converted
    assert export(capsys, unicl_dir, "--format", "hf-clip", "--out", tmp_path / "hf") == ""
    assert run_command(capsys, "convert", tmp_path / "hf", "--out", tmp_path / "again") == ""
    before, after = load(unicl_dir), load(tmp_path / "again")
    assert before.config == after.config
    a, b = before.state_dict(), after.state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_open_clip_round_trip_is_bit_identical(converted, tmp_path, capsys):
    """OpenAI/OpenCLIP layout -> unicl convert -> unicl export --format open-clip: the same
    state dict bit for bit, OpenCLIP's config schema, and the importer reads it back."""
    model, _ = converted
    state = openai_state_dict(model)
    save_file(state, tmp_path / "clip.safetensors")
    act = model.config.text_config.hidden_act
    unicl_dir = tmp_path / "unicl"
    argv = [tmp_path / "clip.safetensors", "--out", unicl_dir, "--tokenizer", converted[1]]
    assert run_command(capsys, "convert", *argv, "--act", act) == ""
    out = tmp_path / "open-clip"
    assert export(capsys, unicl_dir, "--format", "open-clip", "--out", out) == ""
    written = load_file(out / "open_clip_model.safetensors")
    assert sorted(written) == sorted(state)
    assert all(torch.equal(written[name], state[name]) for name in state)
    config = json.loads((out / "open_clip_config.json").read_text())
    vision, text = model.config.vision_config, model.config.text_config
    assert config["model_cfg"] == {
        "embed_dim": model.config.projection_dim,
        "quick_gelu": act == "quick_gelu",
        "vision_cfg": {
            "image_size": 32,
            "patch_size": 8,
            "width": vision.hidden_size,
            "layers": 2,
            "head_width": vision.hidden_size // vision.num_attention_heads,
            "mlp_ratio": vision.intermediate_size / vision.hidden_size,
        },
        "text_cfg": {
            "context_length": 16,
            "vocab_size": text.vocab_size,
            "width": text.hidden_size,
            "heads": text.num_attention_heads,
            "layers": 2,
            "mlp_ratio": text.intermediate_size / text.hidden_size,
            "pool_type": "argmax",
        },
    }
    assert config["preprocess_cfg"]["mean"] == [0.48145466, 0.4578275, 0.40821073]
    again = tmp_path / "again"
    argv = [out / "open_clip_model.safetensors", "--out", again, "--tokenizer", out]
    assert run_command(capsys, "convert", *argv, "--act", act) == ""
    ids = load(again).tokenize(TEXTS)
    with torch.no_grad():
        ours = load(again).eval().encode_text(ids)
        assert torch.equal(ours, load(unicl_dir).eval().encode_text(ids))
        assert (ours - features(model.get_text_features(input_ids=ids))).abs().max() <= 1e-5


@pytest.fixture(scope="module")
def eot_two(vocabulary, tmp_path_factory):
    """A converted CLIP model pooled at the end-of-text token, with its vocabulary permuted so
    that `<|endoftext|>` has id 2 (and the embedding rows swapped to match): the same model, whose
    `eos_token_id` would be 2."""
    model = tiny_clip(json.loads((vocabulary / "vocab.json").read_text()))
    hf_dir = save_hf_clip(model, vocabulary, tmp_path_factory.mktemp("hf") / "clip")
    unicl_dir = tmp_path_factory.mktemp("unicl")
    convert_checkpoint(hf_dir).save_pretrained(unicl_dir)
    out = tmp_path_factory.mktemp("eot-two")
    end = model.config.text_config.eos_token_id
    saved = json.loads((unicl_dir / "tokenizer.json").read_text())["model"]
    swap = {end: 2, 2: end}
    vocab = {token: swap.get(i, i) for token, i in saved["vocab"].items()}
    merges = [tuple(merge) for merge in saved["merges"]]
    (out / "tokenizer.json").write_text(clip_tokenizer(vocab, merges).to_str())
    config = json.loads((unicl_dir / "config.json").read_text())
    config["text"]["eot_id"] = 2
    (out / "config.json").write_text(json.dumps(config))
    weights = load_file(unicl_dir / "model.safetensors")
    table = weights["text_encoder.token_embedding.weight"]
    table[[2, end]] = table[[end, 2]]
    save_file(weights, out / "model.safetensors")
    permuted, original = load(out).eval(), load(unicl_dir).eval()
    with torch.no_grad():
        same = permuted.encode_text(permuted.tokenize(TEXTS))
        assert torch.equal(same, original.encode_text(original.tokenize(TEXTS)))
    return out


def test_end_of_text_id_2_has_no_hf_clip_counterpart_but_an_open_clip_one(
    eot_two, tmp_path, capsys
):
    """transformers reads `eos_token_id: 2` as "pool at the largest id", so an `eot` model
    whose end-of-text id is 2 is refused; OpenCLIP's config says `eos` pooling at id 2."""
    error = export(capsys, eot_two, "--format", "hf-clip", "--out", tmp_path / "hf")
    assert "pools at end-of-text id 2, which transformers reads as" in error
    assert not (tmp_path / "hf").exists()
    assert export(capsys, eot_two, "--format", "open-clip", "--out", tmp_path / "oc") == ""
    text = json.loads((tmp_path / "oc" / "open_clip_config.json").read_text())["model_cfg"]
    assert text["text_cfg"] | {"pool_type": "eos", "eos_id": 2} == text["text_cfg"]


SMALL_VIT = {"arch": "vit", "patch_size": 8, "width": 32, "depth": 1, "heads": 1}
CLIP_VIT = {**SMALL_VIT, "pre_norm": True, "patch_bias": False}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "the image tower is 'resnet'; hf-clip holds CLIP's ViT image tower only"),
        ({"vision": SMALL_VIT}, "the image tower is a ViT without CLIP's pre-norm or with a patch"),
        (
            {"vision": CLIP_VIT},
            "the text tower pools at the last non-padding token (text.pool: last)",
        ),
        (
            {"vision": CLIP_VIT, "text": {"pool": "argmax"}},
            "the tokenizer is not CLIP's byte-level BPE (it is not a BPE with </w> word ends",
        ),
    ],
)
def test_models_without_a_clip_counterpart_are_refused_naming_the_tower(
    tmp_path, capsys, overrides, message
):
    create_model("unicl-tiny", **overrides).save_pretrained(tmp_path / "model")
    error = export(capsys, tmp_path / "model", "--format", "hf-clip", "--out", tmp_path / "out")
    assert message in error
    assert not (tmp_path / "out").exists()


def test_a_clip_vocabulary_with_another_normaliser_is_not_clips_tokenizer(converted):
    """transformers' CLIPTokenizer rebuilds CLIP's pipeline from the vocabulary and merges, so a
    tokenizer that lower-cases nothing would tokenise differently there."""
    model = load(converted[1])
    check_clip_tokenizer(model.tokenizer, "hf-clip")
    model.tokenizer.backend.normalizer = normalizers.NFC()
    with pytest.raises(UserInputError, match=r"\(its normalizer differs from CLIP's\)"):
        check_clip_tokenizer(model.tokenizer, "hf-clip")


def test_an_image_only_model_and_a_text_tower_from_hugging_face_are_refused(tmp_path, capsys):
    model = create_model("unicl-tiny-minilm", vision=CLIP_VIT)
    model.save_pretrained(tmp_path / "minilm")
    error = export(capsys, tmp_path / "minilm", "--format", "open-clip", "--out", tmp_path / "a")
    assert "the text tower is 'hf'; open-clip holds CLIP's text transformer only" in error
    config = json.loads((tmp_path / "minilm" / "config.json").read_text())
    (tmp_path / "minilm" / "config.json").write_text(json.dumps({**config, "image_only": True}))
    error = export(capsys, tmp_path / "minilm", "--format", "hf-clip", "--out", tmp_path / "b")
    assert "the model is image-only" in error


def test_outputs_are_checked_before_anything_is_read(converted, tmp_path, capsys):
    _, unicl_dir = converted
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    error = export(capsys, unicl_dir, "--format", "hf-clip", "--out", tmp_path / "full")
    assert "already exists and is not an empty folder" in error
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    error = export(capsys, unicl_dir, "--format", "hf-clip", "--out", unicl_dir / "hf")
    assert "is inside the model directory" in error
    error = export(capsys, tmp_path / "none", "--format", "hf-clip", "--out", tmp_path / "o")
    assert "does not exist" in error


def test_a_model_fine_tuned_by_unicl_gives_its_features_through_transformers_alone(
    converted, tmp_path, capsys
):
    """Imported CLIP -> a few steps of UniCL on labelled demo images -> export -> transformers'
    CLIPProcessor and CLIPModel alone give unicl's features of the same images and texts."""
    _, unicl_dir = converted
    settings = [
        f"model.name={unicl_dir}",
        'data.sources=["data/demo/fashion-mnist?take=0:64"]',
        "data.batch_size=8",
        "data.num_workers=0",
        "schedule.steps=3",
        "schedule.warmup_steps=1",
        "evaluation.zeroshot=[]",
        "logging.progress=false",
        "checkpoint.every_steps=3",
        f"run.output_dir={tmp_path / 'run'}",
    ]
    argv = ["train", "configs/demo.yaml", *(f"--set={setting}" for setting in settings)]
    assert run_command(capsys, *argv) == ""
    trained = tmp_path / "run" / "model"
    assert export(capsys, trained, "--format", "hf-clip", "--out", tmp_path / "hf") == ""
    samples = islice(open_source("data/demo/fashion-mnist#t10k").raw_samples(), 4)
    images = [Image.fromarray(raw.image) for raw in samples]
    texts = ["a photo of a trouser.", "a sneaker", "an ankle boot in a photo"]
    model = transformers.CLIPModel.from_pretrained(str(tmp_path / "hf")).eval()
    processor = transformers.CLIPProcessor.from_pretrained(str(tmp_path / "hf"))
    inputs = processor(text=texts, images=images, return_tensors="pt", padding=True)
    ours, preprocess = load(trained).eval(), EvalTransform(32, CLIP_MEAN, CLIP_STD)
    with torch.no_grad():
        theirs_image = features(model.get_image_features(pixel_values=inputs["pixel_values"]))
        theirs_text = features(
            model.get_text_features(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
            )
        )
        ours_image = ours.encode_image(torch.stack([preprocess(image) for image in images]))
        ours_text = ours.encode_text(ours.tokenize(texts))
    assert (theirs_image - ours_image).abs().max() <= 1e-5
    assert (theirs_text - ours_text).abs().max() <= 1e-5
    before = load(unicl_dir).state_dict()["image_encoder.norm_pre.weight"]
    assert not torch.equal(ours.state_dict()["image_encoder.norm_pre.weight"], before)
    card = (trained / "README.md").read_text()
    assert "Trained with `unicl train` from" in card and "3 steps, 24 samples seen" in card
    assert "MIT, Copyright (c) 2017 Zalando SE" in card and "Imported with `unicl convert`" in card


def test_a_logit_bias_survives_save_open_clip_export_and_import_and_blocks_hf_clip(
    converted, tmp_path, capsys
):
    """A CLIP model given the sigmoid objective's bias (as `unicl-sigmoid` does) saves and loads
    it, exports it to OpenCLIP (`logit_bias`, `init_logit_bias`), converts back with it, and is
    refused by hf-clip, whose CLIPModel has no bias."""
    model = load(converted[1])
    model.add_logit_bias(-10.0, 2.302585)
    with torch.no_grad():
        model.logit_bias.fill_(-7.25)
    model.save_pretrained(tmp_path / "sigmoid")
    saved = load(tmp_path / "sigmoid")
    assert saved.logit_bias.item() == -7.25 and saved.config.init_logit_bias == -10.0
    assert "logit_bias" in saved.no_weight_decay()
    out = tmp_path / "open-clip"
    assert export(capsys, tmp_path / "sigmoid", "--format", "open-clip", "--out", out) == ""
    assert float(load_file(out / "open_clip_model.safetensors")["logit_bias"]) == -7.25
    config = json.loads((out / "open_clip_config.json").read_text())
    assert config["model_cfg"]["init_logit_bias"] == -10.0
    act = converted[0].config.text_config.hidden_act
    again = tmp_path / "again"
    argv = [out / "open_clip_model.safetensors", "--out", again, "--tokenizer", out]
    assert run_command(capsys, "convert", *argv, "--act", act) == ""
    assert load(again).logit_bias.item() == -7.25
    error = export(capsys, tmp_path / "sigmoid", "--format", "hf-clip", "--out", tmp_path / "hf")
    assert "has a logit_bias" in error and "--format open-clip" in error
