"""Model-test fixtures. Hugging Face code must never reach the network in these tests."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest

from unicl.models import create_model


@pytest.fixture
def tiny_model():
    """A freshly initialised `unicl-tiny` in eval mode."""
    return create_model("unicl-tiny").eval()


def parameter_count(module) -> int:
    return sum(p.numel() for p in module.parameters())
