"""The run's health: the training loop tells when a run has gone wrong, while it runs.

Everything comes from what the loop already has, with no extra forward pass: each logging
window's training record (mean loss, gradient norm, logit scale, skipped steps), the spread of
the features across the batch, read by forward hooks on the model's two projections during the
training passes, and the seconds each step waited for its batch. The hooks accumulate on the
device; `check` moves them to the host once per window (after one all-reduce on several
processes), so every process sees the same numbers and takes the same decision.

A condition starts when its rule holds for `PATIENCE` windows in a row; it began at the first
of them, and ends at the first window where the rule fails. `chance` is the objective's
`chance_loss` (`ln B` for `unicl`: the loss of a uniform prediction over the batch), the spread
of unit features `f_i` is `1 - |mean_i f_i|^2` (0 when all are equal, near 1 when they point
every way).

- `collapse` (stops the run under `run.on_collapse: stop`): the loss within `LOSS_MARGIN * chance`
  of chance while the logged gradient norm is below `VANISHING_GRAD` times the largest logged so
  far; or the window's mean image or text spread below `MIN_SPREAD` after some pass had it above
  `10 * MIN_SPREAD` (features that start out alike, as deep towers' can, are not a collapse).
- `divergence` (stops likewise): a loss that spikes and stays up, i.e. the median loss of the
  last `PATIENCE` windows (more when they hold fewer than `MIN_LOSS_STEPS` steps) back more than
  halfway from its lowest such median toward chance (or above it), after that had been
  `10 * LOSS_MARGIN * chance` below chance; or at least half of a window's
  steps skipped for a non-finite loss (the loop itself stops after `run.max_nonfinite` in a row).
- `logit_scale_pinned` (a warning): the logit scale within 0.1% of either end of its clamp,
  `[1, 100]`.
- `data_wait` (a warning, CUDA only): the steps waited for their batches more than
  `DATA_WAIT_SHARE` of the window's time (on a CPU the data workers share the cores the step
  uses, so the share says nothing about the input pipeline alone).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from unicl import process_group
from unicl.models.model import MAX_LOGIT_SCALE
from unicl.train.logger import MetricsSink, Progress
from unicl.train.state import TrainingState

PATIENCE = 3
MIN_LOSS_STEPS = 30
"""The divergence rule's median spans at least this many steps: with a log line every step, the
loss of one small batch swings by more than the rule's margin from noise alone."""
LOSS_MARGIN = 0.01
VANISHING_GRAD = 0.01
MIN_SPREAD = 0.01
SCALE_MARGIN = 1e-3
DATA_WAIT_SHARE = 0.2
SCALE_CLAMP = (1.0, math.exp(MAX_LOGIT_SCALE))
STOPPING = ("collapse", "divergence")

ADVICE = {
    "collapse": "lower optim.lr, warm up longer (schedule.warmup_steps), train pretrained towers "
    "slower (optim.tower_lr_scale, optim.layer_decay) or lock one (model.lock_image, "
    "model.lock_text)",
    "divergence": "lower optim.lr, warm up longer (schedule.warmup_steps), clip gradients "
    "harder (optim.grad_clip), train pretrained towers slower (optim.tower_lr_scale) or train "
    "in fp32",
    "logit_scale_pinned": "at 100 the model cannot sharpen its predictions further, at 1 it has "
    "stopped telling pairs apart; if the loss stalls, lower optim.lr",
    "data_wait": "the data pipeline is the bottleneck: raise data.num_workers or read from "
    "faster storage",
}

CURVES = {
    "collapse": (("loss",), ("grad_norm", "image_spread", "text_spread")),
    "divergence": (("loss",), ("skipped_steps",)),
    "logit_scale_pinned": (("logit_scale",),),
    "data_wait": (("data_wait_share",),),
}
"""The record keys whose curves show each condition in the report, one panel per tuple."""


class RunUnhealthy(RuntimeError):
    """The health monitor stopped the run (a collapse or a divergence under `run.on_collapse:
    stop`); the message is one line: what happened, what to try, the checkpoint and report."""


@dataclass
class HealthEvent:
    """A condition that started: `since` is the step of the first window where its rule held,
    `step` the step it was found at; `stops` whether the run stops for it; `references` the
    values its curves are read against (chance loss, clamp, threshold)."""

    condition: str
    step: int
    since: int
    stops: bool
    message: str
    references: dict[str, float]

    def record(self) -> dict[str, Any]:
        """The `metrics.jsonl` record of the event."""
        return {
            "kind": "health",
            "step": self.step,
            "condition": self.condition,
            "since": self.since,
            "action": "stop" if self.stops else "warn",
            "message": self.message,
            "references": self.references,
        }

    def line(self) -> str:
        """One line for the console: what happened and what to try."""
        return f"{self.headline()}; {ADVICE[self.condition]}"

    def headline(self) -> str:
        """What happened, since when."""
        return f"{self.condition} since step {self.since}: {self.message}"


