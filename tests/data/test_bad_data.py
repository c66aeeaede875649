"""A real corpus salted with corrupt, truncated, missing and caption-less samples."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
import webdataset as wds
from PIL import Image

from tests.data.data_corpus import emoji_pairs, write_caption_manifest
from unicl.data import UnifiedStream, open_source
from unicl.data.images import BadSample, load_image
from unicl.data.shards import iterate_shard
from unicl.data.source import decode
from unicl.data.writers import write_shards
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


def test_cut_short_and_damaged_shards_are_counted(tmp_path):
    manifest = write_caption_manifest(tmp_path / "m", 30)
    write_shards(open_source(str(manifest)), tmp_path / "s", per_shard=10)
    cut = tmp_path / "s" / "shard-000002.tar"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    png = emoji_pairs(1)[0][1]
    with wds.TarWriter(str(tmp_path / "s" / "shard-000003.tar")) as sink:
        sink.write({"__key__": "corrupt", "png": png[:40] + bytes(200), "txt": "a damaged image"})
        sink.write({"__key__": "silent", "png": png, "txt": ""})
        sink.write({"__key__": "fine", "png": png, "txt": "an intact pair"})
    source = open_source(str(tmp_path / "s" / "shard-{000000..000003}.tar"))
    assert source.shard_sizes == [10, 10, 10, 3]
    causes = Counter()
    for raw in source.raw_samples():
        try:
            decode(raw)
        except BadSample as error:
            causes[error.cause] += 1
    kept = sum(1 for _ in iterate_shard(str(cut), on_error=wds.ignore_and_continue))
    assert causes["truncated"] == 10 - kept and causes["empty_caption"] == 1
    assert 1 <= causes["unreadable"] <= 2  # the corrupt PNG, and the sample cut in half if any

    stream = UnifiedStream([source], batch_size=3, image_size=16, max_bad_fraction=0.5)
    texts = [text for batch in stream for text in batch.texts]
    report = stream.last_epoch_bad
    assert len(texts) == 33 and "a damaged image" not in texts
    assert report.read == report.bad + len(texts) and report.counts["truncated"] >= 10 - kept
