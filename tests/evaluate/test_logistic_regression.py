"""The linear probe: an exact L2-regularised logistic regression with a validation-chosen strength."""

import pytest
import torch
import torch.nn.functional as F

from unicl.evaluate.logistic_regression import (
    fit_logistic_regression,
    select_l2,
    stratified_split,
)


def _blobs(per_class, num_classes, dim, spread, seed=0):
    generator = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.randn(num_classes, dim, generator=generator)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    features = centres[labels] + spread * torch.randn(len(labels), dim, generator=generator)
    return features, labels


def test_fit_reaches_the_regularised_optimum():
    features, labels = _blobs(40, 3, 5, spread=4.0)
    probe = fit_logistic_regression(features, labels, 3, l2=0.1)
    weight = probe.weight.clone().requires_grad_(True)
    bias = probe.bias.clone().requires_grad_(True)
    standardised = (features - probe.mean) / probe.std
    loss = F.cross_entropy(standardised @ weight + bias, labels) + 0.05 * weight.square().sum()
    loss.backward()
    assert weight.grad.abs().max().item() < 1e-4
    assert bias.grad.abs().max().item() < 1e-4


def test_separable_classes_are_classified_correctly():
    features, labels = _blobs(30, 4, 8, spread=0.5)
    probe = fit_logistic_regression(features, labels, 4, l2=1e-3)
    assert (probe.logits(features).argmax(dim=1) == labels).all()


def test_stronger_regularisation_shrinks_the_weights():
    features, labels = _blobs(30, 3, 6, spread=2.0)
    norms = [
        fit_logistic_regression(features, labels, 3, l2=l2).weight.norm().item()
        for l2 in (1.0, 1e-2, 1e-4)
    ]
    assert norms[0] < norms[1] < norms[2]


def test_a_warm_start_reaches_the_same_solution():
    features, labels = _blobs(30, 3, 6, spread=2.0)
    cold = fit_logistic_regression(features, labels, 3, l2=0.01)
    start = fit_logistic_regression(features, labels, 3, l2=1.0)
    warm = fit_logistic_regression(features, labels, 3, l2=0.01, init=start)
    assert torch.allclose(warm.weight, cold.weight, atol=1e-3)


def test_stratified_split_holds_out_a_share_of_every_class():
    labels = torch.tensor([0] * 10 + [1] * 5 + [2] * 2)
    fit, held = stratified_split(labels, 0.2, torch.Generator().manual_seed(0))
    assert sorted(torch.cat([fit, held]).tolist()) == list(range(len(labels)))
    assert labels[held].bincount(minlength=3).tolist() == [2, 1, 1]


def test_select_l2_prefers_strong_regularisation_when_features_are_mostly_noise():
    # 2 informative dimensions among 200 noisy ones and few samples: weak L2 over-fits the noise.
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(2).repeat(30)
    features = torch.randn(60, 202, generator=generator)
    features[:, :2] += 1.5 * F.one_hot(labels, 2)
    best, scores = select_l2(features, labels, 2, l2_grid=(1.0, 1e-6), validation_fraction=0.5)
    assert set(scores) == {1.0, 1e-6}
    assert best == 1.0
    assert scores[1.0] > scores[1e-6]


def test_select_l2_rejects_a_validation_fraction_outside_zero_and_one():
    features, labels = _blobs(5, 2, 3, spread=1.0)
    with pytest.raises(ValueError, match="validation_fraction"):
        select_l2(features, labels, 2, validation_fraction=1.0)