class FeatureSpread:
    """Forward hooks on `model.image_projection` and `model.text_projection` (those it has) that
    add up, on the device, the spread of each training pass's outputs: per side its sum, count
    and largest value since the last `take`. Passes in eval mode (evaluation), under no_grad
    (the cached pass of accumulation) or of fewer than two rows are left out."""

    SIDES = ("image", "text")

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.stats = torch.zeros(len(self.SIDES), 3, device=device)
        self._handles = []
        for row, side in enumerate(self.SIDES):
            projection = getattr(model, f"{side}_projection", None)
            if isinstance(projection, nn.Module):
                self._handles.append(projection.register_forward_hook(self._hook(row)))

    def _hook(self, row: int):
        def add(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            if not module.training or not torch.is_grad_enabled() or output.shape[0] < 2:
                return
            features = F.normalize(output.detach().float().flatten(1), dim=-1)
            spread = (1 - features.mean(dim=0).square().sum()).clamp(min=0)
            self.stats[row, 0] += spread
            self.stats[row, 1] += 1
            self.stats[row, 2] = torch.maximum(self.stats[row, 2], spread)

        return add

    def take(self) -> torch.Tensor:
        """The window's `[sides, (sum, count, largest)]` on the device, and start a new one."""
        taken, self.stats = self.stats, torch.zeros_like(self.stats)
        return taken

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


class _Streak:
    """How many windows in a row a rule held, and the step (of the record) of the first."""

    def __init__(self) -> None:
        self.windows, self.since, self.active = 0, 0, False

    def update(self, holds: bool, step: int) -> bool:
        """Count this window; True exactly when the condition starts here."""
        if not holds:
            self.windows, self.active = 0, False
            return False
        if self.windows == 0:
            self.since = step
        self.windows += 1
        starts = self.windows >= PATIENCE and not self.active
        self.active = self.active or starts
        return starts


class HealthMonitor:
    """Watches a run's logging windows for the conditions of this module.

    `model` carries the projections to hook; `chance` is the objective's chance loss for the
    global batch (None: no loss-based rule); `group` the processes whose spreads are pooled;
    `watch_data_wait` turns the data-wait rule on (CUDA); `on_collapse` is `run.on_collapse`;
    `skipped_steps` the run's count so far (nonzero after a resume)."""

    def __init__(
        self,
        model: nn.Module,
        chance: float | None,
        *,
        device: torch.device,
        group: process_group.Group = None,
        watch_data_wait: bool = False,
        on_collapse: Literal["stop", "warn"] = "stop",
        skipped_steps: int = 0,
    ) -> None:
        self.chance, self.group = chance, group
        self.watch_data_wait, self.on_collapse = watch_data_wait, on_collapse
        self.spread = FeatureSpread(model, device)
        self.streaks = {name: _Streak() for name in ADVICE}
        self.largest_grad = 0.0
        self.peak_spread = dict.fromkeys(FeatureSpread.SIDES, 0.0)
        self.recent_losses: list[tuple[float, int]] = []  # (window loss, its steps)
        self.lowest_median = math.inf
        self.skipped = skipped_steps
        self.waited_s = 0.0
        self.window_start = time.perf_counter()

    def waited(self, seconds: float) -> None:
        """Add the seconds a step waited for its batch."""
        self.waited_s += seconds

    def check(self, record: dict[str, Any]) -> list[HealthEvent]:
        """Judge the window that `record` (a training record) closes: add its `image_spread`,
        `text_spread` and, on CUDA, `data_wait_share` to it, and `health` (the conditions active
        now) when there are any; return the conditions that start at this window. One host sync
        (and one all-reduce on several processes)."""
        stats = process_group.sum_over_ranks(self.spread.take(), self.group).tolist()
        ranks = process_group.world_size(self.group)
        for side, (total, count, largest) in zip(FeatureSpread.SIDES, stats, strict=True):
            if count:
                record[f"{side}_spread"] = total / count
                self.peak_spread[side] = max(self.peak_spread[side], largest / ranks)
        now = time.perf_counter()
        if self.watch_data_wait:
            record["data_wait_share"] = self.waited_s / max(now - self.window_start, 1e-9)
        self.waited_s, self.window_start = 0.0, now
        findings = {
            "collapse": self._collapse(record),
            "divergence": self._divergence(record),
            "logit_scale_pinned": self._pinned(record),
            "data_wait": self._data_wait(record),
        }
        step = record["step"]
        events = []
        for name, finding in findings.items():
            streak = self.streaks[name]
            if streak.update(finding is not None, step):
                events.append(self._event(name, finding, step, streak.since))
        active = [name for name, streak in self.streaks.items() if streak.active]
        if active:
            record["health"] = active
        return events

    def announce(
        self, events: list[HealthEvent], sink: MetricsSink, progress: Progress
    ) -> HealthEvent | None:
        """Write each event to `metrics.jsonl` and the console; the first that stops the run."""
        for event in events:
            sink.write(event.record())
            shown = f"{event.headline()}; stopping" if event.stops else event.line()
            progress.write(f"step {event.step}: health: {shown}")
        return next((event for event in events if event.stops), None)

    def close(self) -> None:
        """Remove the hooks."""
        self.spread.close()

    def _event(
        self, name: str, finding: tuple[str, dict[str, float]], step: int, since: int
    ) -> HealthEvent:
        message, references = finding
        stops = name in STOPPING and self.on_collapse == "stop"
        return HealthEvent(name, step, since, stops, message, references)

    def _collapse(self, record: dict[str, Any]) -> tuple[str, dict[str, float]] | None:
        loss, grad = record.get("loss"), record.get("grad_norm")
        if grad is not None and math.isfinite(grad):
            self.largest_grad = max(self.largest_grad, grad)
        if self.chance is not None and grad is not None and _finite(loss):
            at_chance = abs(loss - self.chance) <= LOSS_MARGIN * self.chance
            if at_chance and grad <= VANISHING_GRAD * self.largest_grad:
                return (
                    f"the loss {loss:.4f} is that of a uniform guess ({self.chance:.4f}) and the "
                    f"gradient norm {grad:.2g} has vanished (it reached {self.largest_grad:.3g})",
                    {"loss": self.chance},
                )
        for side in FeatureSpread.SIDES:
            spread = record.get(f"{side}_spread")
            if spread is None or self.peak_spread[side] < 10 * MIN_SPREAD:
                continue
            if spread < MIN_SPREAD:
                return (
                    f"the {side} features all point the same way (spread {spread:.2g} across "
                    f"the batch, down from {self.peak_spread[side]:.2g})",
                    {f"{side}_spread": MIN_SPREAD},
                )
        return None

    def _divergence(self, record: dict[str, Any]) -> tuple[str, dict[str, float]] | None:
        skipped = record["skipped_steps"] - self.skipped
        self.skipped = record["skipped_steps"]
        if skipped * 2 >= record["window_steps"]:
            return (
                f"{skipped} of the last {record['window_steps']} steps had a non-finite loss",
                {},
            )
        loss = record.get("loss")
        if self.chance is None or not _finite(loss):
            return None
        recent = self.recent_losses = [*self.recent_losses, (loss, record["window_steps"])]
        while len(recent) > PATIENCE and sum(steps for _, steps in recent[1:]) >= MIN_LOSS_STEPS:
            recent.pop(0)
        if len(recent) < PATIENCE or sum(steps for _, steps in recent) < MIN_LOSS_STEPS:
            return None
        typical = statistics.median(window_loss for window_loss, _ in recent)
        lowest = self.lowest_median = min(self.lowest_median, typical)
        learned = lowest <= (1 - 10 * LOSS_MARGIN) * self.chance
        if learned and typical - lowest > 0.5 * (self.chance - lowest):
            return (
                f"the loss rose back to {typical:.4f} (median of the last {len(recent)} windows) "
                f"from {lowest:.4f}, more than halfway to that of a uniform guess "
                f"({self.chance:.4f})",
                {"loss": self.chance},
            )
        return None

    def _pinned(self, record: dict[str, Any]) -> tuple[str, dict[str, float]] | None:
        scale = record.get("logit_scale")
        if not _finite(scale):
            return None
        low, high = SCALE_CLAMP
        for end, near in (
            (low, scale <= low * (1 + SCALE_MARGIN)),
            (high, scale >= high * (1 - SCALE_MARGIN)),
        ):
            if near:
                return (
                    f"the logit scale {scale:.4g} is pinned at the {'upper' if end == high else 'lower'} end of its clamp [{low:g}, {high:g}]",
                    {"logit_scale": end},
                )
        return None

    def _data_wait(self, record: dict[str, Any]) -> tuple[str, dict[str, float]] | None:
        share = record.get("data_wait_share")
        if share is None or share <= DATA_WAIT_SHARE:
            return None
        return (
            f"the steps waited for data {share:.0%} of the time",
            {"data_wait_share": DATA_WAIT_SHARE},
        )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def build_monitor(state: TrainingState) -> HealthMonitor:
    """The monitor of a run's `TrainingState`."""
    config, context = state.config, state.context
    return HealthMonitor(
        state.objective.model,
        state.objective.chance_loss(state.global_batch),
        device=context.device,
        group=context.group,
        watch_data_wait=context.device.type == "cuda",
        on_collapse=config.run.on_collapse,
        skipped_steps=state.counters.skipped_steps,
    )
