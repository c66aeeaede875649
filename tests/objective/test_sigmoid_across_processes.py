"""LabelSigmoidLoss, and UniCLLoss with mixed images, across 2 gloo processes under DDP: the loss
and the gradients of one process on the global batch (the label-aware sigmoid loss gathers only
the texts)."""

import tempfile
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from tests.conftest import free_port
from tests.train.conftest import join_two_process_group
from unicl import LabelMix, LabelSigmoidLoss, UniCLLoss, label_sigmoid_loss, unicl_loss
from unicl.train.launch import close_process

pytestmark = pytest.mark.distributed

LABELS = torch.tensor([0, -3, 1, 2, -4, 0, 1, -5, 1, 2])
PARTNERS = torch.tensor([1, -3, 0, 1, -4, 2, 1, -5, 2, 0])
WEIGHTS = torch.tensor([0.25, 1.0, 0.5, 0.75, 1.0, 0.1, 1.0, 1.0, 0.6, 0.9])


class Towers(nn.Module):
    """Two linear towers, a learnable logit scale and bias."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.image = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))
        self.logit_bias = nn.Parameter(torch.tensor(-2.0))

    def forward(self, images, texts):
        return (
            F.normalize(self.image(images), dim=1),
            F.normalize(self.text(texts), dim=1),
            self.logit_scale.exp(),
            self.logit_bias,
        )


def global_batch():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(10, 6, generator=generator), torch.randn(10, 5, generator=generator)


def score(loss, outputs, rows, criterion=None):
    images, texts, scale, bias = outputs
    mix = LabelMix(PARTNERS[rows], WEIGHTS[rows])
    if loss == "sigmoid":
        if criterion:
            return criterion(images, texts, LABELS[rows], scale, bias, mix=mix)
        return label_sigmoid_loss(images, texts, LABELS[rows], scale, bias, mix=mix)
    if criterion:
        return criterion(images, texts, LABELS[rows], scale, mix=mix) + 0 * bias
    return unicl_loss(images, texts, LABELS[rows], scale, mix=mix) + 0 * bias


def single_process(loss):
    model = Towers()
    value = score(loss, model(*global_batch()), slice(None))
    value.backward()
    return value.detach(), {name: p.grad for name, p in model.named_parameters()}


def _worker(rank, port, loss, split, tile_size, directory):
    join_two_process_group(rank, port)
    try:
        model = DistributedDataParallel(Towers())
        images, texts = global_batch()
        rows = slice(0, split) if rank == 0 else slice(split, None)
        criterion = (
            LabelSigmoidLoss(tile_size=tile_size)
            if loss == "sigmoid"
            else UniCLLoss(tile_size=tile_size)
        )
        value = score(loss, model(images[rows], texts[rows]), rows, criterion)
        value.backward()
        mean = value.detach().clone()
        dist.all_reduce(mean)
        grads = {name: p.grad.clone() for name, p in model.module.named_parameters()}
        torch.save({"loss": mean / 2, "grads": grads}, Path(directory) / f"rank{rank}.pt")
    finally:
        close_process()


@pytest.mark.parametrize(
    ("loss", "split", "tile_size"),
    [
        ("sigmoid", 4, 3),
        pytest.param("sigmoid", 5, None, marks=pytest.mark.slow),
        ("unicl-mixed", 6, None),
        pytest.param("unicl-mixed", 3, 2, marks=pytest.mark.slow),
    ],
)
def test_two_processes_equal_one_process_on_the_global_batch(loss, split, tile_size):
    expected_loss, expected_grads = single_process(loss)
    with tempfile.TemporaryDirectory() as directory:
        args = (free_port(), loss, split, tile_size, directory)
        mp.spawn(_worker, args=args, nprocs=2, join=True)
        results = [torch.load(Path(directory) / f"rank{rank}.pt") for rank in range(2)]
    for result in results:
        torch.testing.assert_close(result["loss"], expected_loss)
        for name, grad in expected_grads.items():
            torch.testing.assert_close(result["grads"][name], grad, rtol=1e-5, atol=1e-6)
