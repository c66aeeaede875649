"""UniCL's loss with mixed images (mixup, cutmix): the mixed label distributions as targets,
checked against loops; unmixed rows and weight 1 give the plain loss."""

import pytest
import torch

from tests.objective.reference import mixed_unicl_by_loops, normalized, unicl_loss_by_loops
from unicl import LabelMix, unicl_loss

LABELS = torch.tensor([0, 1, 0, 2, 1, 0, -5, -6, 2, -7])
PARTNERS = torch.tensor([1, 2, 0, 0, 1, 1, -5, -6, 2, -7])  # only image-label rows mixed
WEIGHTS = torch.tensor([0.3, 0.9, 1.0, 0.5, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0])


def features(seed=0):
    return (
        normalized(10, 8, seed=seed, requires_grad=True),
        normalized(10, 8, seed=seed + 100, requires_grad=True),
        torch.tensor(12.0, requires_grad=True),
    )


@pytest.mark.parametrize("tile_size", [None, 3])
def test_mixed_targets_match_the_loops(tile_size):
    u, v, scale = features()
    ours = unicl_loss(u, v, LABELS, scale, mix=LabelMix(PARTNERS, WEIGHTS), tile_size=tile_size)
    expected = mixed_unicl_by_loops(u, v, LABELS, PARTNERS, WEIGHTS, 12.0)
    torch.testing.assert_close(ours.double(), expected)
    # and its gradients are those of the loop form
    got = torch.autograd.grad(ours, (u, v, scale))
    want = torch.autograd.grad(
        mixed_unicl_by_loops(u, v, LABELS, PARTNERS, WEIGHTS, scale).float(), (u, v, scale)
    )
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_weight_one_is_the_plain_loss_and_mixing_changes_it():
    u, v, scale = features(seed=2)
    plain = unicl_loss(u, v, LABELS, scale)
    torch.testing.assert_close(
        unicl_loss(u, v, LABELS, scale, mix=LabelMix(PARTNERS, torch.ones(10))), plain
    )
    torch.testing.assert_close(plain.double(), unicl_loss_by_loops(u, v, LABELS, 12.0))
    mixed = unicl_loss(u, v, LABELS, scale, mix=LabelMix(PARTNERS, WEIGHTS))
    assert abs(float((mixed - plain).detach())) > 1e-3


def test_a_fully_pasted_image_belongs_to_its_partners_label_only():
    """Weight 0 (cutmix's box covering the whole image): the row is an image of the partner's
    class, so it scores as an unmixed image with that label in the image-to-text direction."""
    u, v, scale = features(seed=3)
    mix = LabelMix(torch.tensor([1, 1, 0, 2, 1, 0, -5, -6, 2, -7]), torch.tensor([0.0] + [1.0] * 9))
    expected = mixed_unicl_by_loops(u, v, LABELS, mix.partner_labels, mix.weights, 12.0)
    torch.testing.assert_close(unicl_loss(u, v, LABELS, scale, mix=mix).double(), expected)
