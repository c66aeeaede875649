"""The training loop on stand-in towers: logging, checkpoints, exact resumption after a signal,
and non-finite losses."""

import os
import signal

import pytest
import torch

from tests.train.conftest import ListStream, TinyTowers, noisy_augment
from unicl.train.builtin_objectives import CrossEntropyObjective, UniCLObjective
from unicl.train.checkpoint import list_checkpoints, load_checkpoint
from unicl.train.config import ObjectiveConfig, config_from_dict
from unicl.train.launch import ProcessContext
from unicl.train.logger import read_metrics
from unicl.train.loop import TrainingDiverged, run_loop
from unicl.train.signals import StopRequest
from unicl.train.state import build_state, unused_parameters

CPU = ProcessContext(device=torch.device("cpu"))


def make_config(tmp_path, **sections):
    raw = {
        "data": {"sources": ["stand-in"], "batch_size": 8},
        "schedule": {"steps": 6, "warmup_steps": 2},
        "optim": {"lr": 1e-2, "reference_batch": None, "ema_decay": 0.9},
        "run": {"output_dir": str(tmp_path / "run"), "device": "cpu"},
        "checkpoint": {"every_steps": 2, "keep_last": 2},
        "logging": {"every_steps": 1, "progress": False},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return config_from_dict(raw)


def start(config, stream=None, context=CPU):
    torch.manual_seed(0)
    stream = stream or ListStream(config.data.batch_size * config.data.accumulation_steps)
    return build_state(config, context, TinyTowers(), stream, num_classes=3)


def run(state, evaluate=lambda state: {}):
    with StopRequest() as stop:
        return run_loop(state, iter(state.stream), noisy_augment, evaluate, stop)


def weights(state):
    return {k: v.clone() for k, v in state.objective.state_dict().items()}


def test_trains_logs_every_step_and_keeps_last_checkpoints(tmp_path):
    config = make_config(tmp_path)
    state = start(config)
    before = weights(state)
    result = run(state)
    assert result.step == 6 and result.stopped_by is None
    records = read_metrics(config.output_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all(r["loss"] > 0 and r["samples_per_s"] > 0 for r in records)
    assert records[-1]["samples"] == 6 * 8
    assert [p.name for p in list_checkpoints(config.output_dir)] == [
        "step_00000004.pt",
        "step_00000006.pt",
    ]
    assert not torch.equal(before["model.logit_scale"], state.objective.model.logit_scale.detach())


def test_interrupted_and_resumed_run_ends_with_identical_weights(tmp_path):
    config = make_config(tmp_path, data={"accumulation_steps": 2})
    uninterrupted = start(make_config(tmp_path / "a", data={"accumulation_steps": 2}))
    run(uninterrupted)

    class SignalAtThirdBatch(ListStream):
        def __iter__(self):
            for batch in super().__iter__():
                if self.position == 3:
                    os.kill(os.getpid(), signal.SIGTERM)
                yield batch

    interrupted = start(config, SignalAtThirdBatch(16))
    result = run(interrupted)
    assert result.stopped_by == signal.SIGTERM and result.step == 3
    assert result.checkpoint.name == "step_00000003.pt"

    resumed = start(config)
    resumed.load_state_dict(load_checkpoint(result.checkpoint))
    assert resumed.counters.step == 3 and resumed.stream.position == 3
    assert run(resumed).step == 6
    expected, actual = weights(uninterrupted), weights(resumed)
    for name in expected:
        assert torch.equal(actual[name], expected[name]), name
    for name, value in uninterrupted.ema.state_dict().items():
        assert torch.equal(resumed.ema.state_dict()[name], value), name
    steps = [r["step"] for r in read_metrics(config.output_dir / "metrics.jsonl")]
    assert steps == [1, 2, 3, 4, 5, 6]


class PoisonedStream(ListStream):
    """NaN images in the batches at the given 1-based positions."""

    def __init__(self, bad_positions, **kwargs):
        super().__init__(8, **kwargs)
        self.bad = set(bad_positions)

    def __iter__(self):
        for batch in super().__iter__():
            if self.position in self.bad:
                batch = batch._replace(images=batch.images * 0)
            yield batch


def nan_augment(images, class_ids=None):
    """Turns the all-zero (poisoned) batches into NaN."""
    out = noisy_augment(images)
    return out * float("nan") if not bool(images.any()) else out


def test_non_finite_steps_are_skipped_and_counted(tmp_path):
    state = start(make_config(tmp_path), PoisonedStream({2, 3}))
    with StopRequest() as stop:
        result = run_loop(state, iter(state.stream), nan_augment, lambda s: {}, stop)
    assert result.step == 6
    records = read_metrics(state.config.output_dir / "metrics.jsonl")
    assert [r["skipped_steps"] for r in records] == [0, 1, 2, 2, 2, 2]
    assert all(r["loss"] == r["loss"] for r in records if r["step"] not in (2, 3))


def test_repeated_non_finite_losses_stop_with_a_clear_message(tmp_path):
    state = start(make_config(tmp_path, run={"max_nonfinite": 2}), PoisonedStream({2, 3}))
    with StopRequest() as stop, pytest.raises(TrainingDiverged, match=r"step 3.*2 steps in a row"):
        run_loop(state, iter(state.stream), nan_augment, lambda s: {}, stop)


def test_resume_with_another_world_size_is_refused(tmp_path):
    config = make_config(tmp_path)
    state = start(config)
    run(state)
    payload = load_checkpoint(list_checkpoints(config.output_dir)[-1])
    payload["world_size"] = 2
    with pytest.raises(ValueError, match="written by 2 processes"):
        start(config).load_state_dict(payload)


def test_bf16_autocast_trains_on_cpu(tmp_path):
    state = start(make_config(tmp_path, run={"precision": "bf16"}))
    before = weights(state)
    assert run(state).step == 6
    records = read_metrics(state.config.output_dir / "metrics.jsonl")
    assert all(r["loss"] == r["loss"] and r["skipped_steps"] == 0 for r in records)
    assert not torch.equal(
        before["model.image_projection.weight"], weights(state)["model.image_projection.weight"]
    )


def test_fp16_needs_cuda(tmp_path):
    with pytest.raises(ValueError, match="fp16' needs a CUDA device"):
        start(make_config(tmp_path, run={"precision": "fp16", "device": "auto"}))


def test_probe_finds_parameters_the_objective_does_not_reach(towers):
    config, cpu = ObjectiveConfig(), torch.device("cpu")
    assert unused_parameters(UniCLObjective(towers, config), cpu) == []
    unused = unused_parameters(CrossEntropyObjective(towers, config, num_classes=3), cpu)
    assert set(unused) == {
        "model.token_embedding.weight",
        "model.text_projection.weight",
        "model.logit_scale",
    }
    assert all(p.grad is None for p in towers.parameters()) and towers.training


def test_evaluation_runs_at_its_interval_and_at_the_end(tmp_path):
    config = make_config(
        tmp_path, evaluation={"every_steps": 4, "zeroshot": [{"source": "held-out"}]}
    )
    state = start(config)
    result = run(state, evaluate=lambda s: {"held-out/zeroshot_top1": s.counters.step / 10})
    evals = [r for r in read_metrics(config.output_dir / "metrics.jsonl") if r["kind"] == "eval"]
    assert [(r["step"], r["held-out/zeroshot_top1"]) for r in evals] == [(4, 0.4), (6, 0.6)]
    assert result.evaluation == {"held-out/zeroshot_top1": 0.6}
