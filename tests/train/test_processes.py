"""`unicl train` as users launch it: a signal mid-run, then `--resume latest`; torchrun with 2
CPU processes."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from unicl.train.checkpoint import list_checkpoints

pytestmark = pytest.mark.slow

SMALL = [
    "--set", "data.batch_size=16", "--set", "data.num_workers=0", "--set", "logging.every_steps=1",
    "--set", "logging.progress=false", "--set", "evaluation.zeroshot=[]",
    "--set", "schedule.warmup_steps=1",
]  # fmt: skip


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_sigint_saves_a_checkpoint_exits_cleanly_and_resume_finishes(tmp_path):
    command = [sys.executable, "-m", "unicl", "train", "configs/demo.yaml", *SMALL,
               "--set", f"run.output_dir={tmp_path}", "--set", "schedule.steps=1000"]  # fmt: skip
    process = subprocess.Popen(command, env=_env(), stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "stopped by SIGINT" in err and "--resume latest" in err
    (checkpoint,) = list_checkpoints(tmp_path)
    stopped_at = int(checkpoint.stem.split("_")[1])
    assert stopped_at < 1000
    resumed = subprocess.run(
        [*command[:-2], "--set", f"schedule.steps={stopped_at + 2}", "--resume", "latest"],
        env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"step_{stopped_at + 2:08d}.pt" in [p.name for p in list_checkpoints(tmp_path)]
    assert (tmp_path / "report.md").exists()


@pytest.mark.distributed
@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="torchrun not installed")  # fmt: skip
def test_torchrun_two_cpu_processes(tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    result = subprocess.run(
        [torchrun, "--nproc_per_node=2", "--standalone", "-m", "unicl", "train",
         "configs/demo.yaml", *SMALL, "--set", f"run.output_dir={tmp_path}",
         "--set", "schedule.steps=3"],
        env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "report:" in result.stdout and result.stdout.count("report:") == 1
    assert "| processes | 2 |" in (tmp_path / "report.md").read_text()
