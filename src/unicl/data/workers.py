"""What the stream's DataLoader workers run: which consumer's batches each worker makes, and how
a failure in a worker reaches the user as one line."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch.utils.data import IterableDataset, get_worker_info

from unicl.data.batch import Batch
from unicl.errors import UserInputError

if TYPE_CHECKING:
    from unicl.data.stream import UnifiedStream


@dataclass(frozen=True)
class WorkerFailure:
    """Handed from a worker to the main process in place of a batch: the run must stop with this
    one-line message (raising in a worker would reach the user as a multi-line traceback)."""

    message: str


@contextlib.contextmanager
def worker_death_as_error() -> Iterator[None]:
    """Turn the death of a DataLoader worker (killed, out of memory) into a one-line error.

    PyTorch reports it as a multi-line `RuntimeError`, either from the loader or from its SIGCHLD
    handler anywhere in the main process (mid-forward), so wrap the whole loop that reads."""
    try:
        yield
    except RuntimeError as error:
        if "DataLoader worker" not in str(error):
            raise
        raise UserInputError(
            f"a data worker process died ({str(error).splitlines()[0].rstrip('. ')}): killed, or "
            "out of memory; lower data.num_workers or data.batch_size and resume with "
            "--resume latest"
        ) from None


def consumer_done(done: int, local: int, consumers: int) -> int:
    """Batches that local consumer `local` made of the first `done` batches of an epoch, which the
    loader takes from consumers 0, 1, ..., consumers - 1, 0, 1, ... in turn."""
    return max(done - local + consumers - 1, 0) // consumers


class EpochReader(IterableDataset):
    """This rank's batches from batch `done` of `epoch` on; in each DataLoader worker, the batches
    of the consumers that the worker plays.

    `stream` is laid out for the epoch: with as many local consumers as there are workers (the
    usual case), worker w plays the consumer whose turn comes w-th after the `done` batches
    already consumed, so a resumed epoch continues in the original round-robin order, and goes on
    epoch after epoch without end (an epoch holds a multiple of the consumer count, so the next one
    starts again at consumer 0 and w plays the same consumer). Resumed with another worker count
    W (`stream` then has the interrupted epoch's L consumers), worker w plays consumers
    `(done + w + k W) mod L`, taking turns among them, and the reader ends with the epoch."""

    def __init__(self, stream: UnifiedStream, epoch: int, positions: list[int], done: int) -> None:
        self.stream = stream
        self.epoch = epoch
        self.positions = positions
        self.done = done

    def __iter__(self) -> Iterator[Batch | WorkerFailure]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:
            # A worker has one core: no tokenizer thread pool in each of them.
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
        stream, consumers = self.stream, self.stream.local_consumers
        played = [(self.done + turn) % consumers for turn in range(worker, consumers, workers)]
        readers = [
            stream._consumer_batches(
                self.epoch,
                local,
                self.positions[local],
                stream.batches_per_consumer - consumer_done(self.done, local, consumers),
            )
            for local in played
        ]
        if workers != consumers:
            yield from _in_turn(readers)
            return
        epoch, local = self.epoch, played[0]
        while (yield from readers[0]):
            epoch += 1
            readers[0] = stream._consumer_batches(epoch, local, 0, stream.batches_per_consumer)


def _in_turn(readers: list[Iterator]) -> Iterator[Batch | WorkerFailure]:
    """One item of each reader in turn until all are spent; stops after a failure."""
    while readers:
        for reader in list(readers):
            item = next(reader, None)
            if item is None:
                readers.remove(reader)
                continue
            yield item
            if isinstance(item, WorkerFailure):
                return
