"""Model-test fixtures. Hugging Face code must never reach the network in these tests."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import socket

import pytest

from unicl.models import create_model


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model code path tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def tiny_model():
    """A freshly initialised `unicl-tiny` in eval mode."""
    return create_model("unicl-tiny").eval()


def parameter_count(module) -> int:
    return sum(p.numel() for p in module.parameters())
