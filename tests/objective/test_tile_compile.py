"""Compiled tiles (`tile_compile`) give the eager tiles' values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unicl import clip_loss, label_sigmoid_loss, target_labels, unicl_loss
from unicl.objective.loss import similarity_logsumexp

pytestmark = pytest.mark.slow  # each kernel compiles on first use: seconds per function on a CPU


def features(batch: int = 48, dim: int = 16, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    images = F.normalize(torch.randn(batch, dim, generator=generator), dim=1).requires_grad_()
    texts = F.normalize(torch.randn(batch, dim, generator=generator), dim=1).requires_grad_()
    scale = torch.tensor(20.0, requires_grad=True)
    class_ids = torch.randint(0, 5, (batch,), generator=generator)
    class_ids[batch // 2 :] = -1
    labels = target_labels(class_ids, [f"caption {i}" for i in range(batch)])
    return images, texts, scale, labels


def value_and_grads(loss_fn, *inputs):
    loss = loss_fn(*inputs)
    grads = torch.autograd.grad(loss, [t for t in inputs if t.requires_grad])
    return loss.detach(), grads


def assert_same(compiled, eager):
    torch.testing.assert_close(compiled[0], eager[0], rtol=1e-6, atol=1e-6)
    for got, want in zip(compiled[1], eager[1], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)  # exp may round apart


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_unicl_loss_with_compiled_tiles_equals_eager_tiles(precision):
    for batch, seed in ((48, 0), (40, 1)):  # a second size: a last, smaller micro-batch
        images, texts, scale, labels = features(batch, seed=seed)

        def loss(compile, labels=labels):
            return lambda i, t, s: unicl_loss(
                i, t, labels, s, tile_size=16, tile_precision=precision, tile_compile=compile
            )

        assert_same(
            value_and_grads(loss(True), images, texts, scale),
            value_and_grads(loss(False), images, texts, scale),
        )


def test_row_only_logsumexp_of_the_sharded_loss_with_compiled_tiles():
    images, texts, _, _ = features()

    def rows(compile):
        return lambda a, b: similarity_logsumexp(
            a * 20.0, b, 16, with_columns=False, compile=compile
        )[0].sum()

    assert_same(
        value_and_grads(rows(True), images, texts), value_and_grads(rows(False), images, texts)
    )


def test_clip_and_sigmoid_losses_with_compiled_tiles():
    images, texts, scale, labels = features()
    bias = torch.tensor(-5.0, requires_grad=True)
    for loss in (
        lambda compile: lambda *x: clip_loss(*x, tile_size=16, tile_compile=compile),
        lambda compile: (
            lambda i, t, s: label_sigmoid_loss(
                i, t, labels, s, bias, tile_size=16, tile_compile=compile
            )
        ),
    ):
        assert_same(
            value_and_grads(loss(True), images, texts, scale),
            value_and_grads(loss(False), images, texts, scale),
        )
