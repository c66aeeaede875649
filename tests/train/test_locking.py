"""Locking towers (`model.lock_image`, `model.lock_text`): locked parameters get no gradient, stay
out of the optimiser and never change, their BatchNorm statistics stay put, DDP is not misled."""

import contextlib

import pytest
import torch
import torch.multiprocessing as mp

from tests.conftest import free_port
from tests.train.conftest import ListStream, join_two_process_group
from tests.train.test_loop import make_config
from unicl.errors import UserInputError
from unicl.models import create_model, load
from unicl.train import load_training_config, train
from unicl.train.accumulation import forward_backward
from unicl.train.launch import ProcessContext, close_process
from unicl.train.loop import run_loop
from unicl.train.signals import StopRequest
from unicl.train.state import build_state, lock_towers, unused_parameters
from unicl.train.trainer import build_run

CPU = ProcessContext(device=torch.device("cpu"))
# unicl-tiny's image tower has 5 groups (stem, stages.0.0, ..., stages.3.0): unlocking 2 leaves
# the last two stages trainable. The whole text tower and its projection are locked.
LOCKS = ["model.lock_image={unlocked_groups: 2}", "model.lock_text={projection: true}"]
TRAINABLE_PREFIXES = (
    "image_encoder.stages.2.",
    "image_encoder.stages.3.",
    "image_projection.",
    "logit_scale",
)


def is_locked(name: str) -> bool:
    """Whether the parameter or buffer `name` of unicl-tiny is locked by `LOCKS`."""
    return not name.removeprefix("model.").startswith(TRAINABLE_PREFIXES)


@pytest.fixture
def zeroshot_dir(tmp_path):
    """A saved unicl-tiny to fine-tune, as a pretrained model would be."""
    torch.manual_seed(0)
    create_model("unicl-tiny").save_pretrained(tmp_path / "zeroshot")
    return tmp_path / "zeroshot"


def demo_config(model_dir, output_dir, *extra):
    return load_training_config(
        "configs/demo.yaml",
        [
            f"model.name={model_dir}",
            f"run.output_dir={output_dir}",
            "data.batch_size=8",
            "data.num_workers=0",
            "schedule.steps=2",
            "schedule.warmup_steps=1",
            "evaluation.zeroshot=[]",
            "logging.progress=false",
            *extra,
        ],
    )


def test_a_real_run_never_changes_locked_weights_or_batchnorm_statistics(tmp_path, zeroshot_dir):
    result = train(demo_config(zeroshot_dir, tmp_path / "run", *LOCKS))
    trained = sum(
        p.numel() for n, p in create_model("unicl-tiny").named_parameters() if not is_locked(n)
    )
    assert f"| trained parameters | {trained} |" in result.report.read_text()
    before, after = load(zeroshot_dir).state_dict(), load(result.model_dir).state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    locked = {name for name in before if is_locked(name)}
    assert changed.isdisjoint(locked)
    parameters = dict(create_model("unicl-tiny").named_parameters())
    unlocked_parameters = {name for name in parameters if not is_locked(name)}
    assert unlocked_parameters <= changed
    assert "image_encoder.stages.3.0.body.1.running_mean" in changed  # unlocked BN keeps learning
    assert "image_encoder.stages.1.0.body.1.running_mean" not in changed


def test_only_unlocked_parameters_get_gradients_and_optimiser_groups(tmp_path, zeroshot_dir):
    config = demo_config(zeroshot_dir, tmp_path / "run", *LOCKS)
    state, batches, augment = build_run(config, CPU)
    try:
        named = dict(state.objective.named_parameters())
        unlocked = {name for name in named if not is_locked(name)}
        assert {name for name, p in named.items() if p.requires_grad} == unlocked
        grouped = [p for group in state.optimizer.param_groups for p in group["params"]]
        assert len(grouped) == len({id(p) for p in grouped})
        assert {id(p) for p in grouped} == {id(named[name]) for name in unlocked}
        assert unused_parameters(state.objective, CPU.device) == []  # DDP needs no search
        inputs = state.objective.prepare(next(batches), augment, CPU.device)
        forward_backward(
            state.module, state.objective, inputs, 1, contextlib.nullcontext, torch.Tensor.backward
        )
        no_gradient = {name for name, p in named.items() if p.grad is None}
        assert no_gradient == set(named) - unlocked
    finally:
        batches.close()


def test_lock_keys_are_checked_with_the_key_named():
    with pytest.raises(
        UserInputError, match=r"'model.lock_image.unlocked_group'.*'unlocked_groups'"
    ):
        demo_config("unicl-tiny", "runs/x", "model.lock_image={unlocked_group: 1}")
    with pytest.raises(UserInputError, match=r"'model.lock_text.unlocked_groups' is -1"):
        demo_config("unicl-tiny", "runs/x", "model.lock_text.unlocked_groups=-1")
    config = demo_config("unicl-tiny", "runs/x", "model.lock_image.unlocked_groups=6")
    with pytest.raises(
        UserInputError,
        match=r"'model.lock_image.unlocked_groups' is 6; the image tower \(ResNet\) has 5 layer",
    ):
        lock_towers(create_model("unicl-tiny"), config.model)


def test_without_lock_keys_every_parameter_trains():
    config = demo_config("unicl-tiny", "runs/x")
    assert config.model.lock_image is None and config.model.lock_text is None
    model = create_model("unicl-tiny")
    lock_towers(model, config.model)
    assert all(p.requires_grad for p in model.parameters())


def _train_locked(rank, port, config, directory):
    context = join_two_process_group(rank, port)
    try:
        torch.manual_seed(0)
        stream = ListStream(16, context.rank, context.world_size)
        state = build_state(config, context, create_model("unicl-tiny"), stream, num_classes=3)
        with StopRequest() as stop:
            run_loop(state, iter(stream), lambda im, ids: im.float() / 255, lambda s: {}, stop)
        weights = state.objective.state_dict()
        torch.save(
            {"weights": weights, "find_unused": state.module.find_unused_parameters},
            directory / f"rank{rank}.pt",
        )
    finally:
        close_process()


@pytest.mark.distributed
def test_ddp_trains_only_the_unlocked_parameters_without_searching_for_unused_ones(tmp_path):
    """DDP holds only the trainable parameters (the probe finds none unused, so DDP searches for
    none), averages their gradients so the ranks stay identical, and never moves a locked one."""
    locks = {"lock_image": {"unlocked_groups": 2}, "lock_text": {"projection": True}}
    config = make_config(
        tmp_path / "run",
        data={"batch_size": 8},
        model=locks,
        schedule={"steps": 3, "warmup_steps": 1},
    )
    mp.spawn(_train_locked, args=(free_port(), config, tmp_path), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    assert [r["find_unused"] for r in ranks] == [False, False]
    torch.manual_seed(0)
    initial = create_model("unicl-tiny")
    parameters = {f"model.{name}" for name, _ in initial.named_parameters()}
    initial = initial.state_dict()
    for name, value in ranks[0]["weights"].items():
        start = initial[name.removeprefix("model.")]
        if name in parameters:
            assert torch.equal(ranks[1]["weights"][name], value), name
            assert torch.equal(value, start) is is_locked(name), name
        elif is_locked(name):  # frozen BatchNorm statistics
            assert torch.equal(value, start) and torch.equal(ranks[1]["weights"][name], start)
