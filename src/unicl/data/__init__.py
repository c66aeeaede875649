"""Data in the image-text-label space: sources, the unified training stream, transforms."""

# Each reader module registers its source kinds on import (see unicl.data.readers).
from unicl.data import arrays, folder, manifest, shards  # noqa: F401
from unicl.data.batch import Batch
from unicl.data.eval_dataset import EvalDataset, collate_skipping_bad
from unicl.data.readers import open_source, parse_source, register_reader, source_kinds
from unicl.data.source import Modality, RawSample, Source
from unicl.data.spec import SourceSpec
from unicl.data.stream import UnifiedStream
from unicl.data.transforms import (
    CLIP_MEAN,
    CLIP_STD,
    BatchAugment,
    EvalTransform,
    TrainTransform,
)

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "Batch",
    "BatchAugment",
    "EvalDataset",
    "EvalTransform",
    "Modality",
    "RawSample",
    "Source",
    "SourceSpec",
    "TrainTransform",
    "UnifiedStream",
    "collate_skipping_bad",
    "open_source",
    "parse_source",
    "register_reader",
    "source_kinds",
]
