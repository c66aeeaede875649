"""Export a unicl model to a CLIP layout other tools load without unicl: `export_model`.

Formats (`EXPORT_FORMATS`): `hf-clip` (a `transformers.CLIPModel` directory, see `to_hf_clip`)
and `open-clip` (OpenCLIP's config and weights, see `to_open_clip`). Both need a model with a
CLIP counterpart (`clip_export`); anything else is refused in one line naming the tower before
anything is written. The key mapping is the importers' own table, read backwards
(`clip.clip_rules`), so `unicl convert` of an exported directory gives the model back bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from unicl.errors import UserInputError
from unicl.files import atomic_path, write_text_atomic
from unicl.models.convert import to_hf_clip, to_open_clip
from unicl.models.model import UniCLModel

Files = tuple[dict[str, torch.Tensor], dict[str, str]]


@dataclass(frozen=True)
class ExportFormat:
    """The name of the weights file, the function giving (weights, text files by name) of a
    model, and how the result is loaded (Markdown lines for its model card, `{path}` standing for
    the directory)."""

    weights_file: str
    files: Callable[[UniCLModel], Files]
    use: Sequence[str]


EXPORT_FORMATS = {
    to_hf_clip.FORMAT: ExportFormat("model.safetensors", to_hf_clip.hf_clip_files, to_hf_clip.USE),
    to_open_clip.FORMAT: ExportFormat(
        to_open_clip.WEIGHTS_FILE, to_open_clip.open_clip_files, to_open_clip.USE
    ),
}


def export_format(name: str) -> ExportFormat:
    """The format called `name`, or a one-line `UserInputError` listing the formats."""
    if name not in EXPORT_FORMATS:
        raise UserInputError(
            f"unknown export format {name!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    return EXPORT_FORMATS[name]


def write_export(
    directory: str | os.PathLike,
    weights_file: str,
    weights: Mapping[str, torch.Tensor],
    files: Mapping[str, str],
) -> None:
    """Write the weights (safetensors, `format: pt` as transformers expects) and the text files
    into `directory`, each atomically."""
    directory = Path(directory)
    with atomic_path(directory / weights_file, ".safetensors") as path:
        save_file(dict(weights), str(path), metadata={"format": "pt"})
    for name, text in files.items():
        write_text_atomic(directory / name, text)


def export_model(model: UniCLModel, name: str, directory: str | os.PathLike) -> None:
    """Write `model` into `directory` in the format `name` (see `EXPORT_FORMATS`); everything is
    computed before the first file is written."""
    chosen = export_format(name)
    weights, files = chosen.files(model)
    write_export(directory, chosen.weights_file, weights, files)
