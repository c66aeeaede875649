"""Commands given missing, wrong or hostile arguments: one line, and nothing written where it
should not be."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.reliability.conftest import run_unicl, snapshot


def test_no_command_lists_them_and_says_so_in_one_line():
    outcome = run_unicl()
    assert outcome.status == 2
    assert "train" in outcome.stderr and "eval" in outcome.stderr  # the help
    assert outcome.stderr.splitlines()[-1] == (
        "unicl: error: name a command, e.g. unicl train CONFIG.yaml"
    )


def test_ctrl_c_while_the_command_is_still_loading_is_one_line(tmp_path):
    """SIGINT half a second after the start lands while PyTorch is being imported."""
    command = [sys.executable, "-m", "unicl", "train", "configs/demo.yaml",
               "--set", f"run.output_dir={tmp_path / 'run'}", "--set", "schedule.steps=2",
               "--set", "schedule.warmup_steps=1", "--set", "evaluation.zeroshot=[]"]  # fmt: skip
    process = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert err.splitlines()[-1] in ("unicl: interrupted", "unicl: stopped by SIGINT at step 0")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "inspect", "{labelled}", "--limit", "-1"], "--limit is -1; it must be at least 1"),
        (["tokenizer", "train", "{texts}", "--vocab-size", "1000000000000", "--out", "{tmp}/t"],
         "vocab size 1000000000000 is too large: at most 16777216"),
        (["eval", "zeroshot", "{model}", "--data", "{labelled}", "--threads", "100000000000",
          "--out", "{tmp}/r.json"], "--threads is 100000000000; it must be in [1, 1024]"),
        (["predict", "{model}", "{image}", "--labels-file", "{latin1}"],
         "latin1.txt is not UTF-8 text (invalid continuation byte at byte 3)"),
        (["eval", "zeroshot", "{model}", "--data", "{labelled}", "--templates", "{latin1}",
          "--out", "{tmp}/r.json"], "latin1.txt is not UTF-8 text"),
        (["train", "configs/demo.yaml", "--set", "run.output_dir={tmp}/run", "--resume",
          "{texts}"], "it is damaged or was not written by unicl train ("),
        (["train", "configs/demo.yaml", "--set", "run.output_dir={tmp}/run", "--resume",
          "{tensor}"], "holds a Tensor, not a checkpoint of unicl train"),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_line(model_dir, labelled, tmp_path, argv, message):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\ncr\xe8me\n".encode("latin-1"))
    (tmp_path / "texts.txt").write_text("a photo of a cat\na photo of a dog\n" * 20)
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    places = {
        "model": model_dir, "labelled": labelled, "tmp": tmp_path,
        "image": next(labelled.rglob("*.png")), "latin1": tmp_path / "latin1.txt",
        "texts": tmp_path / "texts.txt", "tensor": tmp_path / "tensor.pt",
    }  # fmt: skip
    before = snapshot(tmp_path, model_dir)
    outcome = run_unicl(*(word.format(**places) for word in argv))
    assert outcome.status == 2
    assert message in outcome.error_line
    assert snapshot(tmp_path, model_dir) == before


@pytest.mark.parametrize("prefix", ["../escaped", "sub/shard", ".hidden", "100%", ""])
def test_a_shard_prefix_never_writes_outside_the_output_folder(labelled, tmp_path, prefix):
    out = tmp_path / "shards"
    outcome = run_unicl("data", "shard", labelled, "--out", out, "--prefix", prefix)
    assert outcome.status == 2
    assert "must be a plain file name" in outcome.error_line
    assert os.listdir(tmp_path) == []


def test_prepare_refuses_a_folder_that_holds_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    outcome = run_unicl(
        "data", "prepare", "fashion-mnist", "--from", "data/demo/fashion-mnist", "--out", out
    )
    assert outcome.status == 2
    assert "is not an empty folder" in outcome.error_line
    assert os.listdir(out) == ["notes.txt"]
