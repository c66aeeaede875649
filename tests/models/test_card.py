"""The model card (`README.md`) and provenance that every saved model directory holds."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from unicl.cli.main import main
from unicl.models import create_model, load
from unicl.models.card import model_card


@pytest.fixture
def saved(tmp_path):
    model = create_model("unicl-tiny", embed_dim=64)
    model.save_pretrained(tmp_path / "model")
    return model, tmp_path / "model"


def test_the_card_states_the_architecture_parameters_tokenizer_and_origin(saved):
    model, directory = saved
    card = (directory / "README.md").read_text()
    total = sum(p.numel() for p in model.parameters())
    towers = [
        sum(p.numel() for p in t.parameters()) for t in (model.image_encoder, model.text_encoder)
    ]
    assert f"| total | | {total:,} |" in card
    assert "| image tower | `resnet` (block basic" in card and f"| {towers[0]:,} |" in card
    assert f"| text tower | `transformer` (width 128, layers 2, heads 4) | {towers[1]:,} |" in card
    assert "| projections | 256 -> 64 and 128 -> 64, bias-free | 24,576 |" in card
    assert "`tokenizer.json`: BPE, 4,096 tokens, padded with `<|pad|>` to 32 tokens." in card
    assert 'Built from the config `unicl-tiny` with overrides `{"embed_dim": 64}`' in card
    assert "No results yet" in card


def test_provenance_is_saved_loaded_and_kept_when_saved_again(saved, tmp_path):
    _, directory = saved
    loaded = load(directory)
    assert loaded.provenance == json.loads((directory / "provenance.json").read_text())
    loaded.save_pretrained(tmp_path / "copy")
    assert load(tmp_path / "copy").provenance == loaded.provenance
    loaded.provenance = None
    loaded.save_pretrained(tmp_path / "unknown")
    assert not (tmp_path / "unknown" / "provenance.json").exists()
    assert "Not recorded" in (tmp_path / "unknown" / "README.md").read_text()


def test_eval_adds_its_results_to_the_card_but_leaves_a_users_readme_alone(saved, tmp_path, capsys):
    _, directory = saved

    for name, value in (("dark", 20), ("light", 230)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (32, 32), (value, value, i)).save(
                tmp_path / "data" / name / f"{i}.png"
            )
    argv = ["eval", "zeroshot", str(directory), "--data", str(tmp_path / "data"), "--json"]
    assert main(argv) == 0
    top1 = json.loads(capsys.readouterr().out)["top1"]
    card = (directory / "README.md").read_text()
    assert f"| zeroshot-data.json | zeroshot | {tmp_path / 'data'} |" in card
    assert f"top1 {top1:.4f}" in card and "No results yet" not in card
    assert card == model_card(load(directory), directory)
    (directory / "README.md").write_text("# my notes\n")
    assert main([*argv, "--overwrite"]) == 0
    assert "was not written by unicl; left unchanged" in capsys.readouterr().err
    assert (directory / "README.md").read_text() == "# my notes\n"
