"""The resampled stream: draws with replacement, deterministic per (seed, epoch, consumer),
weighted and balanced in expectation, and resumable at any read position, on real shards."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from tests.data.data_corpus import EMOJI_TRAIN, write_image_folder
from unicl.data import UnifiedStream, open_source, resample
from unicl.data.resample import resampled_samples


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = write_image_folder(tmp_path_factory.mktemp("resampled") / "fashion", 40)
    return [open_source(str(folder)), open_source(EMOJI_TRAIN)]


def keys(samples) -> list[tuple[int, str]]:
    return [(index, raw.key) for index, raw in samples]


def test_samples_are_drawn_with_replacement_in_proportion_to_the_quotas(sources):
    quotas = np.array([1, 3])
    drawn = keys(
        itertools.islice(
            resampled_samples(sources, quotas, seed=1, epoch=0, consumer=0, start=0), 2000
        )
    )
    per_source = Counter(index for index, _ in drawn)
    assert abs(per_source[1] / 2000 - 0.75) < 0.04  # binomial sd 0.01
    emoji = [key for index, key in drawn if index == 1]
    assert max(Counter(emoji).values()) > 1  # ~1500 draws from 1000 samples repeat some
    for run in range(len(emoji) // 250):  # each drawn shard (250 samples) is read whole, shuffled
        block = emoji[run * 250 : (run + 1) * 250]
        assert len(set(block)) == 250 and len({key.split("/")[-2] for key in block}) == 1


@pytest.mark.parametrize("start", [0, 1, 63, 64, 150, 333])
def test_any_read_position_is_reached_exactly(sources, monkeypatch, start):
    monkeypatch.setattr(resample, "CHUNK", 64)  # positions cross several seeded chunks
    quotas = np.array([2, 1])

    def read(first: int, count: int) -> list:
        samples = resampled_samples(sources, quotas, seed=4, epoch=2, consumer=3, start=first)
        return keys(itertools.islice(samples, count))

    assert read(start, 40) == read(0, start + 40)[start:]


def test_consumers_and_epochs_draw_differently_and_repeatably(sources):
    def read(**where) -> list:
        samples = resampled_samples(sources, np.array([1, 1]), seed=0, start=0, **where)
        return keys(itertools.islice(samples, 50))

    assert read(epoch=0, consumer=0) == read(epoch=0, consumer=0)
    assert read(epoch=0, consumer=0) != read(epoch=0, consumer=1)
    assert read(epoch=0, consumer=0) != read(epoch=1, consumer=0)


def stream(sources, **options) -> UnifiedStream:
    return UnifiedStream(
        sources, batch_size=8, image_size=8, seed=2, num_workers=2, resampled=True, **options
    )


def test_the_resampled_stream_is_balanced_repeatable_and_resumable(sources):
    whole = stream(sources)
    first = [batch.keys for batch in whole]
    second = [batch.keys for batch in whole]
    whole.close()
    assert len(first) == len(second) == len(whole)
    assert first != second  # each epoch draws afresh
    drawn = [key for batch in first + second for key in batch]
    assert len(set(drawn)) < len(drawn)
    label_share = sum("fashion" in key for key in drawn) / len(drawn)
    assert abs(label_share - 0.5) < 0.05  # balanced: the 40 class images weigh as the 1000 pairs

    again = stream(sources)
    head = []
    for batch in again:
        head.append(batch.keys)
        if len(head) == 11:
            break
    resumed = stream(sources)
    resumed.load_state_dict(again.state_dict())
    again.close()
    assert head + [batch.keys for batch in resumed] == first
    assert [batch.keys for batch in resumed] == second
    resumed.close()


def test_ranks_draw_their_own_samples(sources):
    ranks = [
        [
            batch.keys
            for batch in UnifiedStream(
                sources, batch_size=8, image_size=8, rank=rank, world_size=2, resampled=True
            )
        ]
        for rank in range(2)
    ]
    assert len(ranks[0]) == len(ranks[1]) and ranks[0] != ranks[1]
