"""A model config whose sizes are each in bounds but whose product is absurd is refused in one line
before anything is allocated (the towers are counted on PyTorch's meta device)."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from tests.reliability.conftest import run_unicl, snapshot


@pytest.mark.parametrize(
    ("section", "sizes"),
    [
        ("vision", {"widths": [16384] * 4, "layers": [1024] * 4}),
        ("text", {"width": 16384, "layers": 1024}),
    ],
)
def test_a_tower_too_big_for_memory_is_refused(model_dir, tmp_path, section, sizes):
    model = shutil.copytree(model_dir, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    config[section].update(sizes)
    (model / "config.json").write_text(json.dumps(config))
    before = snapshot(model)
    started = time.monotonic()
    outcome = run_unicl("info", model)
    assert outcome.status == 2
    assert outcome.error_line.count(f"{section} (") == 1
    assert "billion parameters need" in outcome.error_line
    assert "check its sizes" in outcome.error_line
    assert time.monotonic() - started < 120
    assert snapshot(model) == before
