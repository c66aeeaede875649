"""Whole runs of `train()` on the shipped demo data with the real `unicl-tiny`."""

import pytest
import torch

from unicl.models import load
from unicl.train import load_training_config, train
from unicl.train.checkpoint import list_checkpoints
from unicl.train.logger import read_metrics

pytestmark = pytest.mark.slow

SMALL = [
    "data.batch_size=16",
    "data.num_workers=0",
    "schedule.steps=4",
    "schedule.warmup_steps=1",
    "checkpoint.every_steps=2",
    "checkpoint.keep_last=5",
    "logging.every_steps=1",
    "logging.progress=false",
    "optim.ema_decay=0.5",
    "evaluation.zeroshot=[]",
    "run.deterministic=true",
]


def _config(output_dir, *extra):
    return load_training_config(
        "configs/demo.yaml", [*SMALL, f"run.output_dir={output_dir}", *extra]
    )


def test_a_run_writes_model_metrics_checkpoints_and_report(tmp_path):
    result = train(_config(tmp_path / "run"))
    assert result.step == 4 and result.stopped_by is None
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == [
        "step_00000002.pt",
        "step_00000004.pt",
    ]
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    report = result.report.read_text()
    assert "| global batch | 16 |" in report and "![training loss](loss.png)" in report
    for plot in ("loss.png", "lr.png", "logit_scale.png"):
        assert (tmp_path / "run" / plot).stat().st_size > 0
    model = load(result.model_dir)
    assert model.image_size == 32


def test_resuming_a_checkpoint_reproduces_the_uninterrupted_weights(tmp_path):
    whole = train(_config(tmp_path / "whole", "model.grad_checkpointing=true"))
    halfway = list_checkpoints(tmp_path / "whole")[0]
    resumed = train(
        _config(tmp_path / "resumed", "model.grad_checkpointing=true"), resume=str(halfway)
    )
    assert resumed.step == 4
    expected = load(whole.model_dir).state_dict()
    actual = load(resumed.model_dir).state_dict()
    for name, value in expected.items():
        assert torch.equal(actual[name], value), name


def test_resuming_with_data_workers_across_an_epoch_boundary_is_exact(tmp_path):
    """Two workers that live across epochs and tokenise the captions: 6 batches of 16 per epoch,
    resumed from step 4 (mid-epoch) through the boundary at step 6 to step 9."""
    small_epoch = [
        "data.sources=['data/demo/fashion-mnist?take=0:64', "
        "{location: 'data/demo/emoji/train-{000000..000003}.tar', weight: 0.032}]",
        "data.num_workers=2",
        "schedule.steps=9",
        "checkpoint.every_steps=4",
    ]
    whole = train(_config(tmp_path / "whole", *small_epoch))
    halfway = list_checkpoints(tmp_path / "whole")[0]
    assert halfway.name == "step_00000004.pt"
    resumed = train(_config(tmp_path / "resumed", *small_epoch), resume=str(halfway))
    assert resumed.step == 9
    expected = load(whole.model_dir).state_dict()
    actual = load(resumed.model_dir).state_dict()
    for name, value in expected.items():
        assert torch.equal(actual[name], value), name


@pytest.mark.parametrize("resampled", [False, True])
def test_resuming_mid_epoch_with_fewer_workers_finishes_the_epoch_exactly(tmp_path, resampled):
    """An epoch of 6 batches read by 2 workers, resumed at step 4 with 1 worker: the last two
    steps take the batches of the uninterrupted run, in its order (1 divides 2)."""
    small_epoch = [
        "data.sources=['data/demo/fashion-mnist?take=0:64', "
        "{location: 'data/demo/emoji/train-{000000..000003}.tar', weight: 0.032}]",
        "schedule.steps=6",
        "checkpoint.every_steps=4",
        f"data.resampled={str(resampled).lower()}",
    ]
    whole = train(_config(tmp_path / "whole", *small_epoch, "data.num_workers=2"))
    halfway = list_checkpoints(tmp_path / "whole")[0]
    resumed = train(
        _config(tmp_path / "resumed", *small_epoch, "data.num_workers=1"), resume=str(halfway)
    )
    assert resumed.step == 6
    expected = load(whole.model_dir).state_dict()
    actual = load(resumed.model_dir).state_dict()
    for name, value in expected.items():
        assert torch.equal(actual[name], value), name
