"""How many collectives a training step makes beyond DDP's own gradient all-reduce, counted by
wrapping `torch.distributed`'s functions in a 2-process gloo run of the real loop, so that the
count cannot creep back up unnoticed.

Per step: one all-reduce (the loop's agreement on finiteness and stopping) and, per micro-step's
UniCL loss, two all-gathers (labels with every rank's row count; image and text features together)
and one reduce-scatter (the gather's backward)."""

import collections
import json

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.conftest import free_port
from tests.train.conftest import ListStream, TinyTowers, join_two_process_group
from tests.train.test_loop import make_config
from unicl.train.launch import close_process
from unicl.train.loop import run_loop
from unicl.train.signals import StopRequest
from unicl.train.state import build_state

pytestmark = pytest.mark.distributed

COLLECTIVES = (
    "all_reduce", "all_gather", "all_gather_into_tensor", "all_gather_object", "reduce_scatter",
    "reduce_scatter_tensor", "broadcast", "broadcast_object_list", "barrier", "reduce", "gather",
    "scatter", "all_to_all", "all_to_all_single",
)  # fmt: skip
STEPS = 5


def _count_calls(calls: list[str]) -> None:
    """Record the name of every call of a `torch.distributed` collective (unicl calls them as
    `torch.distributed.<name>`; DDP's reducer talks to the process group directly)."""
    for name in COLLECTIVES:
        original = getattr(dist, name, None)
        if original is None:
            continue

        def counted(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        setattr(dist, name, counted)


def _worker(rank, port, config, directory):
    context = join_two_process_group(rank, port)
    calls: list[str] = []
    per_step: list[dict[str, int]] = []
    try:
        torch.manual_seed(0)
        stream = ListStream(16, context.rank, context.world_size)
        state = build_state(config, context, TinyTowers(dropout=0.0), stream, num_classes=3)
        _count_calls(calls)

        def batches():
            for batch in stream:
                per_step.append(collections.Counter(calls))
                calls.clear()
                yield batch

        with StopRequest() as stop:
            run_loop(state, batches(), lambda images, ids: images.float() / 255, lambda s: {}, stop)
        (directory / f"rank{rank}.json").write_text(json.dumps(per_step[1:]))
    finally:
        close_process()


@pytest.mark.parametrize("accumulation_steps", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_a_step_makes_one_agreement_and_two_gathers_per_loss(tmp_path, accumulation_steps):
    config = make_config(
        tmp_path,
        data={"batch_size": 8 // accumulation_steps, "accumulation_steps": accumulation_steps},
        schedule={"steps": STEPS, "warmup_steps": 1},
        logging={"every_steps": 1000},
        checkpoint={"every_steps": 1000},
    )
    mp.spawn(_worker, args=(free_port(), config, tmp_path), nprocs=2, join=True)
    k = accumulation_steps
    expected = {"all_reduce": 1, "all_gather": 2 * k, "reduce_scatter": k}
    for rank in range(2):
        per_step = json.loads((tmp_path / f"rank{rank}.json").read_text())
        # the windows between batch fetches of steps 1..STEPS-1; the first step also learns the
        # batch size (the probe step before it had 2 rows), the last one logs and saves
        assert len(per_step) == STEPS - 1
        assert per_step[0] == {**expected, "all_gather": 2 * k + 1}
        assert per_step[1:] == [expected] * (STEPS - 2)
