"""Fixtures for the data tests: small real corpora in temporary folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.data_corpus import write_caption_manifest, write_image_folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "fashion", 60)


@pytest.fixture
def caption_manifest(tmp_path: Path) -> Path:
    return write_caption_manifest(tmp_path / "emoji", 40)
