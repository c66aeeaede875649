"""Running one fault case against the real `unicl` command and judging what came of it.

A case prepares its inputs in a folder of its own, then runs `python -m unicl ARGV...` there (or
drives several such processes, sending signals). Every file of the folder is hashed before the
command and after it; the verdict, worst first:

- `data lost`: a file that existed before the case changed or vanished (except `may_change`);
- `hang`: a process ran past its timeout (its whole process group is then killed);
- `traceback`: a Python traceback on stderr;
- `wrong`: the case's own check failed (e.g. code named by a model file ran), an expected error was
  accepted (exit 0), a success was refused, or a failure was not one clear line;
- `clear error`: exit status not 0 and stderr's last line a `unicl[ COMMAND]: error: ...` line (the
  form of unicl's own errors and of argparse's usage errors);
- `correct`: exit 0 where success is right (and the check held).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
MEMORY_LIMIT = 4 << 30  # address space per case process: an absurd allocation fails, not the host
CLEAR_ERROR = re.compile(r"^unicl(?: [a-z][\w-]*)*: error: \S")
VERDICTS = ("correct", "clear error", "traceback", "hang", "data lost", "wrong")


@dataclass
class Outcome:
    """One finished process: its exit status (negative: killed by that signal) and output."""

    argv: list[str]
    status: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr

    @property
    def clear_error(self) -> bool:
        lines = self.stderr.rstrip("\n").splitlines()
        return self.status != 0 and bool(lines) and CLEAR_ERROR.match(lines[-1]) is not None


@dataclass
class Invocation:
    """What a case runs once its inputs exist: `argv` (after `unicl`), or `drive`, which runs
    processes itself through a `Runner` and returns their outcomes and a problem (or None).
    `check()` returns a problem found after the run (or None); `limits` are extra `prlimit`
    limits of the processes (e.g. `{"fsize": 2_000_000}`: a disk that takes no bigger file);
    `may_change` names files (relative to the folder) that the command is meant to update."""

    argv: list[str] | None = None
    drive: Callable[[Runner], tuple[list[Outcome], str | None]] | None = None
    check: Callable[[], str | None] | None = None
    timeout: float = 120.0
    limits: dict[str, int] = field(default_factory=dict)
    may_change: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    """One fault: `setup(folder)` writes its inputs under `folder` and returns the Invocation.
    `expect`: `error` (it must be refused), `ok` (it must succeed) or `either`."""

    category: str
    name: str
    setup: Callable[[Path], Invocation]
    expect: str = "error"


class Runner:
    """Starts `python -m unicl` processes in a new session each, in `cwd`, with bounded memory."""

    def __init__(self, cwd: Path, limits: dict[str, int]):
        self.cwd = cwd
        limits = {"as": MEMORY_LIMIT, **limits}
        self.prefix = ["prlimit", *(f"--{kind}={value}" for kind, value in limits.items()), "--"]
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1",
        }

    def start(self, argv: list[str]) -> subprocess.Popen:
        """Start `unicl ARGV` with stdout and stderr going to temporary files (never a pipe that
        could fill while nobody reads it)."""
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115 (closed by finish)
        process = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "unicl", *argv],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        process.argv, process.started, process.outputs = argv, time.monotonic(), (out, err)
        return process

    def finish(self, process: subprocess.Popen, timeout: float) -> Outcome:
        """Wait up to `timeout` s; past it, kill the process group and mark it timed out. Any
        process the command left behind (a data worker) is killed too."""
        timed_out = False
        try:
            process.wait(timeout=max(0.0, timeout - (time.monotonic() - process.started)))
        except subprocess.TimeoutExpired:
            timed_out = True
        _kill_group(process.pid)
        process.wait()
        return Outcome(
            argv=process.argv,
            status=process.returncode,
            stdout=_read(process.outputs[0]),
            stderr=_read(process.outputs[1]),
            seconds=round(time.monotonic() - process.started, 1),
            timed_out=timed_out,
        )

    def run(self, argv: list[str], timeout: float) -> Outcome:
        return self.finish(self.start(argv), timeout)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _read(handle) -> str:
    handle.seek(0)
    text = handle.read().decode("utf-8", errors="replace")
    handle.close()
    return text


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, timeout: float) -> bool:
    """Poll `condition` every 0.2 s until it holds (True), the process ends or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every regular file under `root` (symbolic links: their target,
    never followed; other special files: their kind)."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            if path.is_symlink():
                found[str(path.relative_to(root))] = f"link -> {os.readlink(path)}"
            elif path.is_file():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[str(path.relative_to(root))] = digest
            else:
                found[str(path.relative_to(root))] = "special"
    return found


def lost_files(before: dict[str, str], after: dict[str, str], may_change: tuple[str, ...]) -> list:
    """Files of `before` that vanished or changed, but for `may_change`."""
    return sorted(
        f"{path} ({'vanished' if path not in after else 'changed'})"
        for path, digest in before.items()
        if after.get(path) != digest and path not in may_change
    )


def judge(
    expect: str, outcomes: list[Outcome], lost: list[str], problem: str | None, driven: bool
) -> tuple[str, str]:
    """(verdict, detail) for a case's outcomes, worst verdict first (module docstring). A driven
    case judges exit statuses itself: without a problem it is correct."""
    if lost:
        return "data lost", ", ".join(lost[:5])
    hung = [o for o in outcomes if o.timed_out]
    if hung:
        return "hang", f"still running after {hung[0].seconds} s"
    broken = [o for o in outcomes if o.traceback]
    if broken:
        return "traceback", _last_line(broken[0].stderr)
    if problem:
        return "wrong", problem
    if driven:
        return "correct", ""
    last = outcomes[-1]
    if last.status == 0:
        if expect == "error":
            return "wrong", "accepted (exit 0) where an error was expected"
        return "correct", ""
    if not last.clear_error:
        return "wrong", f"exit {last.status} without a one-line error: {_last_line(last.stderr)!r}"
    if expect == "ok":
        return "wrong", f"refused where success was expected: {_last_line(last.stderr)}"
    return "clear error", _last_line(last.stderr)


def _last_line(text: str) -> str:
    lines = text.rstrip("\n").splitlines()
    return lines[-1][:300] if lines else ""


def run_case(case: Case, folder: Path) -> dict:
    """Set the case up in `folder` (which must be empty), run it and judge it: the record written
    to its result file."""
    invocation = case.setup(folder)
    before = snapshot(folder)
    runner = Runner(folder, invocation.limits)
    started = time.monotonic()
    if invocation.drive is not None:
        outcomes, problem = invocation.drive(runner)
    else:
        outcomes, problem = [runner.run(invocation.argv, invocation.timeout)], None
    if problem is None and invocation.check is not None:
        problem = invocation.check()
    lost = lost_files(before, snapshot(folder), invocation.may_change)
    driven = invocation.drive is not None
    verdict, detail = judge(case.expect, outcomes, lost, problem, driven)
    return {
        "category": case.category,
        "case": case.name,
        "expect": case.expect,
        "verdict": verdict,
        "detail": detail,
        "seconds": round(time.monotonic() - started, 1),
        "runs": [
            {
                "argv": outcome.argv,
                "status": outcome.status,
                "seconds": outcome.seconds,
                "timed_out": outcome.timed_out,
                "stderr_tail": outcome.stderr[-3000:],
                "stdout_tail": outcome.stdout[-1000:],
            }
            for outcome in outcomes
        ],
    }
