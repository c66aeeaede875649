"""Checkpoint files: atomic, pruned to the last K, resolvable as `latest`, RNG round trip."""

import random

import numpy as np
import pytest
import torch

from unicl.errors import UserInputError
from unicl.train.checkpoint import (
    capture_rng_state,
    list_checkpoints,
    load_checkpoint,
    resolve_resume,
    restore_rng_state,
    save_checkpoint,
)


def test_keeps_last_k_and_latest_is_newest(tmp_path):
    for step in (5, 10, 15, 20):
        save_checkpoint({"step": step, "w": torch.full((2,), float(step))}, tmp_path, step, 2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000015.pt", "step_00000020.pt"]
    latest = resolve_resume("latest", tmp_path)
    assert load_checkpoint(latest)["step"] == 20
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path):
    save_checkpoint({"step": 1}, tmp_path, 1, 3)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint({"bad": Unpicklable()}, tmp_path, 2, 3)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000001.pt"]
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_resume_errors_name_the_problem(tmp_path):
    with pytest.raises(UserInputError, match="no checkpoint in"):
        resolve_resume("latest", tmp_path)
    with pytest.raises(UserInputError, match="no such checkpoint file"):
        resolve_resume(str(tmp_path / "x.pt"), tmp_path)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(UserInputError, match="cannot read checkpoint"):
        load_checkpoint(corrupt)


def test_rng_state_round_trips_through_a_checkpoint(tmp_path):
    save_checkpoint({"rng": capture_rng_state()}, tmp_path, 1, 1)
    expected = (random.random(), np.random.rand(), torch.rand(3))
    restore_rng_state(load_checkpoint(resolve_resume("latest", tmp_path))["rng"])
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert expected[:2] == again[:2]
    assert torch.equal(expected[2], again[2])
