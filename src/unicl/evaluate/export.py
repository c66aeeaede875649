"""Embedding export: image or text embeddings of a source (or of given texts) to `.npy`, with a
JSON Lines index.

`FILE.npy` holds float32 [N, E] L2-normalised embeddings; `FILE.index.jsonl` has one line per
row, in row order: `{"row", "sample", "key"}` plus `class_id`/`class_name` (image-label data) or
`text` (captions). `sample` is the position in the source's storage order and `key` its name
(file path, shard/key or array index). Unreadable images have no row. Existing files are
replaced only when asked (`overwrite=True`), and that is checked before anything is encoded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import numpy as np
from torch import nn

from unicl.data import Modality
from unicl.errors import UserInputError
from unicl.evaluate.embed import embed_texts, encode_dataset
from unicl.evaluate.inputs import EvalData, open_eval_dataset
from unicl.files import atomic_path, refuse_existing, write_text_atomic


def output_paths(out: str | os.PathLike) -> tuple[Path, Path]:
    """The files `export_embeddings(..., out)` writes: `emb` or `emb.npy` -> `emb.npy`,
    `emb.index.jsonl`."""
    out = Path(out)
    npy = out if out.suffix == ".npy" else out.with_name(out.name + ".npy")
    return npy, npy.with_suffix(".index.jsonl")


def _write(paths: tuple[Path, Path], embeddings: np.ndarray, entries: list[dict]) -> None:
    out, index = paths
    with atomic_path(out, ".npy") as temporary:
        np.save(temporary, embeddings)
    lines = (json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
    write_text_atomic(index, "".join(lines))


def export_text_embeddings(
    model: nn.Module,
    texts: list[str],
    out: str | os.PathLike,
    *,
    batch_size: int = 256,
    progress: bool | None = None,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write the embeddings of arbitrary `texts` to `out` and its index (`{"row", "text"}` per
    line). Returns `output_paths(out)`."""
    paths = _checked_paths(out, overwrite)
    features = embed_texts(model, texts, batch_size=batch_size, progress=progress)
    _write(paths, features.numpy(), [{"row": row, "text": text} for row, text in enumerate(texts)])
    return paths


def _checked_paths(out: str | os.PathLike, overwrite: bool) -> tuple[Path, Path]:
    if Path(out).is_dir():
        raise UserInputError(f"{out} is a directory; give the embeddings a file name")
    paths = output_paths(out)
    refuse_existing(*paths, overwrite=overwrite)
    return paths


def export_embeddings(
    model: nn.Module,
    data: EvalData,
    out: str | os.PathLike,
    *,
    modality: Literal["image", "text"] = "image",
    batch_size: int = 256,
    num_workers: int = 0,
    progress: bool | None = None,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write the embeddings of `data` to `out` (`.npy` added if missing) and its index.

    modality `image`: every readable image. modality `text`: every caption of image-text data.
    Returns `output_paths(out)`: `(npy path, index path)`.
    """
    paths = _checked_paths(out, overwrite)
    dataset = open_eval_dataset(data, model)
    raws = list(dataset.source.raw_samples())
    if modality == "text":
        if dataset.modality != Modality.IMAGE_TEXT:
            raise UserInputError(
                f"{dataset.source.describe()} has no captions ({dataset.modality} data); "
                "export its images (--modality image) or give image-text data"
            )
        rows = [(sample, raw) for sample, raw in enumerate(raws) if raw.text]
        features = embed_texts(
            model, [raw.text for _, raw in rows], batch_size=batch_size, progress=progress
        )
        entries = [{"sample": sample, "key": raw.key, "text": raw.text} for sample, raw in rows]
    elif modality == "image":
        encoded = encode_dataset(
            model, dataset, batch_size=batch_size, num_workers=num_workers, progress=progress
        )
        features = encoded.features
        entries = []
        for sample, target in zip(encoded.indices.tolist(), encoded.targets, strict=True):
            entry = {"sample": sample, "key": raws[sample].key}
            if dataset.modality == Modality.IMAGE_LABEL:
                entry.update(class_id=target, class_name=dataset.class_names[target])
            else:
                entry["text"] = target
            entries.append(entry)
    else:
        raise UserInputError(f"modality {modality!r} is unknown; use 'image' or 'text'")
    entries = [{"row": row, **entry} for row, entry in enumerate(entries)]
    _write(paths, features.numpy(), entries)
    return paths
