"""The experiment runners: their shared helpers, and each runner end to end on tiny settings."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from unicl.data.arrays import read_idx
from unicl.data.classes import KNOWN_CLASS_NAMES
from unicl.evaluate import evaluate_zeroshot
from unicl.models import create_model
from unicl.train.logger import read_metrics

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


def test_an_interrupted_run_continues_from_its_checkpoint(tmp_path):
    source = {**common.demo_fashion_mnist("train"), "take": ":64"}
    budget = common.Budget(steps=4, batch_size=8)
    run = tmp_path / "run"
    common.train_run(run, [source], "ce", budget, seed=0, threads=1)
    shutil.rmtree(run / "model")  # as if killed after the last checkpoint
    model_dir, _ = common.train_run(run, [source], "ce", budget, seed=0, threads=1)
    assert (model_dir / "config.json").is_file()
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")][-1] == 4


def test_a_run_whose_result_exists_is_neither_trained_nor_scored_again(tmp_path):
    computed = common.run_result(tmp_path, "ce-seed0", lambda: {"probe_top1": 0.5})
    assert computed == {"probe_top1": 0.5} and (tmp_path / "runs" / "ce-seed0.json").is_file()
    again = common.run_result(
        tmp_path, "ce-seed0", lambda: pytest.fail("a finished run was computed again")
    )
    assert again == computed


def test_summarize_spreads_over_the_finished_runs_and_the_metrics_they_all_have():
    runs = {
        "a-seed0": {"top1": 0.5, "head": 0.7},
        "a-seed1": {"top1": 0.7},
        "b-seed0": {"top1": 0.9},
    }
    groups = {"a": ["a-seed0", "a-seed1", "a-seed2"], "b": ["b-seed0"]}
    summary = common.summarize(runs, groups, ["top1", "head"])
    assert summary["a"]["runs"] == 2 and summary["a"]["top1"]["mean"] == pytest.approx(0.6)
    assert "head" not in summary["a"]  # seed 1 has no head score
    assert common.percent(summary["a"].get("head")) == "n/a"
    assert summary["b"]["top1"]["std"] == 0.0


def test_zero_shot_on_encoded_images_is_evaluate_zeroshot_on_a_source_of_those_classes(tmp_path):
    """Encoding the test images once and scoring class subsets gives what evaluate_zeroshot
    gives on a source that holds only those classes."""
    demo = Path(common.DEMO_FASHION_MNIST)
    images = read_idx(demo / "t10k-images-idx3-ubyte.gz")[:400]
    labels = read_idx(demo / "t10k-labels-idx1-ubyte.gz")[:400]
    names = KNOWN_CLASS_NAMES["fashion-mnist"]
    chosen = [8, 1, 5]  # bag, trouser, sandal: not in label order
    keep = np.isin(labels, chosen)
    np.savez(
        tmp_path / "subset.npz",
        x_test=images[keep],
        y_test=np.array([chosen.index(int(v)) for v in labels[keep]]),
        class_names=np.array([names[i] for i in chosen]),
    )
    torch.manual_seed(0)
    model = create_model("unicl-tiny").eval()
    source = {"location": str(demo), "split": "t10k", "take": ":400", "classes": "fashion-mnist"}
    test = common.encode_labelled(model, source)
    assert common.zeroshot_subset_top1(model, test) == pytest.approx(
        evaluate_zeroshot(model, source)["top1"]
    )
    subset = {"location": str(tmp_path / "subset.npz"), "split": "test"}
    assert common.zeroshot_subset_top1(model, test, [names[i] for i in chosen]) == pytest.approx(
        evaluate_zeroshot(model, subset)["top1"]
    )


def test_markdown_table_has_a_header_rule_and_one_line_per_row():
    table = common.markdown_table(["a", "b"], [["1", "2"], ["3", "4"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |", "| 3 | 4 |"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "summary_keys"),
    [
        ("table2_fashion_mnist.py", {"ce", "supcon", "unicl"}),
        (
            "table5_image_text_label.py",
            {
                "label · ce",
                "label · unicl",
                "label · clip",
                "text · unicl",
                "label+text · clip",
                "label+text · multitask",
                "label+text · unicl",
            },
        ),
        ("batch_size.py", {f"{o}-batch{b}" for o in ("ce", "unicl", "clip") for b in (16, 32)}),
        (
            "sigmoid_mixup.py",
            {f"{o}-batch{b}" for o in ("unicl", "unicl-sigmoid") for b in (16, 32)}
            | {"unicl-batch32-mix", "unicl-sigmoid-batch32-mix"},
        ),
        (
            "synergy_pretrained.py",
            {"label · unicl", "text · unicl", "label+text · unicl", "label+text · clip"}
            | {"label+text · multitask"},
        ),
    ],
)
def test_each_runner_completes_its_tiny_variant(tmp_path, script, summary_keys):
    record = tmp_path / "record"
    command = [sys.executable, str(EXPERIMENTS / script), "--variant", "tiny", "--threads", "1"]
    command += ["--out", str(tmp_path / "runs"), "--results", str(record)]
    subprocess.run(command, check=True)
    results = json.loads((record / "results.json").read_text())
    assert results["settings"]["variant"] == "tiny"
    assert (record / "results.md").read_text().startswith("| ")
    assert set(results["summary"]) == summary_keys
    for run in results["runs"].values():
        assert all(0.0 <= value <= 1.0 for key, value in run.items() if key.endswith("top1"))
    assert {path.stem for path in (record / "runs").glob("*.json")} == set(results["runs"])
    # the same command again finds every run's result: nothing is trained or scored again
    written = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    del written[record / "results.json"], written[record / "results.md"]
    subprocess.run(command, check=True)
    again = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert {p: again[p] for p in written} == written
    assert json.loads((record / "results.json").read_text())["runs"] == results["runs"]
