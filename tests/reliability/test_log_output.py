"""Training output redirected to a file reads as a log: plain lines, no carriage returns."""

from __future__ import annotations

from tests.reliability.conftest import run_unicl


def test_redirected_training_prints_one_plain_line_per_logging_window(tmp_path):
    outcome = run_unicl(
        "train",
        "configs/demo.yaml",
        "--set",
        f"run.output_dir={tmp_path / 'run'}",
        "--set",
        "schedule.steps=20",
        "--set",
        "schedule.warmup_steps=2",
        "--set",
        "evaluation.zeroshot=[]",
    )
    assert outcome.status == 0, outcome.stderr
    assert "\r" not in outcome.stderr
    lines = [line for line in outcome.stderr.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines] == ["10/20", "20/20"]
    assert all(" loss " in line and " eta " in line for line in lines)
