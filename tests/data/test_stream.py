"""The unified stream: contract, balanced mixing, weights, determinism, ranks, resumption."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from tests.data.data_corpus import EMOJI_TRAIN, write_caption_manifest, write_image_folder
from unicl.data import UnifiedStream
from unicl.objective import target_labels
from unicl.templates import get_templates


@pytest.fixture
def sources(tmp_path):
    folder = write_image_folder(tmp_path / "fashion", 60)
    manifest = write_caption_manifest(tmp_path / "emoji", 20)
    return [str(folder), str(manifest)]


def keys_of(stream: UnifiedStream) -> list[list[str]]:
    return [batch.keys for batch in stream]


def samples_of(stream: UnifiedStream) -> list[tuple[list[str], list[str]]]:
    return [(batch.keys, batch.texts) for batch in stream]


def test_batches_follow_the_contract(sources):
    stream = UnifiedStream(sources, batch_size=8, image_size=24, seed=3)
    batch = next(iter(stream))
    assert batch.images.shape == (8, 3, 24, 24) and batch.images.dtype == torch.uint8
    assert batch.class_ids.dtype == torch.int64 and len(batch.texts) == 8
    assert torch.equal(batch.labels, target_labels(batch.class_ids, batch.texts))
    templates = get_templates("default")
    for text, class_id in zip(batch.texts, batch.class_ids.tolist(), strict=True):
        if class_id >= 0:
            name = stream.class_names[class_id]
            assert text in {t.replace("{}", name) for t in templates}
        else:
            assert text and "{}" not in text


def test_balanced_sampler_gives_as_many_label_as_text_samples(sources):
    stream = UnifiedStream(sources, batch_size=10, image_size=16, balance=True)
    kinds = Counter(c >= 0 for batch in stream for c in batch.class_ids.tolist())
    assert kinds == {True: 60, False: 60}
    assert len(stream) == 12


def test_weights_scale_each_source_without_balancing(tmp_path, sources):
    weighted = [{"location": sources[0], "weight": 0.5}, {"location": sources[1], "weight": 2.0}]
    stream = UnifiedStream(weighted, batch_size=10, image_size=16, balance=False)
    kinds = Counter(c >= 0 for batch in stream for c in batch.class_ids.tolist())
    assert kinds == {True: 30, False: 40}


def test_order_is_fixed_by_seed_and_epoch(sources):
    def epoch_keys(seed, epoch):
        stream = UnifiedStream(sources, batch_size=10, image_size=16, seed=seed)
        stream.set_epoch(epoch)
        return keys_of(stream)

    assert epoch_keys(0, 1) == epoch_keys(0, 1)
    assert epoch_keys(0, 1) != epoch_keys(0, 2)
    assert epoch_keys(0, 1) != epoch_keys(1, 1)


def test_epochs_advance_by_themselves_and_prompts_are_redrawn(sources):
    stream = UnifiedStream([sources[0]], batch_size=20, image_size=16)
    first, second = [b.texts for b in stream], [b.texts for b in stream]
    assert stream.epoch == 2 and first != second


@pytest.mark.parametrize("sources_kind", ["indexed", "sharded"])
def test_two_ranks_read_disjoint_samples(sources, sources_kind):
    chosen = [sources[0]] if sources_kind == "indexed" else [EMOJI_TRAIN]
    ranks = [
        UnifiedStream(chosen, batch_size=25, image_size=8, rank=rank, world_size=2)
        for rank in range(2)
    ]
    assert len(ranks[0]) == len(ranks[1])
    seen = [[key for keys in keys_of(stream) for key in keys] for stream in ranks]
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0])) == len(seen[0])


def test_resuming_mid_epoch_continues_exactly(sources):
    def make():
        return UnifiedStream(sources, batch_size=10, image_size=16, seed=5)

    full = samples_of(make())
    interrupted = make()
    head = []
    for batch in interrupted:
        head.append((batch.keys, batch.texts))
        if len(head) == 5:
            break
    state = interrupted.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    assert head + samples_of(resumed) == full


def test_resuming_with_worker_processes_keeps_the_round_robin_order(sources):
    def make():
        return UnifiedStream(sources, batch_size=5, image_size=16, seed=7, num_workers=2)

    full = keys_of(make())
    interrupted = make()
    head = []
    for batch in interrupted:
        head.append(batch.keys)
        if len(head) == 7:
            break
    resumed = make()
    resumed.load_state_dict(interrupted.state_dict())
    assert head + keys_of(resumed) == full


def test_a_mid_epoch_state_needs_the_same_layout_an_epoch_boundary_does_not(sources):
    stream = UnifiedStream(sources, batch_size=10, image_size=16)
    next(iter(stream))
    with pytest.raises(ValueError, match="batch size"):
        UnifiedStream(sources, batch_size=20, image_size=16).load_state_dict(stream.state_dict())
    finished = UnifiedStream(sources, batch_size=10, image_size=16)
    list(finished)
    wider = UnifiedStream(sources, batch_size=20, image_size=16)
    wider.load_state_dict(finished.state_dict())
    assert wider.epoch == 1 and len(list(wider)) == len(wider)


def test_identical_class_names_merge_across_sources_on_request(tmp_path):
    first = write_image_folder(tmp_path / "a", 30)
    second = write_image_folder(tmp_path / "b", 30)
    separate = UnifiedStream([str(first), str(second)], batch_size=10, image_size=8)
    merged = UnifiedStream(
        [str(first), str(second)], batch_size=10, image_size=8, merge_classes=True
    )
    assert len(separate.class_names) == 2 * len(merged.class_names)
    assert merged.global_ids[0] == merged.global_ids[1]


def test_ranks_with_worker_processes_split_shards_disjointly():
    ranks = [
        UnifiedStream(
            [EMOJI_TRAIN], batch_size=50, image_size=8, rank=rank, world_size=2, num_workers=2
        )
        for rank in range(2)
    ]
    seen = [[key for keys in keys_of(stream) for key in keys] for stream in ranks]
    assert len(seen[0]) == len(seen[1]) == 500
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0]) | set(seen[1])) == 1000


@pytest.mark.parametrize("num_workers", [0, 1])
def test_reading_an_epoch_draws_nothing_from_the_global_generator(sources, num_workers):
    """So a run resumed mid-epoch draws the same augmentation numbers as an uninterrupted one."""
    stream = UnifiedStream(sources, batch_size=8, image_size=16, seed=5, num_workers=num_workers)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    keys = keys_of(stream)
    assert torch.equal(torch.get_rng_state(), before)
    assert keys == keys_of(UnifiedStream(sources, batch_size=8, image_size=16, seed=5))
