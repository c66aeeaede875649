"""The batch an optimiser step trains on is the one the run reports, on the real stream."""

from __future__ import annotations

import torch

from unicl.train import load_training_config
from unicl.train.launch import ProcessContext
from unicl.train.loop import run_loop
from unicl.train.periodic_eval import evaluate_run
from unicl.train.signals import StopRequest
from unicl.train.trainer import build_run


def test_accumulated_steps_consume_the_global_batch_they_report(tmp_path):
    config = load_training_config(
        "configs/demo.yaml",
        [
            "data.batch_size=8", "data.accumulation_steps=4", "data.num_workers=0",
            "schedule.steps=3", "schedule.warmup_steps=1", "evaluation.zeroshot=[]",
            "logging.progress=false", f"run.output_dir={tmp_path}",
        ],
    )  # fmt: skip
    state, batches, augment = build_run(config, ProcessContext(device=torch.device("cpu")))
    assert state.global_batch == 32
    with StopRequest() as stop:
        result = run_loop(state, batches, augment, evaluate_run, stop)
    read = sum(state.stream.state_dict()["positions"])
    assert result.step == 3 and state.counters.samples == 3 * 32
    assert read - state.stream.bad_data.bad == 3 * 32  # 96 samples, not 3 x 8, left the stream
