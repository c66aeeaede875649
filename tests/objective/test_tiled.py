"""The tiled loss: the dense loss's value and gradients for every tile size."""

import pytest
import torch

from tests.objective.reference import normalized
from tests.objective.test_loss import SCALE, mixed_labels
from unicl import unicl_loss
from unicl.objective.logsumexp import dense_logsumexp, tiled_logsumexp


def value_and_gradients(labels, tile_size, dtype=torch.float32):
    u = normalized(len(labels), 16, seed=20, dtype=dtype, requires_grad=True)
    v = normalized(len(labels), 16, seed=21, dtype=dtype, requires_grad=True)
    scale = torch.tensor(SCALE, requires_grad=True)
    loss = unicl_loss(u, v, labels, scale, tile_size=tile_size)
    return (loss, *torch.autograd.grad(loss, (u, v, scale)))


@pytest.mark.parametrize("tile_size", [1, 3, 5, 11, 12, 40])
@pytest.mark.parametrize(
    "labels", [mixed_labels(), torch.arange(12), torch.zeros(12, dtype=torch.long)]
)
def test_tiled_equals_dense(labels, tile_size):
    dense = value_and_gradients(labels, None)
    tiled = value_and_gradients(labels, tile_size)
    for got, want in zip(tiled, dense, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_tiled_with_bfloat16_inputs_matches_dense():
    dense = value_and_gradients(mixed_labels(), None, torch.bfloat16)
    tiled = value_and_gradients(mixed_labels(), 5, torch.bfloat16)
    for got, want in zip(tiled, dense, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("with_columns", [True, False])
def test_rectangular_logsumexp_gradients(with_columns):
    """Local rows against more columns, as each rank computes them."""
    a = (7.0 * normalized(5, 8, seed=22)).requires_grad_()
    b = normalized(13, 8, seed=23, requires_grad=True)
    weights = torch.linspace(0.5, 1.5, 5), torch.linspace(-1.0, 1.0, 13)

    def total(lse):
        rows, columns = lse
        value = (rows * weights[0]).sum()
        return value + (columns * weights[1]).sum() if with_columns else value

    dense = total(dense_logsumexp(a, b, with_columns=with_columns))
    tiled = total(tiled_logsumexp(a, b, 4, with_columns=with_columns))
    torch.testing.assert_close(tiled, dense)
    for got, want in zip(
        torch.autograd.grad(tiled, (a, b)),
        torch.autograd.grad(dense, (a, b)),
        strict=True,
    ):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_gradcheck_in_float64():
    a = normalized(4, 3, seed=24, dtype=torch.float64, requires_grad=True)
    b = normalized(6, 3, seed=25, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *x: tiled_logsumexp(*x, 4), (a * 3.0, b))


def test_the_tiled_backward_is_not_differentiated_again():
    a = normalized(4, 3, seed=27, requires_grad=True)
    b = normalized(6, 3, seed=28)
    row_lse, _ = tiled_logsumexp(a * 3.0, b, 4)
    upstream = torch.ones(4, requires_grad=True)
    (grad,) = torch.autograd.grad(row_lse, a, upstream, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad.sum().backward()


def test_tile_size_must_be_positive():
    u = normalized(4, 8, seed=26)
    with pytest.raises(ValueError, match="tile_size"):
        tiled_logsumexp(u, u, 0)


def precision_value_and_gradients(precision, labels):
    u = normalized(len(labels), 16, seed=20, requires_grad=True)
    v = normalized(len(labels), 16, seed=21, requires_grad=True)
    scale = torch.tensor(SCALE, requires_grad=True)
    loss = unicl_loss(u, v, labels, scale, tile_size=5, tile_precision=precision)
    return (loss, *torch.autograd.grad(loss, (u, v, scale)))


def test_bf16_tiles_round_the_operands_and_stay_close_to_float32():
    labels = mixed_labels()
    exact = value_and_gradients(labels, None)
    rounded = precision_value_and_gradients("bf16", labels)
    assert rounded[0].dtype == torch.float32
    assert not torch.equal(rounded[0], exact[0])  # the products did see bfloat16 operands
    for got, want in zip(rounded, exact, strict=True):
        assert float((got - want).detach().norm() / want.detach().norm()) < 3e-2


def test_tf32_tiles_leave_the_matmul_precision_as_they_found_it():
    before = torch.get_float32_matmul_precision()
    labels = mixed_labels()
    for got, want in zip(
        precision_value_and_gradients("tf32", labels),
        value_and_gradients(labels, None),
        strict=True,
    ):
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-5)
    assert torch.get_float32_matmul_precision() == before


def test_an_unknown_tile_precision_is_refused():
    u = normalized(4, 8, seed=26)
    with pytest.raises(ValueError, match="precision must be one of"):
        tiled_logsumexp(u, u, 2, precision="fp8")
