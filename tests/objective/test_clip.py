"""The CLIP baseline's loss: OpenCLIP's definition, and UniCL's loss with every label distinct."""

import pytest
import torch

from tests.objective.reference import clip_loss as openclip_loss
from tests.objective.reference import normalized, unicl_loss_by_loops
from unicl import ClipLoss, clip_loss, unicl_loss

SCALE = 14.0


def features(rows, *, seed=0):
    return (
        normalized(rows, 8, seed=seed, requires_grad=True),
        normalized(rows, 8, seed=seed + 100, requires_grad=True),
        torch.tensor(SCALE, requires_grad=True),
    )


@pytest.mark.parametrize("rows", [1, 2, 7, 16])
def test_value_and_gradients_are_openclips(rows):
    u, v, scale = features(rows)
    ours = clip_loss(u, v, scale)
    theirs = openclip_loss(u, v, scale)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(
        torch.autograd.grad(ours, (u, v, scale)),
        torch.autograd.grad(theirs, (u, v, scale)),
        rtol=1e-4,
        atol=1e-6,
    )


def test_clip_is_unicl_with_every_label_distinct_and_differs_when_classes_repeat():
    u, v, scale = features(10, seed=3)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, -5, -6, 2, -7])  # three classes and three captions
    clip = clip_loss(u, v, scale)
    distinct = unicl_loss(u, v, torch.arange(10), scale)
    torch.testing.assert_close(clip, distinct)
    torch.testing.assert_close(clip.double(), unicl_loss_by_loops(u, v, torch.arange(10), SCALE))
    torch.testing.assert_close(
        torch.autograd.grad(clip, (u, v)), torch.autograd.grad(distinct, (u, v))
    )
    # with class labels the same-class texts are positives for UniCL and negatives for CLIP
    assert abs(float(unicl_loss(u, v, labels, scale).detach() - clip.detach())) > 0.05


@pytest.mark.parametrize("tile_size", [1, 3, 7, 40])
def test_tiled_equals_dense(tile_size):
    u, v, scale = features(12, seed=5)
    dense = clip_loss(u, v, scale)
    tiled = clip_loss(u, v, scale, tile_size=tile_size)
    torch.testing.assert_close(tiled, dense)
    torch.testing.assert_close(
        torch.autograd.grad(tiled, (u, v, scale)),
        torch.autograd.grad(dense, (u, v, scale)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_low_precision_inputs_are_scored_in_float32():
    u, v, _ = features(6, seed=7)
    loss = clip_loss(u.detach().bfloat16(), v.detach().bfloat16(), SCALE)
    assert loss.dtype == torch.float32
    expected = openclip_loss(u.detach().bfloat16().float(), v.detach().bfloat16().float(), SCALE)
    torch.testing.assert_close(loss, expected)


def test_the_criterion_on_one_process_is_clip_loss():
    u, v, scale = features(9, seed=9)
    torch.testing.assert_close(ClipLoss(tile_size=4)(u, v, scale), clip_loss(u, v, scale))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((torch.zeros(0, 4), torch.zeros(0, 4), 1.0), "empty"),
        ((torch.zeros(3, 4), torch.zeros(2, 4), 1.0), "text_features has shape"),
        ((torch.full((2, 4), float("nan")), torch.zeros(2, 4), 1.0), "NaN"),
    ],
    ids=["empty", "mismatch", "nan"],
)
def test_bad_inputs_raise(arguments, message):
    with pytest.raises(ValueError, match=message):
        clip_loss(*arguments)


def test_tile_size_must_be_positive():
    with pytest.raises(ValueError, match="tile_size"):
        ClipLoss(tile_size=0)
