"""A real corpus salted with corrupt, truncated, missing and caption-less samples."""

from __future__ import annotations

import csv

import pytest
from PIL import Image

from tests.data.data_corpus import emoji_pairs, write_caption_manifest
from unicl.data import UnifiedStream, open_source
from unicl.data.images import BadSample, load_image
from unicl.errors import UserInputError


@pytest.fixture
def salted_manifest(tmp_path):
    """40 real emoji pairs plus one of each kind of bad sample (4 of 44)."""
    manifest = write_caption_manifest(tmp_path, 40)
    png = emoji_pairs(1)[0][1]
    (tmp_path / "images" / "corrupt.png").write_bytes(b"\x89PNG not really an image")
    (tmp_path / "images" / "truncated.png").write_bytes(png[: len(png) // 2])
    with manifest.open("a", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["images/corrupt.png", "a broken file"])
        writer.writerow(["images/truncated.png", "half a file"])
        writer.writerow(["images/missing.png", "no file at all"])
        writer.writerow([f"images/{emoji_pairs(1)[0][0]}.png", "   "])
    return manifest


def test_bad_samples_are_skipped_and_counted_by_cause(salted_manifest):
    stream = UnifiedStream(
        [str(salted_manifest)], batch_size=5, image_size=16, max_bad_fraction=0.2
    )
    keys = [key for batch in stream for key in batch.keys]
    report = stream.last_epoch_bad
    assert dict(report.counts) == {
        "unreadable": 1,
        "truncated": 1,
        "missing": 1,
        "empty_caption": 1,
    }
    assert report.read == 44 and len(keys) == 40
    assert not any(name in key for key in keys for name in ("corrupt", "truncated", "missing"))
    assert "missing.png" in report.summary()


def test_too_many_bad_samples_stop_the_run_naming_examples(salted_manifest):
    stream = UnifiedStream(
        [str(salted_manifest)], batch_size=5, image_size=16, max_bad_fraction=0.05
    )
    with pytest.raises(
        UserInputError, match=r"samples were bad .*images/(corrupt|truncated|missing)\.png"
    ):
        list(stream)


def test_decompression_bombs_are_refused_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (3000, 3000)).save(path)
    with pytest.raises(BadSample) as error:
        load_image(path, "big.png", max_pixels=1000 * 1000)
    assert error.value.cause == "too_large"
    assert load_image(path, "big.png").size == (3000, 3000)


def test_inspecting_a_source_skips_its_bad_samples(salted_manifest):
    assert sum(1 for _ in open_source(str(salted_manifest)).samples()) == 40
