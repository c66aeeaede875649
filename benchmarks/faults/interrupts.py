"""Signals and kills: SIGINT and SIGTERM during training (a checkpoint, exit 128 + signal, a hint
that continues the run), kill -9 before the first checkpoint, after it and in the middle of
writing one, each followed by `--resume latest` to the end; Ctrl-C twice, Ctrl-C while the
command starts, SIGINT/SIGTERM during `eval` and `embed` (no partial output), a killed data
worker (one line).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from .fixtures import FASHION, Fixtures
from .harness import Case, Invocation, Outcome, Runner, wait_for

CATEGORY = "signals and kills"
STEPS = 40


def _train_argv(fx: Fixtures, run: Path, *extra: str) -> list[str]:
    return ["train", str(fx.train_config), "--set", f"run.output_dir={run}",
            "--set", f"schedule.steps={STEPS}", *extra]  # fmt: skip


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def _checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("step_*.pt"))


def _finished(run: Path, outcome: Outcome) -> str | None:
    """None when a run ended well: exit 0, a saved model, no partial checkpoint file left."""
    if outcome.status != 0:
        return f"the resumed run ended with exit {outcome.status}"
    if not (run / "model" / "model.safetensors").is_file():
        return "the resumed run saved no model"
    leftovers = list((run / "checkpoints").glob(".*.tmp"))
    return f"partial checkpoint files left: {leftovers[0].name}" if leftovers else None


def _stopped_then_resumed(fx: Fixtures, number: int):
    """Training stops cleanly on `number` (exit 128 + number, a checkpoint, the continue hint
    naming the same run), then `--resume latest` finishes it."""

    def setup(folder: Path) -> Invocation:
        run = folder / "run"

        def drive(runner: Runner):
            process = runner.start(_train_argv(fx, run))
            wait_for(lambda: _lines(run / "metrics.jsonl") >= 2, process, 240)
            process.send_signal(number)
            first = runner.finish(process, 120)
            outcomes = [first]
            if first.status != 128 + number:
                return outcomes, f"exit {first.status}, not {128 + number}, after the signal"
            if "continue with: unicl train" not in first.stderr or not _checkpoints(run):
                return outcomes, "no checkpoint or no continue hint after the signal"
            outcomes.append(runner.run(_train_argv(fx, run, "--resume", "latest"), 240))
            return outcomes, _finished(run, outcomes[-1])

        return Invocation(drive=drive)

    return Case(
        CATEGORY, f"{signal.Signals(number).name} during training, then resume", setup, "ok"
    )


def _killed_then_resumed(fx: Fixtures, name: str, every_steps: int, moments: list[float]):
    """kill -9 at `moments` (seconds after training logged its first step), each followed by a
    resume, then a last resume to the end."""

    def setup(folder: Path) -> Invocation:
        run = folder / "run"
        sets = ["--set", f"checkpoint.every_steps={every_steps}"]

        def drive(runner: Runner):
            outcomes = []
            for index, moment in enumerate(moments):
                resume = ["--resume", "latest"] if index else []
                process = runner.start(_train_argv(fx, run, *sets, *resume))
                logged = _lines(run / "metrics.jsonl")
                wait_for(lambda: _lines(run / "metrics.jsonl") > logged, process, 240)  # noqa: B023
                time.sleep(moment)
                process.send_signal(signal.SIGKILL)
                outcomes.append(runner.finish(process, 60))
            outcomes.append(runner.run(_train_argv(fx, run, *sets, "--resume", "latest"), 240))
            return outcomes, _finished(run, outcomes[-1])

        return Invocation(drive=drive)

    return Case(CATEGORY, name, setup, "ok")


def _twice(fx: Fixtures):
    def setup(folder: Path) -> Invocation:
        run = folder / "run"

        def drive(runner: Runner):
            process = runner.start(_train_argv(fx, run))
            wait_for(lambda: _lines(run / "metrics.jsonl") >= 2, process, 240)
            process.send_signal(signal.SIGINT)
            time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            outcome = runner.finish(process, 60)
            ok = outcome.status == 130 and "unicl: interrupted" in outcome.stderr
            return [outcome], None if ok else f"exit {outcome.status} after Ctrl-C twice"

        return Invocation(drive=drive)

    return Case(CATEGORY, "Ctrl-C twice during training", setup, "ok")


def _at_start(fx: Fixtures, seconds: float):
    """Ctrl-C while the command is still importing its modules."""

    def setup(folder: Path) -> Invocation:
        def drive(runner: Runner):
            process = runner.start(_train_argv(fx, folder / "run"))
            time.sleep(seconds)
            process.send_signal(signal.SIGINT)
            outcome = runner.finish(process, 60)
            ok = outcome.status in (130, -signal.SIGINT)
            return [outcome], None if ok else f"exit {outcome.status} after Ctrl-C"

        return Invocation(drive=drive)

    return Case(CATEGORY, f"Ctrl-C {seconds:g} s after starting train", setup, "ok")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _during(fx: Fixtures, command: str, number: int):
    """A signal while `eval` or `embed` works through the demo's 8,000 training images in batches
    of 8 (sent once the process has used 6 s of CPU, past its imports): the command ends (by the
    signal or with exit 128 + signal) and leaves no partial output."""

    def setup(folder: Path) -> Invocation:
        model = fx.copy_model(folder)
        data, small = str(FASHION), ["--batch-size", "8", "--threads", "1"]
        out = folder / ("result.json" if command == "eval" else "e.npy")
        argv = {
            "eval": ["eval", "zeroshot", str(model), "--data", data, "--out", str(out), *small],
            "embed": ["embed", str(model), "--data", data, "--out", str(out), *small],
        }[command]

        def drive(runner: Runner):
            process = runner.start(argv)
            wait_for(lambda: _cpu_seconds(process.pid) >= 6.0, process, 240)
            process.send_signal(number)
            outcome = runner.finish(process, 60)
            if outcome.status == 0:
                return [outcome], "the command ended before the signal; nothing was tested"
            if outcome.status not in (128 + number, -number):
                return [outcome], f"exit {outcome.status} after {signal.Signals(number).name}"
            left = [p.name for p in folder.iterdir() if p.is_file() and p.name != "model"]
            return [outcome], f"partial output left: {left}" if left else None

        return Invocation(drive=drive)

    name = f"{signal.Signals(number).name} during {command}"
    return Case(CATEGORY, name, setup, "ok")


def _worker_killed(fx: Fixtures):
    def setup(folder: Path) -> Invocation:
        run = folder / "run"

        def drive(runner: Runner):
            process = runner.start(_train_argv(fx, run, "--set", "data.num_workers=1"))
            workers: list[str] = []

            def started() -> bool:
                found = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True)  # fmt: skip
                workers[:] = found.stdout.split()
                return bool(workers) and _lines(run / "metrics.jsonl") >= 1

            wait_for(started, process, 240)
            for pid in workers:
                os.kill(int(pid), signal.SIGKILL)
            outcome = runner.finish(process, 120)
            return [outcome], None if outcome.clear_error else "no one-line error"

        return Invocation(drive=drive)

    return Case(CATEGORY, "data worker killed during training", setup, "ok")


def cases(fx: Fixtures) -> list[Case]:
    return [
        _stopped_then_resumed(fx, signal.SIGINT),
        _stopped_then_resumed(fx, signal.SIGTERM),
        _killed_then_resumed(fx, "kill -9 before the first checkpoint, then resume", 1000, [0.5]),
        _killed_then_resumed(fx, "kill -9 after a checkpoint, then resume", 5, [4.0]),
        _killed_then_resumed(
            fx,
            "kill -9 three times while checkpointing every step, then resume",
            1,
            [0.3, 1.1, 2.3],
        ),
        _twice(fx),
        _at_start(fx, 1.0),
        _at_start(fx, 3.0),
        _during(fx, "eval", signal.SIGINT),
        _during(fx, "embed", signal.SIGTERM),
        _worker_killed(fx),
    ]
