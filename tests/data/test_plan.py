"""The epoch plan: quotas, the balanced sampler and disjoint shares of each source."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from unicl.data.plan import consumer_quotas, epoch_quotas, indexed_items, seeded_rng, source_choices
from unicl.data.source import Modality


class SizedSource(SimpleNamespace):
    def __len__(self) -> int:
        return self.size


def fake_source(size: int, modality: Modality, weight: float = 1.0) -> SizedSource:
    return SizedSource(size=size, modality=modality, spec=SimpleNamespace(weight=weight))


def test_balanced_quotas_upsample_the_smaller_kind_in_proportion():
    sources = [
        fake_source(1000, Modality.IMAGE_LABEL),
        fake_source(100, Modality.IMAGE_TEXT),
        fake_source(300, Modality.IMAGE_TEXT),
    ]
    assert epoch_quotas(sources, balance=True) == [1000, 250, 750]
    assert epoch_quotas(sources, balance=False) == [1000, 100, 300]


def test_weights_apply_before_balancing():
    sources = [
        fake_source(100, Modality.IMAGE_LABEL, weight=3.0),
        fake_source(100, Modality.IMAGE_TEXT, weight=0.5),
    ]
    assert epoch_quotas(sources, balance=False) == [300, 50]
    assert epoch_quotas(sources, balance=True) == [300, 300]


@given(
    quotas=st.lists(st.integers(0, 500), min_size=1, max_size=4),
    consumers=st.integers(1, 9),
)
def test_consumer_quotas_split_each_source_evenly(quotas, consumers):
    split = consumer_quotas(quotas, consumers)
    assert split.shape == (len(quotas), consumers)
    assert split.sum(axis=1).tolist() == quotas
    assert (split.max(axis=1) - split.min(axis=1) <= 1).all()


@settings(max_examples=30)
@given(consumers=st.integers(1, 6), extra=st.integers(0, 200), seed=st.integers(0, 10))
def test_one_pass_of_an_indexed_source_is_dealt_out_without_overlap(consumers, extra, seed):
    size = consumers + extra
    source = fake_source(size, Modality.IMAGE_LABEL)
    dealt = []
    for consumer in range(consumers):
        share = len(range(consumer, size, consumers))
        dealt += itertools.islice(indexed_items(source, seed, 0, 0, consumer, consumers), share)
    assert sorted(dealt) == list(range(size))


def test_source_choices_visit_each_source_its_quota_times_per_round():
    choices = source_choices([3, 0, 5], seeded_rng(0))
    first = list(itertools.islice(choices, 8))
    assert sorted(first) == [0, 0, 0, 2, 2, 2, 2, 2]
    second = list(itertools.islice(choices, 8))
    assert sorted(second) == sorted(first) and second != first
