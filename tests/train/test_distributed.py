"""Two CPU processes (gloo, env-var initialisation as torchrun does it) train exactly like one
process on the same global batch: same loss curve, same final weights."""

import copy
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.conftest import free_port
from tests.train.conftest import ListStream, TinyTowers, join_two_process_group
from tests.train.test_loop import make_config
from unicl.errors import UserInputError
from unicl.train.launch import close_process, init_process
from unicl.train.logger import read_metrics
from unicl.train.loop import run_loop
from unicl.train.signals import StopRequest
from unicl.train.state import build_state, refuse_with_fsdp

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
    payload = state.state_dict()  # every rank: gathered when sharded
    if context.is_main:
        torch.save(payload["objective"], directory / "weights.pt")
    if state.sharded is not None:
        _check_sharded_round_trip(state, payload, config, context, directory)


def _check_sharded_round_trip(state, payload, config, context, directory):
    """A sharded run's checkpoint (full tensors, written by rank 0) resumes a fresh sharded state
    exactly, and the model it evaluates and saves holds the gathered weights."""
    model = state.model
    if context.is_main:
        torch.save(payload, directory / "payload.pt")
    dist.barrier()
    payload = torch.load(directory / "payload.pt", weights_only=False)
    for name, value in model.state_dict().items():
        assert torch.equal(value, payload["objective"][f"model.{name}"]), name
    stream = ListStream(GLOBAL_BATCH, context.rank, context.world_size)
    fresh = build_state(config, context, TinyTowers(dropout=0.0), stream, num_classes=3)
    fresh.load_state_dict(copy.deepcopy(payload))  # loading may turn its tensors into shards
    again = fresh.state_dict()
    if not context.is_main:
        return
    for name, value in payload["objective"].items():
        assert torch.equal(again["objective"][name], value), name
    groups = [again["optimizer"]["param_groups"], payload["optimizer"]["param_groups"]]
    plain = [
        [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in gs]
        for gs in groups
    ]
    assert plain[0] == plain[1]
    for name, moments in payload["optimizer"]["state"].items():
        for key, value in moments.items():
            assert torch.equal(again["optimizer"]["state"][name][key], value), (name, key)


def _worker(rank, port, config, directory):
    context = join_two_process_group(rank, port)
    try:
        _train(config, context, directory)
    finally:
        close_process()


@pytest.mark.parametrize(
    ("objective", "sharding"),
    [
        ("unicl", "ddp"),
        ("unicl", "fsdp"),
        ("unicl-sigmoid", "ddp"),
        ("multitask", "ddp"),  # rank 0 holds only image-label samples, rank 1 only image-text ones
        pytest.param("clip", "ddp", marks=pytest.mark.slow),
        pytest.param("supcon", "ddp", marks=pytest.mark.slow),
        pytest.param("ce", "ddp", marks=pytest.mark.slow),
        pytest.param("ce", "fsdp", marks=pytest.mark.slow),
    ],
)
def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path, objective, sharding):
    """DDP, and FSDP2 (parameters, gradients and optimiser state sharded), with accumulation."""
    no_ema = {"ema_decay": None} if sharding == "fsdp" else {}
    single = make_config(
        tmp_path / "one",
        data={"batch_size": GLOBAL_BATCH},
        objective={"name": objective},
        optim=no_ema,
    )
    _train(single, init_process("cpu"), tmp_path)
    os.replace(tmp_path / "weights.pt", tmp_path / "one.pt")

    double = make_config(
        tmp_path / "two",
        data={"batch_size": GLOBAL_BATCH // 4, "accumulation_steps": 2},
        objective={"name": objective},
        optim=no_ema,
        run={"sharding": sharding},
    )
    mp.spawn(_worker, args=(free_port(), double, tmp_path), nprocs=2, join=True)

    one = read_metrics(single.output_dir / "metrics.jsonl")
    two = read_metrics(double.output_dir / "metrics.jsonl")
    assert [r["samples"] for r in two] == [r["samples"] for r in one]
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], rel=1e-5)
    expected, actual = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "weights.pt")
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize(
    ("sections", "key"),
    [
        ({"optim": {"ema_decay": 0.9}}, "optim.ema_decay"),
        ({"optim": {"ema_decay": None}, "run": {"compile": True}}, "run.compile"),
    ],
)
def test_sharded_training_refuses_what_it_does_not_support_yet(tmp_path, sections, key):
    run = {"sharding": "fsdp", **sections.get("run", {})}
    config = make_config(tmp_path, **{**sections, "run": run})
    with pytest.raises(UserInputError, match=rf"{key} is not supported with run.sharding: fsdp"):
        refuse_with_fsdp(config)
