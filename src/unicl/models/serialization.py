"""The on-disk format of a saved model: safetensors weights, JSON config, tokenizer.json. No pickle.

A saved directory holds `config.json` (the model config plus `format` and `version`),
`model.safetensors` (the state dict) and `tokenizer.json`, and may hold extra text files such as
`text_tower/config.json`. Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from unicl.errors import UserInputError
from unicl.files import atomic_path, write_text_atomic

logger = logging.getLogger("unicl.models")
FORMAT, VERSION = "unicl-model", 1
CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.json", "model.safetensors", "tokenizer.json"


def save_directory(
    directory: str | os.PathLike,
    config: dict,
    state_dict: Mapping[str, torch.Tensor],
    files: Mapping[str, str],
) -> None:
    """Write weights, `config.json` and the extra text `files` (relative name -> content).

    Refuses weights with NaN or infinite values (a diverged model is not a model to keep).
    """
    directory = Path(directory)
    tensors = {name: tensor.detach().contiguous() for name, tensor in state_dict.items()}
    broken = non_finite_tensors(tensors)
    if broken:
        raise UserInputError(
            f"not saving {directory}: {len(broken)} tensors hold NaN or infinite values "
            f"(e.g. {', '.join(broken[:3])}); the training diverged, lower the learning rate"
        )
    with atomic_path(directory / WEIGHTS_FILE, ".safetensors") as weights:
        try:
            save_file(tensors, str(weights), metadata={"format": "pt"})
        except SafetensorError as error:  # a failed write (full disk): atomic_path names it
            raise OSError(str(error)) from None
    for name, text in files.items():
        write_text_atomic(directory / name, text)
    record = {"format": FORMAT, "version": VERSION, **config}
    write_text_atomic(directory / CONFIG_FILE, json.dumps(record, indent=2) + "\n")


def non_finite_tensors(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors that hold a NaN or an infinity."""
    return [
        name
        for name, tensor in tensors.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def describe_mismatch(missing: list[str], unexpected: list[str], wrong_shape: list[str]) -> str:
    """One line for tensors that do not fit a module: each non-empty list as `label (count):` and
    its first five entries."""
    return "; ".join(
        f"{label} ({len(items)}): {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
        for label, items in (
            ("missing tensors", missing),
            ("unexpected tensors", unexpected),
            ("shape mismatches", wrong_shape),
        )
        if items
    )


def read_config(directory: str | os.PathLike) -> dict:
    """The model config saved in `directory`, without the format fields."""
    path = Path(directory) / CONFIG_FILE
    if not Path(directory).is_dir():
        raise UserInputError(f"{directory} is not a directory written by save_pretrained")
    if not path.is_file():
        raise UserInputError(f"{path} is missing: the directory was not written by save_pretrained")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserInputError(f"{path} is not valid JSON (truncated?): {error}") from error
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise UserInputError(f'{path} is not a unicl model config (no "format": "{FORMAT}")')
    if record.get("version") != VERSION:
        raise UserInputError(
            f"{path} has format version {record.get('version')}; this unicl reads version {VERSION}"
        )
    return {key: value for key, value in record.items() if key not in ("format", "version")}


def load_weights(directory: str | os.PathLike, module: torch.nn.Module) -> None:
    """Load `model.safetensors` into `module`, requiring every name and shape to match."""
    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise UserInputError(f"{path} is missing: the weights were not saved or were removed")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise UserInputError(
            f"{path} is unreadable (truncated or not safetensors): {error}"
        ) from error
    expected = module.state_dict()
    missing = sorted(expected.keys() - tensors.keys())
    unexpected = sorted(tensors.keys() - expected.keys())
    wrong_shape = [
        f"{name} {tuple(tensors[name].shape)} != {tuple(expected[name].shape)}"
        for name in sorted(expected.keys() & tensors.keys())
        if tensors[name].shape != expected[name].shape
    ]
    if missing or unexpected or wrong_shape:
        problems = describe_mismatch(missing, unexpected, wrong_shape)
        raise UserInputError(f"{path} does not match {CONFIG_FILE}: {problems}")
    broken = non_finite_tensors(tensors)
    if broken:
        logger.warning(
            "%s holds NaN or infinite values in %d tensors (e.g. %s); its outputs will be too",
            path,
            len(broken),
            ", ".join(broken[:3]),
        )
    module.load_state_dict(tensors)
