"""ClipLoss and MultiTaskLoss across 2 gloo processes under DDP: the loss and the gradients of one
process on the global batch, also when a rank holds no image-text row or no image-label row."""

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
from unicl import ClipLoss, MultiTaskLoss, clip_loss, multitask_loss
from unicl.train.launch import close_process

pytestmark = pytest.mark.distributed

CLASS_IDS = torch.tensor([0, -1, 1, 2, -1, 0, -1, -1, 1, -1])


class TowersWithHead(nn.Module):
    """Two linear towers, a class head on the raw image embedding and a learnable logit scale."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.image = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)
        self.head = nn.Linear(4, 3)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, images, texts):
        embedded = self.image(images)
        return (
            self.head(embedded),
            F.normalize(embedded, dim=1),
            F.normalize(self.text(texts), dim=1),
            self.logit_scale.exp(),
        )


def global_batch():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(10, 6, generator=generator), torch.randn(10, 5, generator=generator)


def score(loss, outputs, class_ids, criterion=None):
    """`loss` (`clip` or `multitask`) of the model's outputs: the functional form on one process,
    the criterion on a rank."""
    logits, images, texts, scale = outputs
    if loss == "clip":
        return criterion(images, texts, scale) if criterion else clip_loss(images, texts, scale)
    if criterion:
        return criterion(logits, class_ids, images, texts, scale)
    return multitask_loss(logits, class_ids, images, texts, scale, clip_weight=0.5)


def single_process(loss):
    model = TowersWithHead()
    value = score(loss, model(*global_batch()), CLASS_IDS)
    value.backward()
    return value.detach(), {name: p.grad for name, p in model.named_parameters()}


def _worker(rank, port, loss, split, tile_size, directory):
    join_two_process_group(rank, port)
    try:
        model = DistributedDataParallel(
            TowersWithHead(), find_unused_parameters=loss == "clip"
        )  # clip leaves the head unused
        images, texts = global_batch()
        rows = slice(0, split) if rank == 0 else slice(split, None)
        criterion = (
            ClipLoss(tile_size=tile_size)
            if loss == "clip"
            else MultiTaskLoss(clip_weight=0.5, tile_size=tile_size)
        )
        value = score(loss, model(images[rows], texts[rows]), CLASS_IDS[rows], criterion)
        value.backward()
        mean = value.detach().clone()
        dist.all_reduce(mean)
        grads = {
            name: p.grad.clone() if p.grad is not None else torch.zeros_like(p)
            for name, p in model.module.named_parameters()
        }
        torch.save({"loss": mean / 2, "grads": grads}, Path(directory) / f"rank{rank}.pt")
    finally:
        close_process()


@pytest.mark.parametrize(
    ("loss", "split", "tile_size"),
    [
        pytest.param("clip", 5, None, marks=pytest.mark.slow),
        ("clip", 3, 2),
        pytest.param("multitask", 5, None, marks=pytest.mark.slow),
        pytest.param("multitask", 4, 2, marks=pytest.mark.slow),
        ("multitask", 1, None),  # rank 0 holds one image-label row and no image-text row
        pytest.param("multitask", 9, 3, marks=pytest.mark.slow),  # rank 1: one image-text row
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
            expected = grad if grad is not None else torch.zeros_like(result["grads"][name])
            torch.testing.assert_close(result["grads"][name], expected, rtol=1e-5, atol=1e-6)
