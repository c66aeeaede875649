"""The run directory: a new run never reuses a folder that holds anything, a run killed before
its first checkpoint can be resumed, and a resume refuses a config that makes it another run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.reliability.conftest import run_unicl, snapshot

QUICK = [
    "--set", "data.batch_size=16", "--set", "data.num_workers=0", "--set", "schedule.warmup_steps=1",
    "--set", "evaluation.zeroshot=[]", "--set", "checkpoint.every_steps=1000",
]  # fmt: skip


def _train(run, *extra):
    return run_unicl("train", "configs/demo.yaml", *QUICK, "--set", f"run.output_dir={run}", *extra)


def test_a_folder_holding_other_files_or_a_file_is_refused(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "report.md").write_text("my own notes\n")
    before = snapshot(folder)
    refused = _train(folder, "--set", "schedule.steps=2")
    assert refused.status == 2 and "holds other files (report.md)" in refused.error_line
    assert snapshot(folder) == before

    (tmp_path / "a-file").write_text("x")
    refused = _train(tmp_path / "a-file", "--set", "schedule.steps=2")
    assert refused.status == 2 and "is a file" in refused.error_line


def test_killed_before_the_first_checkpoint_then_resumed_from_step_0(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "unicl", "train", "configs/demo.yaml", *QUICK,
               "--set", f"run.output_dir={run}", "--set", "schedule.steps=1000"]  # fmt: skip
    process = subprocess.Popen(
        command, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert not (run / "checkpoints").exists() or not any((run / "checkpoints").iterdir())

    again = _train(run, "--set", "schedule.steps=1000")
    assert again.status == 2 and "continue it with --resume latest" in again.error_line
    resumed = _train(run, "--set", "schedule.steps=3", "--resume", "latest")
    assert resumed.status == 0, resumed.stderr
    assert "has no checkpoint yet; starting its run again from step 0" in resumed.stderr
    assert (run / "model" / "model.safetensors").is_file()


def test_resuming_with_a_different_objective_or_model_is_refused(tmp_path):
    run = tmp_path / "run"
    first = _train(run, "--set", "schedule.steps=2", "--set", "checkpoint.every_steps=1")
    assert first.status == 0, first.stderr
    before = snapshot(run)
    for override, key in (
        ("objective.name=supcon", "objective.name='supcon'"),
        ("model.overrides={embed_dim: 64}", "model.overrides.embed_dim=64"),
    ):
        refused = _train(run, "--set", "schedule.steps=4", "--set", override, "--resume", "latest")
        assert refused.status == 2, refused.stderr
        assert f"with {key}: the run was started with" in refused.error_line
    assert "the run was started with model.overrides.embed_dim unset" in refused.error_line
    assert snapshot(run) == before


def test_the_continue_hint_keeps_the_overrides(tmp_path):
    run = tmp_path / "run with space"
    command = [sys.executable, "-m", "unicl", "train", "configs/demo.yaml", *QUICK,
               "--set", f"run.output_dir={run}", "--set", "schedule.steps=1000"]  # fmt: skip
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    hint = next(line for line in err.splitlines() if line.startswith("continue with: "))
    assert f"--set 'run.output_dir={run}'" in hint and hint.endswith("--resume latest")


def test_a_damaged_newest_checkpoint_falls_back_and_partial_files_are_removed(tmp_path):
    run = tmp_path / "run"
    first = _train(run, "--set", "schedule.steps=4", "--set", "checkpoint.every_steps=2")
    assert first.status == 0, first.stderr
    folder = run / "checkpoints"
    older, newest = sorted(folder.glob("step_*.pt"))
    newest.write_bytes(newest.read_bytes()[:1000])  # damaged after it was written
    (folder / ".step_00000006.pt.abc123.tmp").write_bytes(b"\0" * 4096)  # a killed write
    resumed = _train(run, "--set", "schedule.steps=6", "--resume", "latest")
    assert resumed.status == 0, resumed.stderr
    assert f"skipping unreadable checkpoint {newest.name}" in resumed.stderr
    assert "removed 1 partly written checkpoint files" in resumed.stderr
    assert not list(folder.glob(".*.tmp"))
    assert (folder / "step_00000006.pt").is_file() and older.name == "step_00000002.pt"
    assert oct((run / "model" / "model.safetensors").stat().st_mode & 0o777) == "0o644"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in records if r["kind"] == "train"][-1]
    assert (last["step"], last["window_steps"]) == (6, 4)  # resumed at step 2: a 4-step window


def test_a_killed_data_worker_is_one_line_and_an_unwritable_folder_is_named(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "unicl", "train", "configs/demo.yaml", *QUICK,
               "--set", "data.num_workers=1", "--set", f"run.output_dir={run}",
               "--set", "schedule.steps=1000"]  # fmt: skip
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    deadline = time.monotonic() + 120
    workers: list[str] = []
    while not workers and time.monotonic() < deadline:  # the loader starts its worker per epoch
        time.sleep(0.2)
        found = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True)
        workers = found.stdout.split()
    assert workers, "the data worker never started"
    for pid in workers:
        os.kill(int(pid), signal.SIGKILL)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    last = err.splitlines()[-1]
    assert last.startswith("unicl: error: a data worker process died") and "--resume" in last

    refused = _train("/proc/unicl-run", "--set", "schedule.steps=2")
    assert refused.status == 2
    assert "cannot write /proc/unicl-run/config.yaml" in refused.error_line


def test_resuming_through_another_spelling_of_the_folder_is_the_same_run(tmp_path):
    run = tmp_path / "run"
    first = _train(run, "--set", "schedule.steps=2", "--set", "checkpoint.every_steps=1")
    assert first.status == 0, first.stderr
    other_spelling = f"{tmp_path}/./run/"  # a string: pathlib would normalise it
    resumed = _train(other_spelling, "--set", "schedule.steps=3", "--resume", "latest")
    assert resumed.status == 0, resumed.stderr
