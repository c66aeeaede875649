"""Shared test settings: small thread pools (CI machines have 2 cores) and fixed seeds; helpers
that several test packages use."""

import socket

import pytest
import torch

from unicl.models import create_model

PRETRAINED_MODELS = ("unicl-tiny-minilm", "unicl-lite")
"""Shipped models with pretrained towers: their weights are read from disk, so they cannot be
built on the meta device."""


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield


def build_shipped_model(name: str):
    """A shipped model by name: on the meta device (no memory, no weights) unless its towers are
    pretrained and must be read from disk."""
    if name in PRETRAINED_MODELS:
        return create_model(name)
    with torch.device("meta"):
        return create_model(name)


def free_port() -> int:
    """A TCP port nobody listens on, for a spawned process group's rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
