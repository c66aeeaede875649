"""unicl_loss: the paper's equations, CLIP's loss as a special case, dtypes and input checks."""

import pytest
import torch

from tests.objective.reference import clip_loss, normalized, unicl_loss_by_loops
from unicl import UniCLLoss, unicl_loss

SCALE = 14.3


def mixed_labels():
    """Three classes with repeats, plus five captions of their own (negative caption labels)."""
    return torch.tensor([0, 2, 0, 1, -5, 2, -6, 0, -7, 1, -8, -9])


@pytest.mark.parametrize(
    "labels",
    [
        mixed_labels(),
        torch.arange(9),
        torch.zeros(6, dtype=torch.long),
        torch.tensor([4]),
    ],
    ids=["mixed", "all-distinct", "all-one-label", "single-sample"],
)
def test_value_matches_the_equations(labels):
    u = normalized(len(labels), 16, seed=1)
    v = normalized(len(labels), 16, seed=2)
    expected = unicl_loss_by_loops(u, v, labels, SCALE)
    assert unicl_loss(u, v, labels, SCALE).item() == pytest.approx(
        expected.item(), rel=1e-5, abs=1e-6
    )


def test_gradients_match_autograd_of_the_equations():
    labels = mixed_labels()
    u = normalized(len(labels), 8, seed=3, dtype=torch.float64, requires_grad=True)
    v = normalized(len(labels), 8, seed=4, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(SCALE, dtype=torch.float64, requires_grad=True)
    expected = torch.autograd.grad(unicl_loss_by_loops(u, v, labels, scale), (u, v, scale))
    actual = torch.autograd.grad(unicl_loss(u, v, labels, scale), (u, v, scale))
    for got, want in zip(actual, expected, strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-6)


def test_unique_labels_give_exactly_clips_loss():
    u = normalized(32, 16, seed=5, requires_grad=True)
    v = normalized(32, 16, seed=6, requires_grad=True)
    ours = unicl_loss(u, v, torch.arange(100, 132), SCALE)
    clip = clip_loss(u, v, SCALE)
    torch.testing.assert_close(ours, clip)
    torch.testing.assert_close(
        torch.autograd.grad(ours, (u, v)), torch.autograd.grad(clip, (u, v)), rtol=1e-4, atol=1e-7
    )


def test_a_same_class_text_counts_as_a_positive_not_a_negative():
    """Each image sits on the other sample's text: a false negative for CLIP, a match for UniCL."""
    base = normalized(2, 8, seed=7)
    images, texts = base, base.flip(0)
    as_captions = unicl_loss(images, texts, torch.tensor([0, 1]), SCALE)
    as_one_class = unicl_loss(images, texts, torch.tensor([3, 3]), SCALE)
    assert as_one_class < as_captions
    similarity = SCALE * (base[0] @ base[1])
    own_share = torch.log(torch.exp(similarity) + torch.exp(torch.tensor(SCALE)))
    expected = own_share - (similarity + SCALE) / 2
    assert as_one_class.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_are_computed_in_float32(dtype):
    labels = mixed_labels()
    u = normalized(len(labels), 16, seed=8, dtype=dtype, requires_grad=True)
    v = normalized(len(labels), 16, seed=9, dtype=dtype, requires_grad=True)
    loss = unicl_loss(u, v, labels, SCALE)
    assert loss.dtype == torch.float32
    expected = unicl_loss_by_loops(u.detach().float(), v.detach().float(), labels, SCALE)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)
    loss.backward()
    assert u.grad.dtype == dtype


def test_autocast_does_not_lower_the_loss_precision():
    labels = mixed_labels()
    u = normalized(len(labels), 16, seed=10)
    v = normalized(len(labels), 16, seed=11)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = unicl_loss(u, v, labels, SCALE)
    assert inside.item() == pytest.approx(unicl_loss(u, v, labels, SCALE).item(), rel=1e-6)


def test_scale_receives_a_gradient_through_exp_of_the_log_parameter():
    log_scale = torch.nn.Parameter(torch.tensor(2.0))
    u, v = normalized(6, 4, seed=12), normalized(6, 4, seed=13)
    unicl_loss(u, v, torch.tensor([0, 0, 1, 1, 2, 2]), log_scale.exp()).backward()
    assert log_scale.grad is not None and log_scale.grad.abs() > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: {**a, "image_features": a["image_features"][0]}, "image_features must be a 2-D"),
        (lambda a: {**a, "text_features": a["text_features"][:3]}, "text_features has shape"),
        (
            lambda a: {**a, "text_features": a["text_features"].double()},
            "text_features is torch.float64",
        ),
        (lambda a: {**a, "labels": a["labels"].int()}, "labels must be an int64"),
        (lambda a: {**a, "labels": a["labels"][:2]}, "labels has shape"),
        (lambda a: {**a, "logit_scale": torch.ones(2)}, "logit_scale must be a scalar"),
        (
            lambda a: {
                **a,
                "image_features": a["image_features"][:0],
                "text_features": a["text_features"][:0],
                "labels": a["labels"][:0],
            },
            "empty",
        ),
        (lambda a: {**a, "image_features": a["image_features"].long()}, "floating-point"),
        (lambda a: {**a, "image_features": a["image_features"].to("meta")}, "text_features is on"),
    ],
    ids=["1-d", "shape", "dtype", "label-dtype", "label-shape", "scale", "empty", "int", "device"],
)
def test_mismatched_arguments_raise_naming_the_argument(change, message):
    arguments = {
        "image_features": normalized(4, 8, seed=14),
        "text_features": normalized(4, 8, seed=15),
        "labels": torch.arange(4),
        "logit_scale": torch.tensor(SCALE),
    }
    with pytest.raises(ValueError, match=message):
        unicl_loss(**change(arguments))


@pytest.mark.parametrize("argument", ["image_features", "text_features", "logit_scale"])
def test_non_finite_inputs_raise_instead_of_returning_nan(argument):
    arguments = {
        "image_features": normalized(4, 8, seed=16),
        "text_features": normalized(4, 8, seed=17),
        "labels": torch.arange(4),
        "logit_scale": torch.tensor(SCALE),
    }
    poisoned = arguments[argument].clone()
    poisoned.view(-1)[0] = float("nan")
    arguments[argument] = poisoned
    with pytest.raises(ValueError, match=f"{argument}.*(NaN|not finite)"):
        unicl_loss(**arguments)


def test_the_criterion_on_one_process_is_unicl_loss():
    labels = mixed_labels()
    u = normalized(len(labels), 8, seed=3, requires_grad=True)
    v = normalized(len(labels), 8, seed=4, requires_grad=True)
    criterion = UniCLLoss(tile_size=5)  # group=None and torch.distributed not initialised
    got = torch.autograd.grad(criterion(u, v, labels, SCALE), (u, v))
    want = torch.autograd.grad(unicl_loss(u, v, labels, SCALE), (u, v))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)
