"""Bad training configs and overrides: a one-line error before anything is written."""

from __future__ import annotations

import pytest

from tests.reliability.conftest import run_unicl


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr=.inf", "'optim.lr' is inf; it must be a finite number"),
        ("optim.weight_decay=nan", "'optim.weight_decay' is 'nan'; it must be a finite number"),
        ("optim.lr=[1", "--set optim.lr: the value '[1' is expected"),
    ],
)
def test_non_finite_and_malformed_overrides_are_refused(tmp_path, override, message):
    run = tmp_path / "run"
    outcome = run_unicl(
        "train", "configs/demo.yaml", "--set", override, "--set", f"run.output_dir={run}"
    )
    assert outcome.status == 2
    assert message in outcome.error_line
    assert not run.exists()
