"""Training checkpoints: atomic files `<output_dir>/checkpoints/step_XXXXXXXX.pt`, the last K kept,
and the random-number-generator states that make a resumed run repeat an uninterrupted one."""

from __future__ import annotations

import random
import re
from pathlib import Path
from pickle import UnpicklingError
from typing import Any

import numpy as np
import torch

from unicl.errors import UserInputError
from unicl.files import atomic_path

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d{8})\.pt$")


def checkpoint_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINT_DIR


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary files are never listed)."""
    folder = checkpoint_dir(output_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def remove_partial_checkpoints(output_dir: str | Path) -> list[Path]:
    """Delete the temporary files of checkpoints whose writing was killed (`.step_*.pt.*.tmp`);
    returns them. Complete checkpoints are never touched."""
    folder = checkpoint_dir(output_dir)
    partial = sorted(folder.glob(".step_*.pt.*.tmp")) if folder.is_dir() else []
    for path in partial:
        path.unlink(missing_ok=True)
    return partial


def load_newest_intact(paths: list[Path]) -> tuple[Path, dict[str, Any], list[str]]:
    """The newest of `paths` (oldest first) that reads as a checkpoint, its contents, and a note
    for each newer one that did not (e.g. a file damaged after it was written)."""
    notes = []
    for path in reversed(paths):
        try:
            return path, load_checkpoint(path), notes
        except UserInputError as error:
            if len(paths) == 1:
                raise
            notes.append(f"skipping unreadable checkpoint {path.name} ({error})")
    raise UserInputError(
        f"no readable checkpoint among {', '.join(p.name for p in paths)}; start a new run"
    )


def save_checkpoint(
    state: dict[str, Any], output_dir: str | Path, step: int, keep_last: int
) -> Path:
    """Write `state` for optimiser step `step` atomically (temporary file in the same folder,
    fsync, rename), then delete all but the newest `keep_last` checkpoints."""
    folder = checkpoint_dir(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:08d}.pt"
    with atomic_path(path) as temporary:
        try:
            torch.save(state, temporary)
        except RuntimeError as error:
            if "inline_container" not in str(error):  # torch's archive writer: a failed write
                raise
            raise OSError(f"torch.save failed ({str(error).splitlines()[0]})") from None
    for old in list_checkpoints(output_dir)[:-keep_last]:
        old.unlink()
    return path


def resolve_resume(spec: str, output_dir: str | Path) -> Path:
    """`latest` -> the newest checkpoint under `output_dir`; anything else is a checkpoint path."""
    if spec == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise UserInputError(
                f"--resume latest: no checkpoint in {str(checkpoint_dir(output_dir))!r}; "
                "start without --resume or pass a checkpoint path"
            )
        return found[-1]
    path = Path(spec)
    if not path.is_file():
        raise UserInputError(f"--resume {spec!r}: no such checkpoint file; pass 'latest' or a path")
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (tensors and plain Python values only).

    Any other file, damaged or never a checkpoint, is one `UserInputError`: the bytes of a file
    that is not a checkpoint make PyTorch's reader fail in many ways (`KeyError`, `ValueError`,
    `UnpicklingError`, ...)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (
        RuntimeError,
        EOFError,
        OSError,
        UnpicklingError,
        KeyError,
        ValueError,
        IndexError,
    ) as error:
        raise UserInputError(
            f"cannot read checkpoint {str(path)!r}: it is damaged or was not written by unicl "
            f"train ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from None
    if not isinstance(payload, dict):
        raise UserInputError(
            f"{str(path)!r} holds a {type(payload).__name__}, not a checkpoint of unicl train"
        )
    return payload


def capture_rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and PyTorch's (CPU and every CUDA device) generators."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.copy()), position, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy(), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
