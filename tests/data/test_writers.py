"""Writing sources as shards and folders, and preparing Fashion-MNIST (no network)."""

from __future__ import annotations

import json

import pytest

from tests.data.data_corpus import (
    CLASSES,
    FASHION,
    emoji_pairs,
    fashion_arrays,
    write_caption_manifest,
    write_idx_folder,
)
from unicl.data import open_source
from unicl.data.prepare import download_fashion_mnist, prepare_fashion_mnist
from unicl.data.writers import write_image_folder, write_shards
from unicl.errors import UserInputError


def test_a_manifest_round_trips_through_shards_with_stats(tmp_path):
    manifest = write_caption_manifest(tmp_path / "m", 25)
    report = write_shards(open_source(str(manifest)), tmp_path / "shards", per_shard=10)
    assert (report["written"], report["shards"], report["bad"]) == (25, 3, {})
    stats = json.loads((tmp_path / "shards" / "shard-000002_stats.json").read_text())
    assert stats == {"successes": 5}
    shards = open_source(report["pattern"])
    assert shards.shard_sizes == [10, 10, 5]
    assert [text for _, text, _ in shards.samples()] == [c for _, _, c in emoji_pairs(25)]


def test_bad_files_are_left_out_of_shards(tmp_path):
    manifest = write_caption_manifest(tmp_path / "m", 5)
    with manifest.open("a") as file:
        file.write("images/gone.png,a missing image\n")
    report = write_shards(open_source(str(manifest)), tmp_path / "shards", per_shard=10)
    assert report["written"] == 5 and report["bad"] == {"missing": 1}


def test_arrays_become_an_image_folder_and_nothing_is_overwritten(tmp_path):
    source = open_source(f"{FASHION}#t10k")
    source.labels = source.labels[:30]
    report = write_image_folder(source, tmp_path / "tree")
    assert report["written"] == 30
    tree = open_source(str(tmp_path / "tree"))
    labels = fashion_arrays(30)[1]
    assert sorted(tree.class_names) == sorted({CLASSES[label] for label in labels})
    assert not list(tmp_path.glob(".tree.*"))
    with pytest.raises(UserInputError, match="already exists"):
        write_image_folder(source, tmp_path / "tree")


def test_prepare_reads_a_given_idx_folder_into_shards(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", {"train": 50, "t10k": 20})
    report = prepare_fashion_mnist(tmp_path / "out", "shards", per_shard=30, source=folder)
    assert report["train"]["written"] == 50 and report["test"]["written"] == 20
    test = open_source({"location": report["test"]["pattern"], "classes": "fashion-mnist"})
    assert test.class_names == list(CLASSES)
    assert [c for _, _, c in test.samples()] == fashion_arrays(20)[1].tolist()


def test_download_checks_files_before_keeping_them(tmp_path):
    mirror = write_idx_folder(tmp_path / "mirror", {"train": 30, "t10k": 10})
    folder = download_fashion_mnist(tmp_path / "got", base_url=mirror.as_uri() + "/")
    assert len(open_source(f"{folder}#t10k")) == 10
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not idx")
    with pytest.raises(UserInputError, match="not an IDX file"):
        download_fashion_mnist(tmp_path / "bad", base_url=mirror.as_uri() + "/")
    assert not (tmp_path / "bad" / "t10k-labels-idx1-ubyte.gz").exists()
