"""Shared test settings: small thread pools (CI machines have 2 cores) and fixed seeds."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
