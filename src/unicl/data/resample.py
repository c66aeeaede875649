"""The resampled plan: each consumer draws its samples with replacement, without end.

For corpora too large to read once per epoch (OpenCLIP's `--dataset-resampled`, webdataset's
`ResampledShards`). For epoch `e` consumer `c` derives from `(seed, e, c)` alone:

1. The source of each step, drawn independently with probability `q_s / sum(q)`, where `q` is the
   consumer's column of the quotas (`unicl.data.plan`): the balance and weights hold in
   expectation, not exactly per epoch.
2. For a sharded source, a sequence of shards drawn with replacement, shard `j` with probability
   `size_j / len(source)` (so every sample is equally likely); each drawn shard is read whole,
   shuffled within a `SHUFFLE_BUFFER`-sample buffer, as exactly `size_j` samples (missing ones
   come as bad samples). For an indexed source (folder, manifest, arrays), indices drawn uniformly
   with replacement.

Every draw comes from a seeded chunk of `CHUNK` draws, so reaching read position `p` (a resumed
epoch) costs arithmetic over `p / CHUNK` chunks plus reading at most one shard per sharded source,
however far into the epoch `p` is. Consumers draw independently: two workers or ranks may read
the same sample, as with any sampling with replacement.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import webdataset as wds

from unicl.data.plan import SHUFFLE_BUFFER, seeded_rng
from unicl.data.source import IndexedSource, RawSample, ShardedSource, Source

CHUNK = 4096
"""Draws per seeded chunk."""

_TAG = 2**40
"""Keeps the resampled generators' keys apart from the epoch plan's."""


def _draws(draw: Callable[[np.random.Generator], np.ndarray], keys: tuple, skip: int) -> Iterator:
    """Endless draws, chunk `k` being `draw(seeded_rng(*keys, k))`, from draw number `skip` on."""
    for chunk in itertools.count(skip // CHUNK):
        values = draw(seeded_rng(*keys, chunk)).tolist()
        yield from values[skip - chunk * CHUNK :] if chunk == skip // CHUNK else values


def _choices(quotas: np.ndarray) -> Callable[[np.random.Generator], np.ndarray]:
    share = np.asarray(quotas, dtype=np.float64)
    share = share / share.sum()
    return lambda rng: rng.choice(len(share), size=CHUNK, p=share)


def _skipped_per_source(quotas: np.ndarray, keys: tuple, start: int) -> np.ndarray:
    """int64 [S]: how many of the first `start` steps went to each source."""
    choose = _choices(quotas)
    counts = np.zeros(len(quotas), dtype=np.int64)
    for chunk in range(-(-start // CHUNK)):
        values = choose(seeded_rng(*keys, chunk))[: start - chunk * CHUNK]
        counts += np.bincount(values, minlength=len(quotas))
    return counts


def _resampled_indices(source: IndexedSource, keys: tuple, skip: int) -> Iterator[RawSample]:
    size = len(source)
    for index in _draws(lambda rng: rng.integers(size, size=CHUNK), keys, skip):
        yield source.raw(index)


def _resampled_shards(source: ShardedSource, keys: tuple, skip: int) -> Iterator[RawSample]:
    sizes = np.asarray(source.shard_sizes, dtype=np.int64)
    share = sizes / sizes.sum()
    draw = 0
    shards = _draws(lambda rng: rng.choice(len(sizes), size=CHUNK, p=share), keys, 0)
    for draw, shard in enumerate(shards):  # noqa: B007 (the draw number seeds the shuffle below)
        if skip < sizes[shard]:
            break
        skip -= int(sizes[shard])
    while True:
        rng = random.Random(int(seeded_rng(*keys, 2**40 + draw).integers(2**62)))
        raws = itertools.islice(source.read_shard(shard), int(sizes[shard]))
        shuffled = wds.shuffle(SHUFFLE_BUFFER, initial=SHUFFLE_BUFFER, rng=rng)(raws)
        yield from itertools.islice(shuffled, skip, None)
        skip, draw, shard = 0, draw + 1, next(shards)


def resampled_samples(
    sources: Sequence[Source],
    quotas: np.ndarray,
    *,
    seed: int,
    epoch: int,
    consumer: int,
    start: int,
) -> Iterator[tuple[int, RawSample]]:
    """`(source index, raw sample)` of one consumer in reading order, from position `start`:
    the resampled counterpart of `unicl.data.plan.consumer_samples`, as endless."""
    if not np.asarray(quotas).sum():
        return
    keys = (seed, epoch, _TAG + consumer)
    skipped = _skipped_per_source(quotas, keys, start)
    items = []
    for index, source in enumerate(sources):
        source_keys = (seed, epoch, _TAG + consumer, index + 1)
        if isinstance(source, IndexedSource):
            items.append(_resampled_indices(source, source_keys, int(skipped[index])))
        else:
            items.append(_resampled_shards(source, source_keys, int(skipped[index])))
    for index in _draws(_choices(quotas), keys, start):
        yield index, next(items[index])
