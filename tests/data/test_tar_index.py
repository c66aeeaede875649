"""Reading every C-th sample of a shard through its tar index gives what streaming gives."""

from __future__ import annotations

import gzip
import io
import itertools
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.data.data_corpus import write_label_shards
from unicl.data import open_source, parse_source
from unicl.data.images import BadSample
from unicl.data.tar_index import sample_index

DEMO_SHARD = "data/demo/emoji/train-000000.tar"


def summary(raws) -> list[tuple]:
    """What a reader hands on: key, image bytes (or the bad sample's message), caption, class."""
    return [(raw.key, image_of(raw), raw.text, raw.class_id) for raw in raws]


def image_of(raw) -> bytes | str:
    return str(raw.image) if isinstance(raw.image, BadSample) else raw.image


def kept_by_streaming(source, shard: int, start: int, step: int) -> list[tuple]:
    return summary(itertools.islice(source.read_shard(shard), start, None, step))


@pytest.mark.parametrize("step", [2, 3, 7])
def test_the_demo_caption_shard_read_by_index_equals_the_streamed_samples(step):
    source = open_source(parse_source(DEMO_SHARD))
    assert sample_index(Path(DEMO_SHARD)) is not None
    for start in range(step):
        indexed = summary(source.read_shard(0, start, step))
        assert indexed == kept_by_streaming(source, 0, start, step)
        assert len(indexed) == len(range(start, source.shard_sizes[0], step))


def test_class_shards_with_stats_files_read_by_index(tmp_path):
    pattern = write_label_shards(tmp_path, count=50, per_shard=20)
    source = open_source(parse_source(pattern))
    for shard in range(len(source.shard_sizes)):
        for start in range(4):
            assert summary(source.read_shard(shard, start, 4)) == kept_by_streaming(
                source, shard, start, 4
            )


def add(tar: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def odd_shard(path: Path) -> Path:
    """Captions with what webdataset skips or folds: a meta file, a folder entry, a member
    without an extension, upper-case extensions, keys with dots after the first, a sample with
    a json caption, and a sample whose class text is not a number."""
    image = Path("data/demo/emoji/train-000000.tar").read_bytes()[:2000]
    with tarfile.open(path, "w") as tar:
        add(tar, "__meta__", b"{}")
        add(tar, "folder", kind=tarfile.DIRTYPE)
        for i in range(9):
            add(tar, f"folder/s{i}.JPG", image[i * 100 :])
            add(tar, f"folder/s{i}.TXT", f"caption {i}".encode())
        add(tar, "README", b"no extension")
        add(tar, "folder/j.jpg", image)
        add(tar, "folder/j.json", b'{"caption": "from json"}')
        add(tar, "folder/k.v1.jpg", image)
    return path


def test_members_webdataset_skips_or_folds_are_skipped_or_folded_alike(tmp_path):
    path = odd_shard(tmp_path / "odd.tar")
    source = open_source(parse_source(str(path)))
    assert source.shard_sizes == [11]
    for start in range(3):
        assert summary(source.read_shard(0, start, 3)) == kept_by_streaming(source, 0, start, 3)
    assert summary(source.read_shard(0, 0, 3))[-1][2] == "from json"


def test_a_shard_cut_short_gets_no_index_and_is_streamed_with_its_losses(tmp_path):
    whole = odd_shard(tmp_path / "whole.tar")
    source = open_source(parse_source(str(whole)))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    source.urls = [str(cut)]  # the same promised size (11), now from a damaged file
    assert sample_index(cut) is None
    read = summary(source.read_shard(0, 1, 3))
    assert read == kept_by_streaming(source, 0, 1, 3)
    assert read[-1][1].endswith("truncated (shard holds 5 of 11 samples)")  # the lost ones


def test_a_stats_file_promising_more_than_the_tar_holds_gives_truncated_samples(tmp_path):
    path = odd_shard(tmp_path / "odd.tar")
    source = open_source(parse_source(str(path)))
    source.shard_sizes = [15]
    read = summary(source.read_shard(0, 0, 4))
    assert read == kept_by_streaming(source, 0, 0, 4)
    assert [key.rsplit("#", 1)[-1] for key, *_ in read[-1:]] == ["12"]
    assert read[-1][1].endswith("truncated (shard holds 11 of 15 samples)")


def test_compressed_and_duplicate_member_tars_are_not_indexed(tmp_path):
    plain = odd_shard(tmp_path / "odd.tar")
    packed = tmp_path / "odd.tar.gz"
    with open(plain, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert sample_index(packed) is None
    twice = tmp_path / "twice.tar"
    with tarfile.open(twice, "w") as tar:
        add(tar, "a.txt", b"one")
        add(tar, "a.txt", b"two")
    assert sample_index(twice) is None


def test_a_rewritten_shard_is_indexed_again(tmp_path):
    path = odd_shard(tmp_path / "odd.tar")
    first = sample_index(path)
    with tarfile.open(path, "w") as tar:
        add(tar, "x.txt", b"only")
    os.utime(path, ns=(1, 1))
    again = sample_index(path)
    assert len(first) == 11 and again is not first
    assert (again.keys, again.extensions, again.offsets.tolist(), again.lengths.tolist()) == (
        ["x"],
        ("txt",),
        [512],
        [4],
    )
