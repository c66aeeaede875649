"""The training loop: one optimiser step per global batch, with logging, evaluation,
checkpoints, signal handling and the handling of non-finite losses.

Each step: prepare the batch on the device (augmentation, tokens, labels), `forward_backward`
(accumulating over micro-batches), one agreement between processes on whether the step was finite
and whether to stop, then unscale, clip, step, schedule, clamp the logit scale and update the EMA
(or skip the update everywhere when the step was not finite somewhere). Every `logging.every_steps`
steps the mean loss (over steps and processes) goes to `metrics.jsonl` and the progress bar, and
the health monitor (`unicl.train.health`) judges the window: a collapse or divergence stops the
run after a checkpoint (`run.on_collapse: stop`). Every `checkpoint.every_steps` a checkpoint is
written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from unicl import process_group
from unicl.train.accumulation import forward_backward
from unicl.train.checkpoint import save_checkpoint
from unicl.train.health import HealthEvent, build_monitor
from unicl.train.launch import ProcessContext
from unicl.train.logger import MetricsSink, Progress
from unicl.train.optim import base_lr
from unicl.train.signals import StopRequest
from unicl.train.state import TrainingState

Evaluate = Callable[[TrainingState], dict[str, float]]


class TrainingDiverged(RuntimeError):
    """The loss was not finite for `run.max_nonfinite` steps in a row."""


@dataclass
class LoopResult:
    """How the loop ended: `stopped_by` is the signal number that stopped it early (None when it
    ran to `schedule.steps`); `checkpoint` the last one written; `last_record` the last metrics;
    `unhealthy` the health event that stopped it (after a checkpoint), if one did."""

    step: int
    stopped_by: int | None
    checkpoint: Path | None
    last_record: dict[str, Any]
    evaluation: dict[str, float]
    unhealthy: HealthEvent | None = None


class _Window:
    """Losses and timing since the last log line (losses stay on the device until then)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.steps = 0
        self.start = time.perf_counter()

    def flush(self, device: torch.device, group: process_group.Group) -> tuple[float, float, int]:
        """(mean loss over the window and over the ranks of `group`, seconds, steps); then
        reset."""
        total = torch.stack(self.losses).sum() if self.losses else torch.zeros((), device=device)
        summary = torch.stack(
            [
                total.float().to(device),
                torch.tensor(len(self.losses), device=device, dtype=torch.float32),
            ]
        )
        summary = process_group.sum_over_ranks(summary, group)
        loss = float(summary[0] / summary[1]) if float(summary[1]) else float("nan")
        seconds, steps = time.perf_counter() - self.start, self.steps
        self.reset()
        return loss, seconds, steps


def run_loop(
    state: TrainingState,
    batches: Iterator[Any],
    augment: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    evaluate: Evaluate,
    stop: StopRequest,
) -> LoopResult:
    """Train from `state.counters.step` to `schedule.steps`, or until a stop is requested (then a
    checkpoint is written and the loop returns early). Rank 0 writes everything."""
    config, context, counters = state.config, state.context, state.counters
    main = context.is_main
    sink = MetricsSink(
        config.output_dir, main, config.logging.tensorboard, resume_step=counters.step
    )
    progress = Progress(config.schedule.steps, counters.step, main and config.logging.progress)
    window = _Window()
    health = build_monitor(state)
    record: dict[str, Any] = {}
    evaluation: dict[str, float] = {}
    checkpoint, checkpoint_step = None, -1
    stopped_by = unhealthy = None
    try:
        while counters.step < config.schedule.steps:
            started = time.perf_counter()
            lr = base_lr(state.optimizer)
            batch = next(batches)
            health.waited(time.perf_counter() - started)
            inputs = state.objective.prepare(batch, augment, context.device)
            loss, finite = forward_backward(
                state.module,
                state.objective,
                inputs,
                config.data.accumulation_steps,
                state.precision.autocast,
                lambda value: state.precision.scaler.scale(value).backward(),
            )
            nonfinite, stopping = _agree_on_health(finite, stop, context)
            if nonfinite:
                _skip_step(state, progress)
            else:
                grad_norm = _optimizer_step(state)
                counters.nonfinite_in_a_row = 0
                window.losses.append(loss)
            counters.step += 1
            counters.samples += state.global_batch
            counters.elapsed_s += time.perf_counter() - started
            window.steps += 1
            progress.update(1)
            step = counters.step
            if step % config.logging.every_steps == 0 or step == config.schedule.steps:
                record = _train_record(state, window, lr, None if nonfinite else grad_norm)
                events = health.check(record)
                sink.write(record)
                progress.show(record)
                unhealthy = health.announce(events, sink, progress)
            every_eval = config.evaluation.every_steps
            if every_eval and step % every_eval == 0 and step < config.schedule.steps:
                evaluation = evaluate(state)
                _log_evaluation(sink, progress, step, evaluation)
            if step % config.checkpoint.every_steps == 0 or step == config.schedule.steps:
                checkpoint, checkpoint_step = _save(state), step
            if unhealthy is not None or stopping:
                stopped_by = None if unhealthy else stop.requested or -1
                if checkpoint_step != step:
                    checkpoint = _save(state)
                break
        if stopped_by is None and unhealthy is None and config.evaluation.enabled:
            evaluation = evaluate(state)
            _log_evaluation(sink, progress, counters.step, evaluation)
    finally:
        health.close()
        progress.close()
        sink.close()
    return LoopResult(counters.step, stopped_by, checkpoint, record, evaluation, unhealthy)


