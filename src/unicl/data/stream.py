"""The unified training stream: image-label and image-text sources mixed into `Batch`es.

    stream = UnifiedStream(["data/demo/fashion-mnist", "data/demo/emoji/train-{000000..000003}.tar"],
                           batch_size=64, image_size=32, num_workers=2, rank=0, world_size=1)
    for epoch in range(epochs):
        stream.set_epoch(epoch)
        for batch in stream:          # Batch(images uint8 [B,3,H,W], texts, class_ids, labels)
            ...
        checkpoint["data"] = stream.state_dict()   # also valid mid-epoch

Workers decode with Pillow and crop to `image_size` (see `unicl.data.plan` for what each worker
reads, and `unicl.data.resample` for `resampled=True`, which draws with replacement); image-label samples get a prompt drawn from their source's templates at every visit. The
worker processes live as long as the stream is read in order: they run on into the next epoch
while the current one is consumed, so an epoch boundary costs no start-up and no drained queue.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

from unicl.data.bad_data import BadDataLog
from unicl.data.batch import Batch
from unicl.data.classes import ClassSpace
from unicl.data.images import DEFAULT_MAX_PIXELS, BadSample, fit_square
from unicl.data.licence import data_licence
from unicl.data.plan import consumer_quotas, consumer_samples, epoch_quotas, seeded_rng
from unicl.data.readers import open_source
from unicl.data.resample import resampled_samples
from unicl.data.source import Modality, Source, decode
from unicl.data.spec import SourceSpec
from unicl.data.workers import EpochReader, WorkerFailure, worker_death_as_error
from unicl.errors import UserInputError
from unicl.objective import CAPTION_CLASS_ID, target_labels
from unicl.templates import fill_template

logger = logging.getLogger("unicl.data")


class UnifiedStream:
    """Mixes sources into `Batch`es, deterministically per (seed, epoch, rank).

    sources: source strings, mappings or `SourceSpec`s (weights and templates per source).
    batch_size: samples per batch on this rank. image_size: side of the uint8 crops.
    balance: the paper's balanced sampler (as many image-label as image-text samples per epoch).
    merge_classes: identical class names in two sources share one label.
    num_workers: DataLoader worker processes; the sample order depends on (seed, epoch, rank,
        world_size, num_workers, batch_size). rank/world_size: this process and the number of
        processes; ranks read disjoint samples (unless a source is smaller than the consumer count).
    max_bad_fraction: the largest fraction of bad samples tolerated in an epoch.
    resampled: each consumer draws sources, shards and samples with replacement, without end
        (`unicl.data.resample`), for corpora too large to read once per epoch; an epoch is then
        only the unit of bad-data accounting and of reseeding (as many batches as without it).
    pin_memory: batches arrive in page-locked memory (for non-blocking copies to a GPU).
    prefetch_factor: batches each worker prepares ahead of the one being consumed.
    tokenize: texts -> int64 [B, L] (the model's tokenizer); when given, the workers tokenise each
        batch into `Batch.tokens`, off the training process's main thread.
    """

    def __init__(
        self,
        sources: Sequence[str | Mapping | SourceSpec | Source],
        *,
        batch_size: int,
        image_size: int,
        seed: int = 0,
        balance: bool = True,
        merge_classes: bool = False,
        num_workers: int = 0,
        rank: int = 0,
        world_size: int = 1,
        max_bad_fraction: float = 0.01,
        resampled: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        unique_captions: bool = False,
        pin_memory: bool = False,
        prefetch_factor: int = 2,
        tokenize: Callable[[list[str]], torch.Tensor] | None = None,
    ) -> None:
        if not sources:
            raise UserInputError("no data sources given; name at least one")
        if (
            batch_size < 1
            or image_size < 1
            or num_workers < 0
            or prefetch_factor < 1
            or not 0 <= rank < world_size
        ):
            raise UserInputError(
                f"invalid stream settings: batch_size={batch_size}, image_size={image_size}, "
                f"num_workers={num_workers}, prefetch_factor={prefetch_factor}, rank={rank}, "
                f"world_size={world_size}"
            )
        self.sources = [s if isinstance(s, Source) else open_source(s) for s in sources]
        space = ClassSpace(merge=merge_classes)
        self.global_ids = [space.add(s.class_names) for s in self.sources]
        self.class_names = space.names
        self.batch_size, self.image_size, self.seed = batch_size, image_size, seed
        self.num_workers, self.resampled = num_workers, resampled
        self.rank, self.world_size = rank, world_size
        self.max_pixels, self.unique_captions = max_pixels, unique_captions
        self.pin_memory, self.prefetch_factor, self.tokenize = pin_memory, prefetch_factor, tokenize
        self.quotas = epoch_quotas(self.sources, balance=balance)
        self._lay_out(max(num_workers, 1))  # with no workers the main process reads
        self.bad_data = BadDataLog(max_bad_fraction)
        self.last_epoch_bad: BadDataLog | None = None
        self.epoch = 0
        self._positions = [0] * self.local_consumers
        self._done = 0
        self._live: tuple[int, Iterator] | None = None  # (cursor of its next batch, iterator)
        # The current epoch's layout when it differs from this stream's: an epoch interrupted
        # with another worker count, finished as it was laid out (`load_state_dict`).
        self._interrupted: UnifiedStream | None = None

    def _lay_out(self, local_consumers: int) -> None:
        """Deal each epoch out to `local_consumers` consumers per rank (`unicl.data.plan`)."""
        self.local_consumers = local_consumers
        self.consumers = self.world_size * local_consumers
        self.consumer_quotas = consumer_quotas(self.quotas, self.consumers)
        self.batches_per_consumer = int(self.consumer_quotas.sum(axis=0).min()) // self.batch_size
        if self.batches_per_consumer == 0:
            raise UserInputError(
                f"an epoch of {sum(self.quotas)} samples over {self.consumers} workers in all "
                f"cannot fill one batch of {self.batch_size} per worker; lower batch_size or "
                "num_workers"
            )

    @property
    def _epoch_plan(self) -> UnifiedStream:
        """The stream as the current epoch is laid out: itself, or the interrupted layout."""
        return self._interrupted or self

    def describe(self) -> dict:
        """What the stream mixes: per source its kind, modality, size, samples per epoch and
        licence (`data_licence`, None when unknown); the image-text share of an epoch (and so of
        an average batch); the unified classes."""
        per_epoch = sum(self.quotas)
        text = sum(
            quota
            for source, quota in zip(self.sources, self.quotas, strict=True)
            if source.modality == Modality.IMAGE_TEXT
        )
        return {
            "sources": [
                {
                    "source": source.describe(),
                    "modality": str(source.modality),
                    "samples": len(source),
                    "per_epoch": int(quota),
                    "licence": data_licence(source.spec.location),
                }
                for source, quota in zip(self.sources, self.quotas, strict=True)
            ],
            "image_text_share": text / max(per_epoch, 1),
            "classes": list(self.class_names),
        }

    def __len__(self) -> int:
        """Batches per epoch on this rank (the same on every rank)."""
        return self.batches_per_consumer * self.local_consumers

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its beginning, unless it is the epoch a loaded state resumes."""
        if epoch != self.epoch:
            self.epoch = epoch
            self._interrupted = None
            self._positions = [0] * self.local_consumers
            self._done = 0
            self.bad_data = BadDataLog(self.bad_data.max_fraction)

    def state_dict(self) -> dict:
        """Where this rank stands in the current epoch: enough to resume mid-epoch."""
        return {
            "epoch": self.epoch,
            "batches": self._done,
            "positions": list(self._positions),
            "bad_data": self.bad_data.state_dict(),
            "layout": self._epoch_plan._layout(),
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Resume where `state_dict()` was taken. Mid-epoch, the stream must be laid out as it was
        (seed, batch size, ranks, sources, resampling) but for the worker count: an epoch
        interrupted with L workers is finished as L consumers, played by this stream's workers
        (`EpochReader`), so its remaining batches are exactly those of an uninterrupted run; the
        next epoch is laid out for this stream's workers. At an epoch boundary any layout goes on."""
        saved = dict(state["layout"])
        saved.setdefault("resampled", False)
        local_consumers = saved.pop("local_consumers")
        ours = self._layout()
        del ours["local_consumers"]
        if state["batches"] and saved != ours:
            raise UserInputError(
                f"the data state was saved mid-epoch with {state['layout']} but this stream has "
                f"{self._layout()}; resume with the same seed, batch size, sources, resampling "
                "and ranks (the worker count may change)"
            )
        self.set_epoch(int(state["epoch"]))
        if state["batches"]:
            if local_consumers != self.local_consumers:
                self._interrupted = copy.copy(self)
                self._interrupted._lay_out(local_consumers)
            self._done = int(state["batches"])
            self._positions = [int(p) for p in state["positions"]]
            self.bad_data.load_state_dict(state["bad_data"])

    def _loader_generator(self) -> torch.Generator:
        """The DataLoader's own generator: its per-epoch seed draw never touches the global one."""
        return torch.Generator().manual_seed(hash((self.seed, self.epoch, self.rank)) % 2**63)

    def _layout(self) -> dict:
        return {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "local_consumers": self.local_consumers,
            "rank": self.rank,
            "world_size": self.world_size,
            "quotas": list(self.quotas),
            "resampled": self.resampled,
        }

    def __iter__(self) -> Iterator[Batch]:
        with worker_death_as_error():
            while self._done < len(self._epoch_plan):
                yield self._next_batch()
        self.bad_data.check(final=True)
        logger.info("epoch %d, rank %d: %s", self.epoch, self.rank, self.bad_data.summary())
        self.last_epoch_bad = self.bad_data
        if self._interrupted is not None:
            self.close()  # its workers end with the interrupted epoch
        self.set_epoch(self.epoch + 1)

    def close(self) -> None:
        """Stop the worker processes (the next read starts new ones)."""
        self._live = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_live": None, "_interrupted": None}

    def _cursor(self) -> int:
        """The index of the next batch counted from the start of epoch 0."""
        return self.epoch * len(self) + self._done

    def _next_batch(self) -> Batch:
        """The next batch from the live loader, counted against the bad-data threshold. The loader
        and its workers live on across epochs; they are replaced only when the stream was moved
        elsewhere (`set_epoch`, `load_state_dict`) or a read failed."""
        if self._live is None or self._live[0] != self._cursor():
            self.close()
            # The reader holds a copy without the loader: no reference cycle keeps the workers
            # of a stream that is no longer used alive until the garbage collector runs.
            plan = copy.copy(self._epoch_plan)
            reader = EpochReader(plan, self.epoch, list(self._positions), self._done)
            loader = DataLoader(
                reader,
                batch_size=None,
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                prefetch_factor=self.prefetch_factor if self.num_workers else None,
                generator=self._loader_generator(),
            )
            self._live = (self._cursor(), iter(loader))
        try:
            batch = next(self._live[1])
            if isinstance(batch, WorkerFailure):
                raise UserInputError(batch.message)
            local = batch.consumer - self.rank * self._epoch_plan.local_consumers
            self.bad_data.record(batch.position - self._positions[local], batch.bad)
            self._positions[local] = batch.position
            self._done += 1
            self._live = (self._cursor(), self._live[1])
            self.bad_data.check()
        except BaseException:
            self.close()
            raise
        return batch

    def _consumer_batches(
        self, epoch: int, local: int, start: int, count: int
    ) -> Iterator[Batch | WorkerFailure]:
        """This consumer's `count` batches of `epoch` from read position `start`; returns False
        when it handed over a failure instead. Its reads are also checked against
        `max_bad_fraction` here, where they are counted, so data with no (or too few) good samples
        stops the run at once instead of never forming a batch."""
        consumer = self.rank * self.local_consumers + local
        reads = BadDataLog(self.bad_data.max_fraction)
        epoch_share = int(self.consumer_quotas[:, consumer].sum())
        quotas = self.consumer_quotas[:, consumer]
        if self.resampled:
            samples = resampled_samples(
                self.sources, quotas, seed=self.seed, epoch=epoch, consumer=consumer, start=start
            )
        else:
            samples = consumer_samples(
                self.sources,
                quotas,
                seed=self.seed,
                epoch=epoch,
                consumer=consumer,
                consumers=self.consumers,
                start=start,
            )
        images = self._batch_images()
        texts, class_ids, origins, keys, bad = [], [], [], [], []
        position = start
        while count > 0:
            index, raw = next(samples)
            position += 1
            try:
                image, text, class_id = decode(
                    raw, max_pixels=self.max_pixels, draft_size=self.image_size
                )
            except BadSample as error:
                bad.append((error.cause, error.key))
                reads.record(1, [(error.cause, error.key)])
                try:
                    reads.check()
                    if reads.bad == reads.read >= epoch_share:
                        raise UserInputError(
                            f"none of {reads.read} samples could be used: {reads.summary()}"
                        )
                except UserInputError as failure:
                    yield WorkerFailure(str(failure))
                    return False
                continue
            reads.record(1, [])
            if self.sources[index].modality == Modality.IMAGE_LABEL:
                class_id = self.global_ids[index][class_id]
            images[len(texts)] = fit_square(image, self.image_size)
            origins.append(index)
            texts.append(text)
            class_ids.append(class_id)
            keys.append(raw.key)
            if len(texts) == self.batch_size:
                ids = torch.tensor(class_ids, dtype=torch.int64)
                rng = seeded_rng(self.seed, epoch, consumer, position)
                texts = self._prompts(texts, class_ids, origins, rng)
                labels = target_labels(
                    ids, texts, unique_captions=self.unique_captions, rank=self.rank
                )
                tokens = self.tokenize(texts) if self.tokenize is not None else None
                yield Batch(images, texts, ids, labels, keys, bad, consumer, position, tokens)
                images = self._batch_images()
                texts, class_ids, origins, keys, bad = [], [], [], [], []
                count -= 1
        return True

    def _batch_images(self) -> torch.Tensor:
        """uint8 [B,3,S,S] to fill. In a worker it is made in shared memory (as PyTorch's own
        collation does), so handing the batch to the main process copies nothing."""
        shape = (self.batch_size, 3, self.image_size, self.image_size)
        if get_worker_info() is None:
            return torch.empty(shape, dtype=torch.uint8)
        storage = torch.UntypedStorage._new_shared(int(np.prod(shape)))
        return torch.empty(0, dtype=torch.uint8).set_(storage).view(shape)

    def _prompts(
        self, texts: list, class_ids: list[int], origins: list[int], rng: np.random.Generator
    ) -> list[str]:
        """Captions as they are; for each class sample, a template of its source drawn for this
        visit and filled with its class name. `rng` is seeded by the batch's end position, so a
        resumed epoch draws the same prompts."""
        draws = rng.random(len(texts)).tolist()
        prompts = []
        for text, class_id, origin, draw in zip(texts, class_ids, origins, draws, strict=True):
            if class_id != CAPTION_CLASS_ID:
                templates = self.sources[origin].templates
                text = fill_template(
                    templates[int(draw * len(templates))], self.class_names[class_id]
                )
            prompts.append(text)
        return prompts
