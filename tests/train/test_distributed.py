"""Two CPU processes (gloo, env-var initialisation as torchrun does it) train exactly like one
process on the same global batch: same loss curve, same final weights."""

import os

import pytest
import torch
import torch.multiprocessing as mp

from tests.conftest import free_port
from tests.train.conftest import ListStream, TinyTowers, join_two_process_group
from tests.train.test_loop import make_config
from unicl.train.launch import close_process, init_process
from unicl.train.logger import read_metrics
from unicl.train.loop import run_loop
from unicl.train.signals import StopRequest
from unicl.train.state import build_state

pytestmark = pytest.mark.distributed

GLOBAL_BATCH = 16


def _train(config, context, directory):
    torch.manual_seed(0)
    model = TinyTowers(dropout=0.0)
    stream = ListStream(GLOBAL_BATCH, context.rank, context.world_size)
    state = build_state(config, context, model, stream, num_classes=3)
    with StopRequest() as stop:
        run_loop(
            state, iter(stream), lambda images, class_ids: images.float() / 255, lambda s: {}, stop
        )
    if context.is_main:
        torch.save(state.objective.state_dict(), directory / "weights.pt")


def _worker(rank, port, config, directory):
    context = join_two_process_group(rank, port)
    try:
        _train(config, context, directory)
    finally:
        close_process()


@pytest.mark.parametrize(
    "objective",
    [
        "unicl",
        "multitask",  # rank 0 holds only image-label samples, rank 1 only image-text ones
        pytest.param("clip", marks=pytest.mark.slow),
        pytest.param("supcon", marks=pytest.mark.slow),
        pytest.param("ce", marks=pytest.mark.slow),
    ],
)
def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path, objective):
    single = make_config(
        tmp_path / "one", data={"batch_size": GLOBAL_BATCH}, objective={"name": objective}
    )
    _train(single, init_process("cpu"), tmp_path)
    os.replace(tmp_path / "weights.pt", tmp_path / "one.pt")

    double = make_config(
        tmp_path / "two",
        data={"batch_size": GLOBAL_BATCH // 4, "accumulation_steps": 2},
        objective={"name": objective},
    )
    mp.spawn(_worker, args=(free_port(), double, tmp_path), nprocs=2, join=True)

    one = read_metrics(single.output_dir / "metrics.jsonl")
    two = read_metrics(double.output_dir / "metrics.jsonl")
    assert [r["samples"] for r in two] == [r["samples"] for r in one]
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], rel=1e-5)
    expected, actual = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "weights.pt")
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)
