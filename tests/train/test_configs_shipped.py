"""Every config shipped in configs/ is valid, its augmentation included."""

from pathlib import Path

import pytest

from unicl.data import BatchAugment
from unicl.train import load_training_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_configs_are_shipped():
    assert {"demo.yaml"} <= {path.name for path in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_shipped_config_is_valid(path):
    config = load_training_config(path)
    BatchAugment(32, **config.data.augment)
