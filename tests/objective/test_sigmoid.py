"""The label-aware sigmoid loss: SigLIP's loss with distinct labels, the pairwise definition with
class labels and mixed images, dense against tiled, and its errors."""

import pytest
import torch

from tests.objective.reference import label_sigmoid_by_loops, normalized, siglip_loss
from unicl import LabelMix, LabelSigmoidLoss, label_sigmoid_loss
from unicl.objective.sigmoid import positive_share, sigmoid_chance_loss

LABELS = torch.tensor([0, 1, 0, 2, 1, 0, -5, -6, 2, -7])  # three classes and three captions


def features(rows, *, seed=0):
    return (
        normalized(rows, 8, seed=seed, requires_grad=True),
        normalized(rows, 8, seed=seed + 100, requires_grad=True),
        torch.tensor(10.0, requires_grad=True),
        torch.tensor(-3.0, requires_grad=True),
    )


def gradients(loss, inputs):
    return torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize("rows", [1, 2, 7, 16])
def test_distinct_labels_give_siglips_loss_and_gradients(rows):
    inputs = features(rows)
    ours = label_sigmoid_loss(*inputs[:2], torch.arange(rows), *inputs[2:])
    theirs = siglip_loss(*inputs)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(
        gradients(ours, inputs), gradients(theirs, inputs), rtol=1e-4, atol=1e-6
    )


def test_class_labels_make_same_label_pairs_positive():
    u, v, scale, bias = features(10, seed=3)
    ours = label_sigmoid_loss(u, v, LABELS, scale, bias)
    torch.testing.assert_close(ours.double(), label_sigmoid_by_loops(u, v, LABELS, 10.0, -3.0))
    # SigLIP would call the same-class pairs negatives
    assert abs(float((ours - siglip_loss(u, v, scale, bias)).detach())) > 0.1


def test_mixed_images_have_their_memberships_as_targets():
    u, v, scale, bias = features(10, seed=4)
    partners = LABELS.clone()
    partners[[0, 1, 3, 5]] = torch.tensor([1, 2, 0, 1])  # image-label rows mixed with others
    weights = torch.tensor([0.3, 0.9, 1.0, 0.5, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    mix = LabelMix(partners, weights)
    ours = label_sigmoid_loss(u, v, LABELS, scale, bias, mix=mix)
    expected = label_sigmoid_by_loops(u, v, LABELS, 10.0, -3.0, partners, weights)
    torch.testing.assert_close(ours.double(), expected)
    unmixed = LabelMix(partners, torch.ones(10))
    torch.testing.assert_close(
        label_sigmoid_loss(u, v, LABELS, scale, bias, mix=unmixed),
        label_sigmoid_loss(u, v, LABELS, scale, bias),
    )


@pytest.mark.parametrize("tile_size", [1, 3, 7, 40])
@pytest.mark.parametrize("precision", ["fp32", "tf32"])
def test_tiled_equals_dense(tile_size, precision):
    inputs = features(12, seed=5)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, -5, -6, 2, -7, 3, 3])
    dense = label_sigmoid_loss(*inputs[:2], labels, *inputs[2:])
    tiled = label_sigmoid_loss(
        *inputs[:2], labels, *inputs[2:], tile_size=tile_size, tile_precision=precision
    )
    torch.testing.assert_close(tiled, dense)
    torch.testing.assert_close(
        gradients(tiled, inputs), gradients(dense, inputs), rtol=1e-5, atol=1e-6
    )


def test_bf16_tiles_stay_close_to_float32():
    inputs = features(64, seed=6)
    labels = torch.randint(0, 5, (64,), generator=torch.Generator().manual_seed(0))
    exact = label_sigmoid_loss(*inputs[:2], labels, *inputs[2:])
    rounded = label_sigmoid_loss(
        *inputs[:2], labels, *inputs[2:], tile_size=16, tile_precision="bf16"
    )
    assert abs(float((rounded - exact).detach())) / float(exact.detach()) < 1e-2


def test_runs_in_float32_whatever_the_input_dtype():
    u, v, scale, bias = features(6)
    loss = label_sigmoid_loss(u.bfloat16(), v.bfloat16(), torch.arange(6), scale, bias)
    assert loss.dtype == torch.float32


def test_the_module_on_one_process_is_the_function():
    inputs = features(10, seed=7)
    criterion = LabelSigmoidLoss(tile_size=4)
    torch.testing.assert_close(
        criterion(*inputs[:2], LABELS, *inputs[2:]),
        label_sigmoid_loss(*inputs[:2], LABELS, *inputs[2:]),
    )
    # 3 labels of sizes 3, 2, 2 and three singletons among 10 samples
    torch.testing.assert_close(criterion.positive_share, torch.tensor((9 + 4 + 4 + 3) / 100))


def test_chance_loss_is_the_best_constant_logit():
    """`B * H(p)` is the smallest loss a single constant logit reaches, found here by search."""
    labels = LABELS
    p = float(positive_share(labels))
    u, v = torch.zeros(10, 8), torch.zeros(10, 8)  # every logit is the bias
    best = min(
        float(label_sigmoid_loss(u, v, labels, 1.0, b, check_finite=False))
        for b in torch.linspace(-5, 5, 2001).tolist()
    )
    assert sigmoid_chance_loss(10, p) == pytest.approx(best, rel=1e-4)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: {**a, "logit_bias": torch.tensor(float("nan"))}, "logit_bias is not finite"),
        (lambda a: {**a, "logit_bias": torch.tensor([1.0, 2.0])}, "logit_bias must be a scalar"),
        (lambda a: {**a, "logit_bias": torch.tensor(1)}, "logit_bias must be floating-point"),
        (lambda a: {**a, "labels": a["labels"][:3]}, "labels has shape"),
        (lambda a: {**a, "mix": LabelMix(a["labels"], torch.full((10,), 1.5))}, "[0, 1]"),
        (
            lambda a: {**a, "mix": LabelMix(torch.full((10,), 99), torch.ones(10))},
            "partner_labels entry must be the label of a batch sample",
        ),
    ],
)
def test_bad_input_is_a_clear_error(change, message):
    u, v, scale, bias = features(10)
    arguments = {"labels": LABELS, "logit_bias": bias, "mix": None}
    arguments = change(arguments)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        label_sigmoid_loss(
            u, v, arguments["labels"], scale, arguments["logit_bias"], mix=arguments["mix"]
        )
