"""The health monitor: its rules on the windows of a run, its hooks on real forward passes, the
chance loss of every objective against the objective's own loss, and the loop stopping on it."""

import math

import pytest
import torch
import torch.multiprocessing as mp

from tests.conftest import free_port
from tests.train.conftest import TinyTowers, join_two_process_group
from tests.train.test_loop import PoisonedStream, make_config, nan_augment, start
from unicl.errors import UserInputError
from unicl.train.builtin_objectives import (
    CrossEntropyObjective,
    SupConObjective,
    UniCLObjective,
)
from unicl.train.checkpoint import list_checkpoints
from unicl.train.config import ObjectiveConfig, config_to_yaml
from unicl.train.health import MIN_LOSS_STEPS, PATIENCE, HealthMonitor
from unicl.train.launch import close_process
from unicl.train.logger import read_metrics
from unicl.train.loop import run_loop
from unicl.train.run_dir import RUN_CONFIG, start_point
from unicl.train.signals import StopRequest

CHANCE = math.log(32)


def monitor(**options) -> HealthMonitor:
    return HealthMonitor(TinyTowers(), CHANCE, device=torch.device("cpu"), **options)


def window(step, loss, grad_norm=1.0, logit_scale=14.0, skipped_steps=0, window_steps=10):
    return {
        "kind": "train",
        "step": step,
        "loss": loss,
        "grad_norm": grad_norm,
        "logit_scale": logit_scale,
        "skipped_steps": skipped_steps,
        "window_steps": window_steps,
    }


def feed(health, records):
    """Every event, by the step it was found at."""
    return {record["step"]: health.check(record) for record in records}


def test_loss_at_chance_with_a_vanishing_gradient_is_a_collapse_after_patience_windows():
    health = monitor()
    records = [window(10, 3.3, grad_norm=5.0)]
    records += [window(10 * k, CHANCE + 1e-4, grad_norm=1e-3) for k in range(2, 2 + PATIENCE)]
    found = feed(health, records)
    events = [e for step_events in found.values() for e in step_events]
    assert [(e.condition, e.since, e.step, e.stops) for e in events] == [
        ("collapse", 20, 10 * (1 + PATIENCE), True)
    ]
    assert "uniform guess" in events[0].message and "lower optim.lr" in events[0].line()
    assert records[-1]["health"] == ["collapse"]


def test_the_first_windows_at_chance_with_large_gradients_are_healthy():
    health = monitor()
    records = [window(10 * k, CHANCE - 0.01, grad_norm=6.0 - k) for k in range(1, 6)]
    assert not any(feed(health, records).values())
    assert all("health" not in record for record in records)


def test_warn_mode_reports_a_collapse_without_stopping():
    health = monitor(on_collapse="warn")
    records = [window(10, 3.3, grad_norm=5.0)]
    records += [window(10 * k, CHANCE, grad_norm=0.0) for k in range(2, 2 + PATIENCE)]
    (event,) = feed(health, records)[10 * (1 + PATIENCE)]
    assert event.condition == "collapse" and not event.stops
    assert event.record()["action"] == "warn"


def test_a_loss_that_climbs_back_toward_chance_and_stays_is_a_divergence():
    health = monitor()
    losses = [2.5, 2.0, 1.5, 1.5, 1.5, 3.0, 3.1, 3.2, 3.2, 3.3]
    found = feed(health, [window(10 * (i + 1), loss) for i, loss in enumerate(losses)])
    events = {e.condition: e for step_events in found.values() for e in step_events}
    assert set(events) == {"divergence"}
    assert events["divergence"].step == 90 and events["divergence"].since == 70
    assert "from 1.5000" in events["divergence"].message


def test_a_single_spike_that_recovers_is_not_a_divergence():
    health = monitor()
    losses = [2.0, 1.5, 1.5, 1.5, 9.0, 1.5, 1.4, 1.4, 1.3]
    assert not any(feed(health, [window(10 * (i + 1), x) for i, x in enumerate(losses)]).values())


