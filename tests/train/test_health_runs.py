"""`unicl train` on the shipped demo data with the real models: a learning rate that collapses
the run stops it with a checkpoint, a report and a one-line error; a healthy run reports
nothing."""

import pytest

from unicl.cli.main import main
from unicl.train.checkpoint import list_checkpoints
from unicl.train.logger import read_metrics

SMALL = [
    "data.batch_size=32",
    "data.num_workers=0",
    "logging.every_steps=5",
    "evaluation.zeroshot=[]",
]
COLLAPSING_LR = "optim.lr=0.5"
"""unicl-tiny on the demo data at batch 32: the loss reaches ln 32 with a vanishing gradient by
step 10 and stays there."""


def train(tmp_path, capsys, *overrides):
    argv = ["train", "configs/demo.yaml", "--set", f"run.output_dir={tmp_path / 'run'}"]
    for override in [*SMALL, *overrides]:
        argv += ["--set", override]
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err, tmp_path / "run"


def test_a_collapsing_run_stops_after_a_checkpoint_with_its_report_and_one_line(tmp_path, capsys):
    code, output, run = train(tmp_path, capsys, COLLAPSING_LR, "schedule.steps=60")
    assert code == 1
    last = output.strip().splitlines()[-1]
    assert last.startswith("unicl: training stopped at step 20: collapse since step 10: the loss")
    assert "uniform guess (3.4657)" in last and "lower optim.lr" in last
    assert f"checkpoint {run / 'checkpoints' / 'step_00000020.pt'}" in last
    assert [p.name for p in list_checkpoints(run)] == ["step_00000020.pt"]
    assert not (run / "model").exists()
    (event,) = [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "health"]
    assert (event["condition"], event["since"], event["step"]) == ("collapse", 10, 20)
    report = (run / "report.md").read_text()
    assert "## Health" in report and "| collapse | 10 | 20 | stopped the run |" in report
    assert "![collapse](health_collapse_20.png)" in report
    assert "| tower learning-rate scales | image 1, text 1 |" in report
    assert (run / "health_collapse_20.png").read_bytes()[:4] == b"\x89PNG"
    assert "step 20: health: collapse since step 10" in output


@pytest.mark.slow
def test_warn_mode_reports_the_collapse_and_finishes_the_run(tmp_path, capsys):
    code, output, run = train(
        tmp_path, capsys, COLLAPSING_LR, "schedule.steps=35", "run.on_collapse=warn"
    )
    assert code == 0 and (run / "model" / "model.safetensors").is_file()
    assert "step 20: health: collapse since step 10" in output and "lower optim.lr" in output
    assert "| collapse | 10 | 20 | warning |" in (run / "report.md").read_text()
    records = read_metrics(run / "metrics.jsonl")
    assert [r.get("health") for r in records if r["kind"] == "train"][-2:] == [
        ["collapse"],
        ["collapse"],
    ]


def test_a_healthy_run_reports_nothing(tmp_path, capsys):
    code, output, run = train(tmp_path, capsys, "schedule.steps=30", "schedule.warmup_steps=10")
    assert code == 0
    records = read_metrics(run / "metrics.jsonl")
    assert not [r for r in records if r["kind"] == "health" or r.get("health")]
    assert all(r["image_spread"] > 0.1 and r["text_spread"] > 0.1 for r in records)
    assert "health:" not in output and " health " not in output
    assert "## Health" not in (run / "report.md").read_text()


@pytest.mark.slow
def test_the_pretrained_text_model_at_a_destroying_rate_stops_with_the_message(tmp_path, capsys):
    code, output, run = train(
        tmp_path, capsys, "model.name=unicl-tiny-minilm", COLLAPSING_LR, "schedule.steps=60"
    )
    assert code == 1
    last = output.strip().splitlines()[-1]
    assert last.startswith("unicl: training stopped at step") and "collapse since step" in last
    assert len(list_checkpoints(run)) == 1 and "## Health" in (run / "report.md").read_text()
    assert "unicl: the text tower trains at 0.01 x the learning rate" in output
