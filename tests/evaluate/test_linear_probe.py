"""The linear probe on a real model's frozen image features."""

import pytest

from unicl.errors import UserInputError
from unicl.evaluate import linear_probe


def test_colours_are_linearly_separable_in_random_features(tiny_model, colour_folder, caplog):
    train = colour_folder("train", per_class=8, seed=0)
    test = colour_folder("test", per_class=4, seed=1000)
    result = linear_probe(tiny_model, str(train), str(test), l2_grid=(1.0, 1e-2))
    assert result["top1"] == 1.0
    assert result["num_train"] == 24 and result["num_test"] == 12
    assert result["l2"] in (1.0, 1e-2)
    assert set(result["validation_top1"]) == {"1", "0.01"}
    # with two strengths the best is always at an edge of the grid, which is said
    assert result["l2_at_grid_edge"] is True
    assert "at the edge of its grid" in caplog.text


def test_a_single_strength_is_no_edge(tiny_model, colour_folder):
    train = colour_folder("train", per_class=4, seed=0)
    result = linear_probe(tiny_model, str(train), str(train), l2_grid=(1e-2,))
    assert result["l2"] == 1e-2 and result["l2_at_grid_edge"] is False


def test_splits_with_different_classes_are_refused(tiny_model, colour_folder):
    train = colour_folder("train")
    test = colour_folder("test")
    (test / "red").rename(test / "crimson")
    with pytest.raises(UserInputError, match="differ from the test classes"):
        linear_probe(tiny_model, str(train), str(test))
