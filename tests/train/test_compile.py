"""`run.compile: true` on the real trainer: compiled towers and tiles train like eager ones, with
accumulation and an EMA, and their checkpoint resumes an uncompiled run."""

import pytest
import torch

from unicl.models import load
from unicl.train import load_training_config
from unicl.train.checkpoint import list_checkpoints, load_checkpoint
from unicl.train.logger import read_metrics
from unicl.train.trainer import train

pytestmark = pytest.mark.slow  # TorchInductor compiles C++ kernels: a minute on two cores


def _config(output_dir, *overrides):
    return load_training_config(
        "configs/demo.yaml",
        [
            "data.batch_size=16",
            "data.accumulation_steps=2",
            "objective.tile_size=8",  # 16 columns in tiles of 8: the compiled tile kernels run
            "data.num_workers=0",
            "optim.ema_decay=0.9",
            "schedule.steps=2",
            "schedule.warmup_steps=1",
            "checkpoint.every_steps=2",
            "logging.every_steps=1",
            "logging.progress=false",
            "evaluation.zeroshot=[]",
            f"run.output_dir={output_dir}",
            *overrides,
        ],
    )


def test_compiled_towers_train_like_eager_ones_and_resume_uncompiled(tmp_path):
    train(_config(tmp_path / "eager"))
    train(_config(tmp_path / "compiled", "run.compile=true"))
    eager = read_metrics(tmp_path / "eager" / "metrics.jsonl")
    compiled = read_metrics(tmp_path / "compiled" / "metrics.jsonl")
    assert [r["loss"] for r in compiled] == pytest.approx([r["loss"] for r in eager], rel=1e-4)

    (checkpoint,) = list_checkpoints(tmp_path / "compiled")
    payload = load_checkpoint(checkpoint)
    names = [*payload["objective"], *payload["ema"]]
    assert not [name for name in names if "_orig_mod" in name]
    saved = load(tmp_path / "compiled" / "model")
    assert not any("_orig_mod" in name for name in saved.state_dict())

    resumed = train(
        _config(tmp_path / "compiled", "run.compile=false", "schedule.steps=3"), resume="latest"
    )
    assert resumed.step == 3 and resumed.stopped_by is None
    records = read_metrics(tmp_path / "compiled" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    assert torch.isfinite(torch.tensor(records[-1]["loss"]))
