"""Shards read through a URL or a `pipe:` command, as webdataset opens them: the same samples as
the local files, sizes from `_stats.json` fetched the same way, and shards that fail during a run
counted and skipped (all of them failing stops the run with one line)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from tests.data.data_corpus import write_caption_manifest
from unicl.data import UnifiedStream, open_source
from unicl.data.readers import detect_kind, parse_source
from unicl.data.shards import sizes_file
from unicl.data.writers import write_shards
from unicl.errors import UserInputError

PATTERN = "shard-{000000..000003}.tar"


@pytest.fixture
def shards(tmp_path) -> Path:
    """40 emoji pairs in 4 shards of 10, with img2dataset's `_stats.json` files."""
    write_shards(open_source(str(write_caption_manifest(tmp_path / "m", 40))), tmp_path / "s", 10)
    return tmp_path / "s"


def texts(source) -> list[str]:
    return [raw.text for raw in source.raw_samples()]


@pytest.mark.parametrize("scheme", ["file://{}", "pipe:cat {}"])
def test_urls_and_pipes_read_the_same_samples_as_the_files(shards, scheme):
    location = scheme.format(shards / PATTERN)
    assert detect_kind(parse_source(location)) == "shards"
    remote, local = open_source(location), open_source(str(shards / PATTERN))
    assert remote.shard_sizes == local.shard_sizes == [10, 10, 10, 10]
    assert texts(remote) == texts(local)
    assert remote.urls[1] == scheme.format(shards / "shard-000001.tar")

    def epoch(source) -> list[list[str]]:
        return [b.texts for b in UnifiedStream([source], batch_size=5, image_size=8, seed=1)]

    assert epoch(remote) == epoch(local)


def test_shard_sizes_are_read_from_stats_fetched_through_the_pipe(shards):
    (shards / "sizes.json").unlink()  # img2dataset writes none
    stats = shards / "shard-000002_stats.json"
    stats.write_text(json.dumps({**json.loads(stats.read_text()), "successes": 12}))
    source = open_source(f"pipe:cat {shards / PATTERN}")
    assert source.shard_sizes == [10, 10, 12, 10]  # not counted: the stats file was believed
    missing = [raw.key for raw in source.read_shard(2)][10:]
    assert missing == [f"pipe:cat {shards / 'shard-000002.tar'}#{i}" for i in (10, 11)]


def test_one_sizes_file_gives_every_shard_its_size_with_one_request(shards, tmp_path):
    """OpenCLIP's `sizes.json` (as `data shard` writes it) is read once for the folder, through
    the same command as the shards; a shard it does not list falls back to its `_stats.json`."""
    sizes = json.loads((shards / "sizes.json").read_text())
    assert sizes == {f"shard-{i:06d}.tar": 10 for i in range(4)}
    (shards / "sizes.json").write_text(json.dumps({**sizes, "shard-000001.tar": 11}))
    (shards / "shard-000001_stats.json").unlink()
    stats = shards / "shard-000003_stats.json"
    stats.write_text(json.dumps({"successes": 13}))
    (shards / "sizes.json").write_text(
        json.dumps({"shard-000000.tar": 10, "shard-000001.tar": 11, "shard-000002.tar": 10})
    )
    log, fetch = tmp_path / "requests.log", tmp_path / "fetch.sh"
    fetch.write_text(f'basename "$1" >> {log}; cat "$1"\n')
    source = open_source(f"pipe:sh {fetch} {shards / PATTERN}")
    assert source.shard_sizes == [10, 11, 10, 13]
    requests = log.read_text().split()
    # the folder's sizes.json, the first shard (to tell its kind), the unlisted shard's stats
    assert sorted(requests) == ["shard-000000.tar", "shard-000003_stats.json", "sizes.json"]


def test_a_shard_failing_during_a_run_is_counted_and_skipped_with_a_warning(shards, caplog):
    source = open_source(f"pipe:cat {shards / PATTERN}")
    (shards / "shard-000002.tar").unlink()  # gone after the source was opened
    stream = UnifiedStream([source], batch_size=5, image_size=8, max_bad_fraction=0.5)
    with caplog.at_level(logging.WARNING, logger="unicl.data"):
        read = [key for batch in stream for key in batch.keys]
    report = stream.last_epoch_bad  # an epoch of 40 goes on into a second pass to fill it
    assert len(read) == 40 and not any("shard-000002" in key for key in read)
    assert set(report.counts) == {"truncated"} and report.read == report.bad + 40
    assert 10 <= report.bad <= 20  # the whole failed shard, and part of it again
    failed = f"pipe:cat {shards / 'shard-000002.tar'}"
    assert stream.last_epoch_bad.examples["truncated"][0] == f"{failed}#0"
    # the command's exit status, or the empty stream it left when that is all there is yet
    assert f"shard {failed} failed after 0 of 10 samples (" in caplog.text
    assert "the command exited with status 1" in caplog.text or "(empty file)" in caplog.text


@pytest.mark.parametrize("max_bad_fraction", [0.01, 1.0])
def test_every_shard_failing_stops_the_stream_in_its_workers(shards, max_bad_fraction):
    source = open_source(f"pipe:cat {shards / PATTERN}")
    for shard in shards.glob("*.tar"):
        shard.unlink()
    stream = UnifiedStream(
        [source], batch_size=5, image_size=8, num_workers=2, max_bad_fraction=max_bad_fraction
    )
    started = time.monotonic()
    with pytest.raises(UserInputError) as failure:
        next(iter(stream))
    assert time.monotonic() - started < 30
    message = str(failure.value)
    assert "\n" not in message and "truncated" in message and "pipe:cat" in message


def test_a_source_whose_first_shard_cannot_be_opened_says_why(shards):
    with pytest.raises(UserInputError, match=r"shard pipe:cat .*nowhere\.tar cannot be read"):
        open_source(f"pipe:cat {shards / 'nowhere.tar'}")
    with pytest.raises(UserInputError, match=r"1 of 1 shards .* do not exist"):
        open_source(f"file://{shards / 'nowhere.tar'}")


@pytest.mark.parametrize(
    ("shard", "sizes", "name"),
    [
        ("/data/cc3m/00042.tar", "/data/cc3m/sizes.json", "00042.tar"),
        ("00042.tar", "sizes.json", "00042.tar"),
        ("https://h/d/00042.tar", "https://h/d/sizes.json", "00042.tar"),
        (
            "pipe:curl -sL https://h/d/00042.tar",
            "pipe:curl -sL https://h/d/sizes.json",
            "00042.tar",
        ),
        (
            "pipe:aws s3 cp s3://b/cc/00042.tar -",
            "pipe:aws s3 cp s3://b/cc/sizes.json -",
            "00042.tar",
        ),
        ("pipe:cat 00042.tar.gz", "pipe:cat sizes.json", "00042.tar.gz"),
    ],
)
def test_the_sizes_file_is_looked_for_beside_the_shard_through_the_same_transport(
    shard, sizes, name
):
    assert sizes_file(shard) == (sizes, name)
