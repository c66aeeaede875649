"""The multi-task baseline's loss: cross-entropy on the image-label rows plus the weighted CLIP
loss on the image-text rows, each computed here on its own rows."""

import pytest
import torch
import torch.nn.functional as F

from tests.objective.reference import clip_loss as openclip_loss
from tests.objective.reference import normalized
from unicl import MultiTaskLoss, multitask_loss

SCALE = 10.0
CLASS_IDS = torch.tensor([0, 2, -1, 1, -1, 0, -1, 2, 1, -1])


def batch(class_ids=CLASS_IDS, classes=3, *, seed=0):
    rows = len(class_ids)
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, classes, generator=generator).requires_grad_()
    u = normalized(rows, 6, seed=seed + 1, requires_grad=True)
    v = normalized(rows, 6, seed=seed + 2, requires_grad=True)
    scale = torch.tensor(SCALE, requires_grad=True)
    return logits, class_ids, u, v, scale


def separately(logits, class_ids, u, v, scale, weight):
    """The two terms on their own rows: F.cross_entropy over the labelled rows, OpenCLIP's loss
    over the caption rows."""
    labelled, pairs = class_ids >= 0, class_ids == -1
    total = torch.zeros(())
    if labelled.any():
        total = total + F.cross_entropy(logits[labelled], class_ids[labelled])
    if pairs.any():
        total = total + weight * openclip_loss(u[pairs], v[pairs], scale)
    return total


@pytest.mark.parametrize("weight", [1.0, 0.25, 0.0])
def test_equals_cross_entropy_plus_weighted_clip_computed_separately(weight):
    inputs = batch()
    ours = multitask_loss(*inputs, clip_weight=weight)
    theirs = separately(*inputs, weight)
    torch.testing.assert_close(ours, theirs)
    differentiable = (inputs[0], inputs[2], inputs[3], inputs[4])
    torch.testing.assert_close(
        torch.autograd.grad(ours, differentiable),
        torch.autograd.grad(theirs, differentiable, allow_unused=True, materialize_grads=True),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "class_ids",
    [torch.tensor([0, 1, 2, 1]), torch.tensor([-1, -1, -1])],
    ids=["labels-only", "captions-only"],
)
def test_a_batch_of_one_kind_is_scored_by_its_own_term(class_ids):
    inputs = batch(class_ids, seed=4)
    ours = multitask_loss(*inputs)
    torch.testing.assert_close(ours, separately(*inputs, 1.0))
    scale_grad = torch.autograd.grad(ours, inputs[4])[0]
    if (class_ids >= 0).all():
        assert scale_grad == 0  # in the graph, untouched: DDP sees a gradient for the scale
    else:
        assert scale_grad != 0


def test_the_unused_rows_do_not_matter():
    """Texts of image-label rows (prompts, never encoded) and logits of caption rows are ignored."""
    logits, class_ids, u, v, scale = batch(seed=2)
    loss = multitask_loss(logits, class_ids, u, v, scale)
    grad_logits, grad_v = torch.autograd.grad(loss, (logits, v))
    assert grad_logits[class_ids == -1].abs().max() == 0
    assert grad_v[class_ids >= 0].abs().max() == 0
    changed_v = v.detach().clone()
    changed_v[class_ids >= 0] = 0
    changed_logits = logits.detach().clone()
    changed_logits[class_ids == -1] = 99
    torch.testing.assert_close(
        multitask_loss(changed_logits, class_ids, u, changed_v, scale), loss.detach()
    )


def test_the_criterion_on_one_process_is_multitask_loss():
    inputs = batch(seed=6)
    criterion = MultiTaskLoss(clip_weight=0.5, tile_size=2)
    torch.testing.assert_close(criterion(*inputs), multitask_loss(*inputs, clip_weight=0.5))


def test_bad_arguments_raise():
    logits, class_ids, u, v, scale = batch()
    with pytest.raises(ValueError, match="class_ids must be in"):
        multitask_loss(logits, class_ids.clone().fill_(3), u, v, scale)
    with pytest.raises(ValueError, match="class_logits has 9 rows"):
        multitask_loss(logits[:9], class_ids, u, v, scale)
    with pytest.raises(ValueError, match="clip_weight"):
        MultiTaskLoss(clip_weight=-1.0)
