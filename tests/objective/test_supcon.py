"""supcon_loss: Khosla et al.'s equation, anchors without positives left out."""

import pytest
import torch

from tests.objective.reference import normalized, supcon_by_loops
from unicl import supcon_loss


@pytest.mark.parametrize(
    "labels",
    [torch.tensor([0, 1, 0, 1, 2, 2]), torch.tensor([0, 0, 1, 2, 3, 1, 5])],
    ids=["all-have-positives", "some-without"],
)
def test_value_matches_the_equation(labels):
    z = normalized(len(labels), 8, seed=30)
    expected = supcon_by_loops(z, labels, 0.1)
    assert supcon_loss(z, labels, 0.1).item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_batch_without_any_positive_is_an_error():
    with pytest.raises(ValueError, match="no sample has a positive"):
        supcon_loss(normalized(3, 4, seed=31), torch.arange(3))
