"""Resuming mid-epoch with another worker count: the rest of the interrupted epoch is exactly the
batches an uninterrupted run makes (in its order when the new count divides the old one or is at
least it), and the next epochs are those of the new layout."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.data.data_corpus import write_caption_manifest, write_image_folder
from unicl.data import UnifiedStream

pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("relayout")
    return [
        str(write_image_folder(root / "fashion", 48)),
        str(write_caption_manifest(root / "e", 24)),
    ]


def make(sources, workers: int, **options) -> UnifiedStream:
    return UnifiedStream(
        sources, batch_size=4, image_size=8, seed=3, num_workers=workers, **options
    )


def epoch_of(stream: UnifiedStream) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    return [(tuple(batch.keys), tuple(batch.texts)) for batch in stream]


def interrupted_state(sources, workers: int, after: int, **options) -> tuple[dict, list]:
    stream = make(sources, workers, **options)
    head = []
    for batch in stream:
        head.append((tuple(batch.keys), tuple(batch.texts)))
        if len(head) == after:
            break
    state = stream.state_dict()
    stream.close()
    return state, head


@pytest.mark.parametrize(
    ("old", "new", "same_order"),
    [(3, 1, True), (3, 0, True), (3, 2, False), (2, 4, True), (4, 2, True)],
)
def test_the_interrupted_epoch_ends_with_exactly_its_own_batches(sources, old, new, same_order):
    whole = make(sources, old)
    uninterrupted = epoch_of(whole)
    whole.close()
    state, head = interrupted_state(sources, old, after=5)
    resumed = make(sources, new)
    resumed.load_state_dict(state)
    rest = epoch_of(resumed)
    assert len(head) + len(rest) == len(uninterrupted)
    assert Counter(head + rest) == Counter(uninterrupted)
    assert (head + rest == uninterrupted) == same_order
    fresh = make(sources, new)
    fresh.set_epoch(1)
    assert epoch_of(resumed) == epoch_of(fresh)  # the next epoch is the new layout's
    assert resumed.epoch == 2
    resumed.close()
    fresh.close()


def test_a_state_taken_while_finishing_an_interrupted_epoch_resumes_it(sources):
    whole = make(sources, 3)
    uninterrupted = epoch_of(whole)
    whole.close()
    state, head = interrupted_state(sources, 3, after=4)
    middle = make(sources, 1)
    middle.load_state_dict(state)
    for batch in middle:
        head.append((tuple(batch.keys), tuple(batch.texts)))
        if len(head) == 9:
            break
    again = make(sources, 2)
    again.load_state_dict(middle.state_dict())
    middle.close()
    assert Counter(head + epoch_of(again)) == Counter(uninterrupted)
    again.close()


def test_resampled_streams_resume_with_another_worker_count_too(sources):
    whole = make(sources, 2, resampled=True)
    uninterrupted = epoch_of(whole)
    whole.close()
    state, head = interrupted_state(sources, 2, after=3, resampled=True)
    resumed = make(sources, 1, resampled=True)
    resumed.load_state_dict(state)
    assert head + epoch_of(resumed) == uninterrupted
    resumed.close()


def test_other_layout_changes_mid_epoch_are_still_refused(sources):
    state, _ = interrupted_state(sources, 2, after=1)
    with pytest.raises(ValueError, match="worker count may change"):
        UnifiedStream(sources, batch_size=4, image_size=8, seed=4, num_workers=1).load_state_dict(
            state
        )
    with pytest.raises(ValueError, match="resampling"):
        make(sources, 2, resampled=True).load_state_dict(state)