def test_with_a_log_line_every_step_noise_is_not_a_divergence_but_a_rise_that_stays_is():
    """One-step windows: a few noisy steps near chance (what stopped a healthy batch-16 run at
    step 32) are not judged; the median over `MIN_LOSS_STEPS` steps is."""
    health = monitor()
    falling = [3.4 - 0.05 * i for i in range(20)]  # to 2.45
    noisy = [2.45 + (0.6 if i % 10 in (3, 4, 5, 6, 7) else -0.1) for i in range(40)]
    risen = [3.3] * 45
    losses = falling + noisy + risen
    records = [window(i + 1, x, window_steps=1) for i, x in enumerate(losses)]
    found = feed(health, records)
    events = [(step, e.condition) for step, step_events in found.items() for e in step_events]
    steps_to_rise = len(falling) + len(noisy)
    assert len(events) == 1 and events[0][1] == "divergence"
    assert steps_to_rise < events[0][0] <= steps_to_rise + MIN_LOSS_STEPS + PATIENCE
    assert "median of the last 30 windows" in found[events[0][0]][0].message


def test_half_of_a_windows_steps_skipped_for_non_finite_losses_is_a_divergence():
    health = monitor()
    records = [window(10 * k, 2.0, skipped_steps=5 * k) for k in range(1, 1 + PATIENCE)]
    (event,) = feed(health, records)[10 * PATIENCE]
    assert event.condition == "divergence" and "5 of the last 10 steps" in event.message


def test_a_logit_scale_at_its_clamp_is_a_warning_and_ends_when_it_leaves():
    health = monitor()
    scales = [50.0, 100.0, 100.0, 99.95, 80.0, 100.0]
    found = feed(health, [window(10 * (i + 1), 2.0, logit_scale=s) for i, s in enumerate(scales)])
    (event,) = found[40]
    assert (event.condition, event.since, event.stops) == ("logit_scale_pinned", 20, False)
    assert event.references == {"logit_scale": pytest.approx(100.0)}
    assert not found[50] and not found[60]


def test_data_wait_is_judged_only_where_it_is_watched():
    for watched in (True, False):
        health = monitor(watch_data_wait=watched)
        events = []
        for k in range(1, 1 + PATIENCE):
            health.waited(1e6)  # as if the window's steps had waited for their batches
            record = window(10 * k, 2.0)
            events += health.check(record)
            assert ("data_wait_share" in record) == watched
        assert [e.condition for e in events] == (["data_wait"] if watched else [])


def test_spread_comes_from_training_passes_and_collapsed_features_are_a_collapse():
    towers = TinyTowers(dropout=0.0)
    health = HealthMonitor(towers, None, device=torch.device("cpu"))
    images = torch.randn(8, 3, 4, 4)
    towers.encode_image(images)
    record = window(10, 3.0, grad_norm=None)
    health.check(record)
    assert 0.1 < record["image_spread"] <= 1 and "text_spread" not in record
    towers.eval()
    towers.encode_image(torch.zeros(8, 3, 4, 4))  # evaluation: not counted
    towers.train()
    with torch.no_grad():
        towers.encode_image(torch.zeros(8, 3, 4, 4))  # accumulation's cached pass: not counted
    events = []
    for k in range(2, 2 + PATIENCE):
        towers.encode_image(images[:1].expand(8, -1, -1, -1))  # one image eight times
        record = window(10 * k, 3.0, grad_norm=None)
        events += health.check(record)
        assert record["image_spread"] == pytest.approx(0.0, abs=1e-6)
    assert [e.condition for e in events] == ["collapse"]
    assert "image features all point the same way" in events[0].message
    health.close()
    towers.encode_image(images)
    assert health.spread.stats.sum() == 0


