"""The experiment runners: their shared helpers, and each runner end to end on tiny settings."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from unicl.models import create_model

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
sys.path.insert(0, str(EXPERIMENTS))

import common  # noqa: E402


def test_mean_and_spread_uses_the_sample_standard_deviation():
    summary = common.mean_and_spread([0.80, 0.82, 0.84])
    assert summary["mean"] == pytest.approx(0.82)
    assert summary["std"] == pytest.approx(0.02)
    assert common.percent(summary) == "82.0 ± 2.0"
    assert common.mean_and_spread([0.5])["std"] == 0.0


def test_a_run_whose_model_exists_is_not_trained_again(tmp_path):
    create_model("unicl-tiny").save_pretrained(tmp_path / "run" / "model")
    model_dir, seconds = common.train_run(
        tmp_path / "run", ["unused"], "unicl", common.Budget(1, 1), seed=0, threads=1
    )
    assert model_dir == tmp_path / "run" / "model" and seconds == 0.0


def test_markdown_table_has_a_header_rule_and_one_line_per_row():
    table = common.markdown_table(["a", "b"], [["1", "2"], ["3", "4"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |", "| 3 | 4 |"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "summary_keys"),
    [
        ("table2_fashion_mnist.py", {"ce", "supcon", "unicl"}),
        ("table5_image_text_label.py", {"label", "text", "label+text"}),
        ("batch_size.py", None),
    ],
)
def test_each_runner_completes_its_tiny_variant(tmp_path, script, summary_keys):
    command = [sys.executable, str(EXPERIMENTS / script), "--variant", "tiny"]
    subprocess.run([*command, "--out", str(tmp_path), "--threads", "1"], check=True)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["variant"] == "tiny"
    assert (tmp_path / "results.md").read_text().startswith("| ")
    if summary_keys is not None:
        assert set(results["summary"]) == summary_keys
    for run in results["runs"].values():
        assert all(0.0 <= value <= 1.0 for key, value in run.items() if key.endswith("top1"))
