"""The stream's worker processes: alive across epochs without changing the order, resumable
across an epoch boundary, restarted when the stream is moved, tokenising as the model does."""

from __future__ import annotations

import multiprocessing

import pytest
import torch

from tests.data.data_corpus import write_caption_manifest, write_image_folder
from unicl.data import UnifiedStream
from unicl.models.tokenizer import Tokenizer


@pytest.fixture
def sources(tmp_path):
    folder = write_image_folder(tmp_path / "fashion", 40)
    manifest = write_caption_manifest(tmp_path / "emoji", 20)
    return [str(folder), str(manifest)]


def make(sources, **options) -> UnifiedStream:
    return UnifiedStream(sources, batch_size=5, image_size=16, seed=7, num_workers=2, **options)


def samples_of(stream: UnifiedStream) -> list[tuple[list[str], list[str]]]:
    return [(batch.keys, batch.texts) for batch in stream]


def worker_ids() -> list[int]:
    return sorted(process.pid for process in multiprocessing.active_children())


def test_workers_live_across_epochs_and_read_what_fresh_ones_would(sources):
    stream = make(sources)
    read, workers = [], []
    for _ in range(3):
        read += samples_of(stream)
        workers.append(worker_ids())
    assert len(workers[0]) == 2 and workers[0] == workers[1] == workers[2]
    stream.close()
    assert worker_ids() == []
    next(iter(make(sources)))  # a stream dropped mid-epoch stops its workers at once
    assert worker_ids() == []
    fresh = []
    for epoch in range(3):  # one stream, hence one set of worker processes, per epoch
        single = make(sources)
        single.set_epoch(epoch)
        fresh += samples_of(single)
        single.close()
    assert read == fresh and len(read) == 3 * len(stream)


def test_resuming_mid_epoch_with_workers_continues_into_the_next_epochs(sources):
    whole = make(sources)
    full = samples_of(whole) + samples_of(whole)
    interrupted = make(sources)
    head = []
    for batch in interrupted:
        head.append((batch.keys, batch.texts))
        if len(head) == 7:
            break
    resumed = make(sources)
    resumed.load_state_dict(interrupted.state_dict())
    assert head + samples_of(resumed) + samples_of(resumed) == full


def test_a_stream_moved_elsewhere_mid_epoch_reads_from_there(sources):
    stream = make(sources)
    next(iter(stream))
    stream.set_epoch(4)
    moved = samples_of(stream)
    fresh = make(sources)
    fresh.set_epoch(4)
    assert moved == samples_of(fresh)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_workers_tokenise_each_batch_as_the_model_tokenizer_does(sources, num_workers):
    tokenizer = Tokenizer.from_file("bpe-4k", 77)
    stream = make(sources, tokenize=tokenizer) if num_workers else None
    stream = stream or UnifiedStream(sources, batch_size=5, image_size=16, tokenize=tokenizer)
    batches = list(stream)
    assert any(batch.class_ids.min() < 0 for batch in batches)  # captions are tokenised too
    for batch in batches:
        assert batch.tokens.dtype == torch.int64
        assert torch.equal(batch.tokens, tokenizer(batch.texts))