@pytest.mark.parametrize("name", ["unicl", "supcon", "ce"])
def test_chance_loss_is_the_objectives_loss_on_uninformative_encodings(name):
    """Equal features score every pair alike, and a zero head predicts every class alike."""
    kinds = {"unicl": UniCLObjective, "supcon": SupConObjective, "ce": CrossEntropyObjective}
    objective = kinds[name](TinyTowers(), ObjectiveConfig(), num_classes=3)
    batch = 12
    same = torch.nn.functional.normalize(torch.ones(batch, 8), dim=-1)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, -10, -11, -12, -13])
    if name == "unicl":
        loss = objective.loss((same, same), (torch.tensor(14.0),), {"labels": labels})
    elif name == "supcon":
        views = torch.stack([same, same], dim=1)
        loss = objective.loss((views,), (), {"labels": labels})
    else:
        class_ids = torch.tensor([0, 1, 2] * 4)
        loss = objective.loss((torch.zeros(batch, 3),), (), {"class_ids": class_ids})
    assert float(loss) == pytest.approx(objective.chance_loss(batch), rel=1e-5)


def test_the_loop_stops_a_run_whose_steps_keep_failing_after_a_checkpoint(tmp_path):
    """Every other step non-finite: never `run.max_nonfinite` in a row, but half of each
    window, so the monitor stops the run."""
    config = make_config(
        tmp_path, schedule={"steps": 20}, logging={"every_steps": 2}, checkpoint={"every_steps": 50}
    )
    state = start(config, PoisonedStream(set(range(2, 21, 2)), steps=20))
    with StopRequest() as stop:
        result = run_loop(state, iter(state.stream), nan_augment, lambda s: {}, stop)
    assert result.step == 2 * PATIENCE and result.stopped_by is None
    assert result.unhealthy.condition == "divergence" and result.unhealthy.stops
    assert [p.name for p in list_checkpoints(config.output_dir)] == ["step_00000006.pt"]
    records = read_metrics(config.output_dir / "metrics.jsonl")
    (event,) = [r for r in records if r["kind"] == "health"]
    assert event["since"] == 2 and event["step"] == 6 and event["action"] == "stop"


def test_what_a_collapse_does_may_change_when_a_run_is_resumed(tmp_path):
    config = make_config(tmp_path)
    config.output_dir.mkdir()
    (config.output_dir / RUN_CONFIG).write_text(config_to_yaml(config))
    config.run.on_collapse = "warn"
    assert start_point(config, "latest") == (
        [],
        [f"{config.output_dir} has no checkpoint yet; starting its run again from step 0"],
    )
    config.optim.lr = 0.5
    with pytest.raises(UserInputError, match=r"cannot resume .* with optim.lr=0.5"):
        start_point(config, "latest")


def _judge_on_two_ranks(rank, port, directory):
    """Rank 0's features have collapsed, rank 1's have not: both must read the same spreads and
    find the same conditions."""
    context = join_two_process_group(rank, port)
    try:
        towers = TinyTowers(dropout=0.0)
        health = HealthMonitor(towers, None, device=context.device, group=context.group)
        images = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(rank))
        seen = []
        for k in range(1, 5):
            towers.encode_image(images[:1].expand(8, -1, -1, -1) if rank == 0 and k > 1 else images)
            record = window(10 * k, 3.0, grad_norm=None)
            events = health.check(record)
            seen.append((record["image_spread"], [e.condition for e in events]))
        torch.save(seen, directory / f"rank{rank}.pt")
    finally:
        close_process()


@pytest.mark.distributed
def test_every_process_reads_the_same_spreads_and_takes_the_same_decision(tmp_path):
    mp.spawn(_judge_on_two_ranks, args=(free_port(), tmp_path), nprocs=2, join=True)
    zero, one = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert zero == one
    assert all(0.05 < spread < 0.5 for spread, _ in zero[1:])  # half of the healthy spread
    assert not any(events for _, events in zero)
