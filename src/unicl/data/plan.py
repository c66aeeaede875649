"""The epoch plan: how many samples each source gives, and which consumer reads which.

A consumer is one DataLoader worker of one rank (`consumer = rank * workers + worker`). For epoch
`e` every process derives the same plan from `(seed, e)` alone:

1. Quotas: source `s` contributes `q_s = weight_s * len(s)` samples. With `balance=True` and both
   kinds present (the paper's balanced sampler), each kind's quotas are scaled so that image-label
   and image-text samples are equally many: both reach the larger kind's total.
2. Each source's items are split disjointly among the C consumers: an indexed source deals out a
   seeded permutation of its indices (consumer c takes positions c, c+C, ...); a sharded source
   deals out whole shards in seeded order (or, with fewer shards than consumers, every shard with
   every C-th sample to each, read from the tar's index: `unicl.data.tar_index`). A consumer
   that needs more than its share starts a fresh pass.
3. Each consumer gets `q_s // C` (+1 for the first `q_s % C`) samples of source s, visited in a
   seeded random interleaving of the sources, and yields the same number of batches as every
   other consumer (the smallest count), so all ranks take the same number of steps.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import numpy as np
import webdataset as wds

from unicl.data.source import (
    IndexedSource,
    Modality,
    RawSample,
    ShardedSource,
    Source,
)

SHUFFLE_BUFFER = 1000
"""Samples held to shuffle within a shard."""


def seeded_rng(*keys: int) -> np.random.Generator:
    """A generator determined by a tuple of non-negative ints (seed, epoch, ...)."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))


def epoch_quotas(sources: Sequence[Source], *, balance: bool) -> list[int]:
    """Samples per epoch from each source (step 1 above)."""
    base = [source.spec.weight * len(source) for source in sources]
    totals = {
        modality: sum(b for b, s in zip(base, sources, strict=True) if s.modality == modality)
        for modality in (Modality.IMAGE_LABEL, Modality.IMAGE_TEXT)
    }
    if balance and all(totals.values()):
        target = max(totals.values())
        return [round(b * target / totals[s.modality]) for b, s in zip(base, sources, strict=True)]
    return [round(b) for b in base]


def consumer_quotas(quotas: Sequence[int], consumers: int) -> np.ndarray:
    """int64 [S, C]: samples of source s that consumer c reads per epoch."""
    quotas = np.asarray(quotas, dtype=np.int64)[:, None]
    return quotas // consumers + (np.arange(consumers)[None, :] < quotas % consumers)


def source_choices(quotas: np.ndarray, rng: np.random.Generator) -> Iterator[int]:
    """Source index of each step of one consumer: a random order of `quotas[s]` copies of s,
    repeated (in fresh orders) for as long as it is read."""
    pool = np.repeat(np.arange(len(quotas)), quotas)
    if len(pool) == 0:
        return
    while True:
        yield from rng.permutation(pool).tolist()


def indexed_items(
    source: IndexedSource, seed: int, epoch: int, index: int, consumer: int, consumers: int
) -> Iterator[int]:
    """Indices of `source` that `consumer` reads, pass after pass (disjoint across consumers
    within a pass, unless the source has fewer samples than there are consumers)."""
    size = len(source)
    for passes in range(2**62):
        order = seeded_rng(seed, epoch, index, passes).permutation(size)
        yield from (
            order[consumer::consumers] if size >= consumers else order[[consumer % size]]
        ).tolist()


def sharded_items(
    source: ShardedSource, seed: int, epoch: int, index: int, consumer: int, consumers: int
) -> Iterator[RawSample]:
    """Raw samples of `source` that `consumer` reads, pass after pass, shuffled within shards."""
    shards = len(source.shard_sizes)
    for passes in range(2**62):
        order = seeded_rng(seed, epoch, index, passes).permutation(shards).tolist()
        rng = random.Random(
            int(seeded_rng(seed, epoch, index, passes, consumer + 1).integers(2**62))
        )
        if shards >= consumers:
            raws = (raw for shard in order[consumer::consumers] for raw in source.read_shard(shard))
        else:
            raws = (raw for shard in order for raw in source.read_shard(shard, consumer, consumers))
        yield from wds.shuffle(SHUFFLE_BUFFER, initial=SHUFFLE_BUFFER, rng=rng)(raws)


def consumer_samples(
    sources: Sequence[Source],
    quotas: np.ndarray,
    *,
    seed: int,
    epoch: int,
    consumer: int,
    consumers: int,
    start: int = 0,
) -> Iterator[tuple[int, RawSample]]:
    """`(source index, raw sample)` of one consumer in reading order, from position `start`.

    `quotas` is the consumer's column of `consumer_quotas`. The sequence is endless (later passes
    follow the quota), so a consumer that skips bad samples can still fill its batches.
    """
    choices = source_choices(quotas, seeded_rng(seed, epoch, 2**32 + consumer))
    items = []
    for index, source in enumerate(sources):
        if isinstance(source, IndexedSource):
            items.append(indexed_items(source, seed, epoch, index, consumer, consumers))
        else:
            items.append(sharded_items(source, seed, epoch, index, consumer, consumers))
    for position, index in enumerate(choices):
        item = next(items[index])
        if position < start:
            continue
        source = sources[index]
        yield index, source.raw(item) if isinstance(source, IndexedSource) else item