def _log_evaluation(
    sink: MetricsSink, progress: Progress, step: int, evaluation: dict[str, float]
) -> None:
    sink.write({"kind": "eval", "step": step, **evaluation})
    if evaluation:
        shown = ", ".join(f"{name} {value:.4f}" for name, value in evaluation.items())
        progress.write(f"step {step}: {shown}")


def _optimizer_step(state: TrainingState) -> torch.Tensor | None:
    """Unscale, clip to `optim.grad_clip`, step (the scaler skips steps with inf gradients),
    advance the schedule, clamp the logit scale, update the EMA. Returns the gradient norm."""
    scaler, optimizer = state.precision.scaler, state.optimizer
    if state.sharded is not None:
        state.sharded.average_replicated_gradients()
    scaler.unscale_(optimizer)
    grad_norm = None
    if state.config.optim.grad_clip is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, state.config.optim.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    state.scheduler.step()
    state.objective.after_step()
    if state.ema is not None:
        state.ema.update_parameters(state.objective.model)
    return grad_norm


def _skip_step(state: TrainingState, progress: Progress) -> None:
    counters, limit = state.counters, state.config.run.max_nonfinite
    state.optimizer.zero_grad(set_to_none=True)
    state.scheduler.step()
    counters.skipped_steps += 1
    counters.nonfinite_in_a_row += 1
    progress.write(
        f"step {counters.step + 1}: non-finite loss, update skipped "
        f"({counters.nonfinite_in_a_row} in a row, {counters.skipped_steps} in total)"
    )
    if counters.nonfinite_in_a_row >= limit:
        raise TrainingDiverged(
            f"training stopped at step {counters.step + 1}: the loss was not finite for "
            f"{counters.nonfinite_in_a_row} steps in a row (run.max_nonfinite={limit}). Lower "
            "optim.lr, raise schedule.warmup_steps, train in fp32 or bf16, or check the data; "
            "then continue from the last checkpoint with --resume latest"
        )


def _train_record(
    state: TrainingState, window: _Window, lr: float, grad_norm: torch.Tensor | None
) -> dict[str, Any]:
    counters = state.counters
    loss, seconds, steps = window.flush(state.context.device, state.context.group)
    return {
        "kind": "train",
        "step": counters.step,
        "samples": counters.samples,
        "loss": loss,
        "window_steps": steps,
        "lr": lr,
        "logit_scale": float(state.objective.model.logit_scale.detach().exp()),
        "samples_per_s": steps * state.global_batch / max(seconds, 1e-9),
        "grad_norm": _scalar(grad_norm) if grad_norm is not None else None,
        "skipped_steps": counters.skipped_steps,
        "time_s": counters.elapsed_s,
    }


def _scalar(value: torch.Tensor) -> float:
    """A float from a scalar tensor, or from a replicated `DTensor` (sharded training)."""
    return float(value.full_tensor() if hasattr(value, "full_tensor") else value)


def _save(state: TrainingState) -> Path | None:
    payload = state.state_dict()
    if not state.context.is_main:
        return None
    config = state.config
    return save_checkpoint(
        payload, config.output_dir, state.counters.step, config.checkpoint.keep_last
    )


def _agree_on_health(
    finite: torch.Tensor, stop: StopRequest, context: ProcessContext
) -> tuple[bool, bool]:
    """(whether the step was not finite on some process, whether some process received SIGINT or
    SIGTERM): the step's one agreement between processes, a single all-reduce and host sync, so
    that all processes skip the same updates and stop at the same step. A process stopped by
    another's signal records -1."""
    nonfinite, stopping = process_group.flags_on_any_rank(
        [~finite, stop.requested is not None], context.device, context.group
    )
    if stopping and stop.requested is None:
        stop.requested = -1
    return nonfinite, stopping
