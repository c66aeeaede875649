"""Gradient accumulation keeps every sample as a negative: micro-step gradients sum to the
full-batch gradient, for every objective."""

import contextlib

import pytest
import torch

from unicl.train.accumulation import forward_backward, split_inputs
from unicl.train.builtin_objectives import (
    CrossEntropyObjective,
    SupConObjective,
    UniCLObjective,
)
from unicl.train.config import ObjectiveConfig


def _inputs(objective, step_inputs):
    inputs = {"images": step_inputs["images"], "labels": step_inputs["labels"]}
    if isinstance(objective, UniCLObjective):
        inputs["tokens"] = objective.model.tokenize(step_inputs["texts"])
    if isinstance(objective, CrossEntropyObjective):
        inputs = {"images": step_inputs["images"], "class_ids": step_inputs["labels"].clamp(-1)}
    if isinstance(objective, SupConObjective):
        images = step_inputs["images"]
        inputs = {"views": torch.stack([images, images.flip(-1)], 1), "labels": inputs["labels"]}
    return inputs


def _gradients(objective, inputs, steps):
    objective.zero_grad(set_to_none=True)
    torch.manual_seed(123)
    loss, finite = forward_backward(
        objective, objective, inputs, steps, contextlib.nullcontext, lambda value: value.backward()
    )
    grads = {n: p.grad.clone() for n, p in objective.named_parameters() if p.grad is not None}
    return loss if bool(finite) else None, grads


@pytest.mark.parametrize("steps", [2, 3, 5])
@pytest.mark.parametrize(
    "make_objective",
    [
        lambda m: UniCLObjective(m, ObjectiveConfig()),
        lambda m: UniCLObjective(m, ObjectiveConfig(tile_size=4)),
        lambda m: CrossEntropyObjective(m, ObjectiveConfig(), num_classes=3),
        lambda m: SupConObjective(m, ObjectiveConfig(temperature=0.2)),
    ],
    ids=["unicl", "unicl-tiled", "ce", "supcon"],
)
def test_accumulated_gradients_equal_full_batch_gradients(
    towers, step_inputs, make_objective, steps
):
    objective = make_objective(towers)
    inputs = _inputs(objective, step_inputs)
    full_loss, full = _gradients(objective, inputs, 1)
    accumulated_loss, accumulated = _gradients(objective, inputs, steps)
    assert accumulated_loss == pytest.approx(float(full_loss), rel=1e-5)
    assert full.keys() == accumulated.keys()
    for name in full:
        torch.testing.assert_close(accumulated[name], full[name], rtol=1e-4, atol=1e-6, msg=name)


def test_logit_scale_gets_one_full_batch_gradient(towers, step_inputs):
    objective = UniCLObjective(towers, ObjectiveConfig())
    inputs = _inputs(objective, step_inputs)
    _, full = _gradients(objective, inputs, 1)
    _, accumulated = _gradients(objective, inputs, 4)
    assert full["model.logit_scale"].abs() > 0
    torch.testing.assert_close(accumulated["model.logit_scale"], full["model.logit_scale"])


def test_accumulation_leaves_the_random_stream_where_one_pass_leaves_it(towers, step_inputs):
    objective = UniCLObjective(towers, ObjectiveConfig())
    inputs = _inputs(objective, step_inputs)
    _gradients(objective, inputs, 1)
    after_full = torch.rand(1)
    _gradients(objective, inputs, 3)
    assert torch.equal(torch.rand(1), after_full)


@pytest.mark.parametrize(
    "make_objective",
    [
        lambda m: UniCLObjective(m, ObjectiveConfig()),
        lambda m: CrossEntropyObjective(m, ObjectiveConfig(), num_classes=3),
    ],
    ids=["unicl", "ce"],
)
def test_non_finite_features_are_reported_not_raised(towers, step_inputs, make_objective):
    """One NaN image: the step says it is not finite (the loop then skips the update), for an
    objective whose loss would ignore the sample (ce ignores captions) too."""
    objective = make_objective(towers)
    inputs = _inputs(objective, step_inputs)
    inputs["images"] = inputs["images"].clone()
    inputs["images"][10] = float("nan")  # an image-text sample, ignored by ce's loss
    for steps in (1, 3):
        loss, _ = _gradients(objective, inputs, steps)
        assert loss is None


def test_split_inputs_covers_every_sample_once(step_inputs):
    inputs = {"images": step_inputs["images"], "labels": step_inputs["labels"]}
    parts = split_inputs(inputs, 5)
    assert [len(p["labels"]) for p in parts] == [3, 3, 2, 2, 2]
    assert torch.equal(torch.cat([p["labels"] for p in parts]), inputs["labels"])
