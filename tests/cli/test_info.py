"""`unicl info`: what a saved model is and how it was trained."""

from __future__ import annotations

import json

import yaml

from unicl.cli.main import main
from unicl.models import create_model


def test_info_describes_towers_parameters_and_the_run(tmp_path, capsys):
    model = create_model("unicl-tiny")
    model.save_pretrained(tmp_path / "run" / "model")
    run = {"objective": {"name": "unicl"}, "schedule": {"steps": 500}, "data": {"sources": ["a"]}}
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(run))
    assert main(["info", str(tmp_path / "run" / "model"), "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    total = sum(p.numel() for p in model.parameters())
    assert described["parameters"]["total"] == total
    assert described["vision"]["arch"] == "resnet" and described["embed_dim"] == 128
    assert described["trained"] == {
        "run": str(tmp_path / "run"),
        "objective": "unicl",
        "steps": 500,
        "sources": ["a"],
    }
    assert main(["info", str(tmp_path / "run" / "model")]) == 0
    assert f"total: {total}" in capsys.readouterr().out


def test_info_of_a_missing_model_is_one_line(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
