"""Joining the process group: `run.timeout_minutes` is the group's timeout, so a rank left
waiting in a collective fails instead of hanging."""

import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.conftest import free_port
from tests.train.conftest import join_two_process_group
from unicl.errors import UserInputError
from unicl.train.config import config_from_dict
from unicl.train.launch import close_process

pytestmark = pytest.mark.distributed


def _worker(rank, port, directory):
    join_two_process_group(rank, port, timeout_minutes=0.05)  # 3 seconds
    try:
        if rank == 0:
            started = time.monotonic()
            try:
                dist.all_reduce(torch.ones(1))
                outcome = "returned"
            except RuntimeError as error:
                outcome = f"raised after {time.monotonic() - started:.0f} s: {error}"
            (directory / "outcome.txt").write_text(outcome)
        else:
            time.sleep(8)  # never joins rank 0's all-reduce
    finally:
        close_process()


def test_a_rank_left_waiting_fails_after_the_configured_timeout(tmp_path):
    mp.spawn(_worker, args=(free_port(), tmp_path), nprocs=2, join=True)
    outcome = (tmp_path / "outcome.txt").read_text()
    assert outcome.startswith("raised after"), outcome
    assert int(outcome.split()[2]) < 7, outcome


def test_the_timeout_must_be_positive():
    with pytest.raises(UserInputError, match=r"run\.timeout_minutes"):
        config_from_dict({"data": {"sources": ["x"]}, "run": {"timeout_minutes": 0}})
