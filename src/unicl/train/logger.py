"""The training logger: where the loop's records go (`metrics.jsonl`, one JSON object per line;
optional TensorBoard event files) and the progress bar. It computes nothing; the loop builds the
records. Only the main process writes; the others hold a silent sink."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from unicl.errors import UserInputError

METRICS_FILE = "metrics.jsonl"


class MetricsSink:
    """Appends records to `<output_dir>/metrics.jsonl` and mirrors numbers to TensorBoard.

    A training record: `{"kind": "train", "step", "samples", "loss", "window_steps", "lr",
    "logit_scale", "samples_per_s", "grad_norm", "skipped_steps", "time_s"}` (`loss` is the mean
    over the `window_steps` steps since the previous record: fewer than `logging.every_steps` in
    the first window after a resume that did not start on a logging step) plus what the health
    monitor adds (`image_spread`, `text_spread`, `data_wait_share` on CUDA, `health` while a
    condition is active); an evaluation record: `{"kind": "eval", "step", <metric>: value, ...}`;
    a health record when a condition starts: `{"kind": "health", "step", "condition", "since",
    "action", "message", "references"}` (`unicl.train.health.HealthEvent`). A resumed run first
    drops the records after the step it resumes from, so the file describes one run without
    repeats.
    """

    def __init__(self, output_dir: Path, enabled: bool, tensorboard: bool, resume_step: int = 0):
        self.enabled = enabled
        self.path = Path(output_dir) / METRICS_FILE
        self._writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(self.path) if r["step"] <= resume_step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserInputError(
                    "logging.tensorboard needs the tensorboard package: "
                    "pip install 'unicl[tensorboard]', or set logging.tensorboard: false"
                ) from None
            self._writer = SummaryWriter(str(Path(output_dir) / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")
        if self._writer is not None and record["kind"] in ("train", "eval"):
            prefix = record["kind"]
            for key, value in record.items():
                if key not in ("kind", "step") and isinstance(value, (int, float)):
                    self._writer.add_scalar(f"{prefix}/{key}", value, record["step"])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a `metrics.jsonl` file (empty if it does not exist)."""
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class Progress:
    """Progress over optimiser steps with samples/s, loss, lr, logit scale and the health
    conditions active (when any).

    On a terminal: a tqdm bar (tqdm adds the ETA). When stderr is not a terminal (a log file, a
    batch job): one plain line per logging window instead of a bar's carriage returns. Silent
    when disabled.
    """

    def __init__(
        self, total: int, initial: int, enabled: bool, interactive: bool | None = None
    ) -> None:
        interactive = sys.stderr.isatty() if interactive is None else interactive
        self.total, self.step, self._initial = total, initial, initial
        self._started = time.monotonic()
        self._lines = enabled and not interactive
        self._bar = tqdm(
            total=total,
            initial=initial,
            disable=not enabled or not interactive,
            unit="step",
            dynamic_ncols=True,
        )

    def update(self, steps: int) -> None:
        self.step += steps
        self._bar.update(steps)

    def show(self, record: dict[str, Any]) -> None:
        """Put a training record's numbers beside the bar, or print them as one line."""
        loss = record.get("loss")
        numbers = {
            "samples/s": f"{record['samples_per_s']:.0f}",
            "loss": "nan" if loss is None or math.isnan(loss) else f"{loss:.4f}",
            "lr": f"{record['lr']:.2e}",
            "scale": f"{record['logit_scale']:.1f}",
        }
        if record.get("health"):
            numbers["health"] = ",".join(record["health"])
        if self._lines:
            done = self.step - self._initial
            left = (time.monotonic() - self._started) / max(done, 1) * (self.total - self.step)
            shown = " ".join(f"{name} {value}" for name, value in numbers.items())
            print(
                f"step {self.step}/{self.total} ({self.step / max(self.total, 1):.0%}) {shown} "
                f"eta {_duration(left)}",
                file=sys.stderr,
                flush=True,
            )
        self._bar.set_postfix(numbers, refresh=False)

    def write(self, message: str) -> None:
        self._bar.write(message)

    def close(self) -> None:
        self._bar.close()


def _duration(seconds: float) -> str:
    """`1h02m`, `3m05s` or `42s`."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
