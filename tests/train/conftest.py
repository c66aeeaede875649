"""Stand-in towers with the `UniCLModel` contract, small enough for exact gradient checks."""

import math
import os
from typing import NamedTuple

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from unicl.objective import target_labels
from unicl.train.launch import ProcessContext, init_process


class TinyTowers(nn.Module):
    """`UniCLModel`'s interface over 4x4 images and character tokens; dropout in the image tower
    so that tests see whether recomputation replays the random masks."""

    embed_dim = 8
    image_size = 4

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.image = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.Dropout(dropout), nn.GELU())
        self.image_projection = nn.Linear(16, self.embed_dim, bias=False)
        self.token_embedding = nn.Embedding(128, 16)
        self.text_projection = nn.Linear(16, self.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.logit_bias = None

    def add_logit_bias(self, init_bias, init_logit_scale):
        self.logit_bias = nn.Parameter(torch.tensor(float(init_bias)))
        with torch.no_grad():
            self.logit_scale.fill_(init_logit_scale)

    def tokenize(self, texts):
        tokens = torch.zeros(len(texts), 6, dtype=torch.long)
        for row, text in enumerate(texts):
            codes = [min(ord(c), 127) for c in text[:6]]
            tokens[row, : len(codes)] = torch.tensor(codes)
        return tokens

    def encode_image(self, images, normalize=False):
        features = self.image_projection(self.image(images))
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, tokens, normalize=False):
        features = self.text_projection(self.token_embedding(tokens).mean(dim=1))
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, images, tokens):
        outputs = (
            self.encode_image(images, normalize=True),
            self.encode_text(tokens, normalize=True),
            self.logit_scale.exp(),
        )
        return outputs if self.logit_bias is None else (*outputs, self.logit_bias)

    def clamp_logit_scale_(self):
        with torch.no_grad():
            self.logit_scale.clamp_(0, math.log(100))


@pytest.fixture
def towers():
    torch.manual_seed(0)
    return TinyTowers()


@pytest.fixture
def step_inputs():
    """A batch of 12: 8 image-label samples of 3 classes and 4 image-text pairs."""
    generator = torch.Generator().manual_seed(1)
    texts = ["a", "b", "c", "a", "b", "c", "a", "b", "red car", "dog", "sky", "tree"]
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, -10, -11, -12, -13])
    return {
        "images": torch.randn(12, 3, 4, 4, generator=generator),
        "texts": texts,
        "labels": labels,
    }


class Batch(NamedTuple):
    """The data stream's batch contract: uint8 images, texts, class ids, TargetM labels, tokens
    (None: the objective tokenises)."""

    images: torch.Tensor
    texts: list
    class_ids: torch.Tensor
    labels: torch.Tensor
    tokens: torch.Tensor | None = None


class ListStream:
    """A resumable stand-in for the training stream: global batches of random 4x4 images (half
    image-label over 3 classes, half image-text), this rank's contiguous slice of each."""

    def __init__(self, global_batch: int, rank: int = 0, world_size: int = 1, steps: int = 64):
        generator = torch.Generator().manual_seed(7)
        self.batches = []
        per_rank = global_batch // world_size
        for step in range(steps):
            images = torch.randint(0, 256, (global_batch, 3, 4, 4), generator=generator)
            class_ids = torch.randint(0, 3, (global_batch,), generator=generator)
            class_ids[global_batch // 2 :] = -1
            texts = [f"c{int(c)}" if c >= 0 else f"s{step}-{i}" for i, c in enumerate(class_ids)]
            mine = slice(rank * per_rank, (rank + 1) * per_rank)
            ids = class_ids[mine]
            self.batches.append(
                Batch(
                    images[mine].to(torch.uint8), texts[mine], ids, target_labels(ids, texts[mine])
                )
            )
        self.position = 0

    def __iter__(self):
        while self.position < len(self.batches):
            self.position += 1
            yield self.batches[self.position - 1]

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, state):
        self.position = state["position"]


def noisy_augment(images: torch.Tensor, class_ids=None) -> torch.Tensor:
    """uint8 -> float with random noise (draws from torch's generator, like real augmentation)."""
    return images.float() / 255 + 0.01 * torch.randn(images.shape)


def join_two_process_group(rank: int, port: int, timeout_minutes: float = 30.0) -> ProcessContext:
    """In a spawned worker: join a 2-rank gloo group as torchrun would (its environment
    variables), with one compute thread."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    return init_process("cpu", timeout_minutes)
