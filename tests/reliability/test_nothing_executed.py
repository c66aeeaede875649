"""Loading a model never imports or runs anything named by the files it loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.reliability.conftest import run_unicl, snapshot

PAYLOAD = (
    "import pathlib\npathlib.Path('{marker}').write_text('ran')\ndef get_model_path(): return '.'\n"
)


@pytest.fixture
def hostile_model(model_dir, tmp_path):
    """A copy of a real saved model whose config names a module shipped beside it."""
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    for path in model_dir.iterdir():
        if path.is_file():
            (hostile / path.name).write_bytes(path.read_bytes())
    config = json.loads((hostile / "config.json").read_text())
    config["text"] = {"arch": "hf", "package": "evil_tower"}
    (hostile / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "code-ran"
    (hostile / "evil_tower.py").write_text(PAYLOAD.format(marker=marker))
    return hostile, marker


def test_load_in_python_does_not_import_a_module_named_by_the_config(hostile_model):
    hostile, marker = hostile_model
    script = "import unicl\ntry:\n    unicl.load('.')\nexcept ValueError as e:\n    print(e)\n"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=hostile, capture_output=True, text=True, timeout=120
    )
    assert not marker.exists()
    assert "'evil_tower' is not a known packaged tower" in done.stdout


@pytest.mark.parametrize("package", ["evil_tower", "os"])
def test_commands_refuse_an_unknown_package_with_one_line(hostile_model, labelled, package):
    hostile, marker = hostile_model
    config = json.loads((hostile / "config.json").read_text())
    config["text"]["package"] = package
    (hostile / "config.json").write_text(json.dumps(config))
    before = snapshot(hostile)
    outcome = run_unicl("eval", "zeroshot", ".", "--data", labelled, cwd=hostile)
    assert outcome.status == 2
    assert f"{package!r} is not a known packaged tower" in outcome.error_line
    assert not marker.exists() and snapshot(hostile) == before
