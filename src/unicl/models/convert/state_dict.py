"""Reading foreign checkpoints safely, and filling a unicl model from them one named tensor at a time.

`read_checkpoint(path) -> ({name: tensor}, {other entry: value})` reads `.safetensors` with
safetensors, and anything else (`.pt`, `.pth`, `.bin`, ...) with `torch.load(weights_only=True)`
only, whose unpickler builds tensors and plain containers and refuses every other global: no code
from a checkpoint ever runs. A converter may name `stand_ins`: a full class name (as a pickle
spells it) and a harmless type built in its place, e.g. a plain mapping for a configuration
object. TorchScript archives are refused before that (loading one means running its code). A
`{"state_dict": {...}}` or `{"model": {...}}` wrapper (OpenCLIP's and microsoft/UniCL's training
checkpoints) is unwrapped, its other entries returned beside the tensors, and a `module.` prefix on
every name (saved from DistributedDataParallel) is dropped. `read_tensors(path)` is the tensors
alone.

`TensorMap` holds the source tensors; a converter states one rule per unicl tensor (`copy`, with an
optional reshape or transpose, or `concat`), and `load_into(model)` refuses, in one line naming the
tensors, a source tensor that no rule used, a rule whose source is absent, a model tensor that no
rule filled, and a shape that does not fit.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from unicl.errors import UserInputError

SHOWN = 5
"""How many names an error line lists before '... and N more'."""


WRAPPERS = ("state_dict", "model")
"""Entries under which training checkpoints keep the state dict."""


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The state dict stored in `path` (safetensors, or a pickle read with `weights_only=True`)."""
    return read_checkpoint(path)[0]


def read_checkpoint(
    path: Path, stand_ins: Mapping[str, type] | None = None, mmap: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """The state dict stored in `path` and the other entries of its wrapper ({} when bare).

    `stand_ins`: `{full class name: type}` the unpickler may build (see the module docstring).
    `mmap`: map the tensors of a zip checkpoint from the file instead of reading them (cheap
    when only the names are needed)."""
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path)), {}
        except (SafetensorError, OSError) as error:
            raise UserInputError(f"{path} is not a readable safetensors file: {error}") from error
    loaded = _load_pickled(path, stand_ins or {}, mmap)
    extras: dict[str, object] = {}
    wrapper = next(
        (key for key in WRAPPERS if isinstance(loaded, dict) and isinstance(loaded.get(key), dict)),
        None,
    )
    if wrapper is not None:
        extras = {str(key): value for key, value in loaded.items() if key != wrapper}
        loaded = loaded[wrapper]
    if not isinstance(loaded, dict):
        raise UserInputError(
            f"{path} holds a {type(loaded).__name__}, not a state dict (a mapping of names to "
            "tensors, bare or as {'state_dict': ...} or {'model': ...})"
        )
    others = [str(name) for name, value in loaded.items() if not isinstance(value, torch.Tensor)]
    if others:
        raise UserInputError(
            f"{path} is not a state dict: entries {describe_names(others)} are not tensors "
            "(give the model's state dict, bare or as {'state_dict': ...} or {'model': ...})"
        )
    if loaded and all(name.startswith("module.") for name in loaded):
        loaded = {name.removeprefix("module."): tensor for name, tensor in loaded.items()}
    return loaded, extras


def checkpoint_names(path: Path, stand_ins: Mapping[str, type] | None = None) -> list[str]:
    """The tensor names of the checkpoint `path`, read cheaply: the safetensors header, or the
    pickle with its tensors mapped from the file (read as `read_checkpoint` does)."""
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as archive:
                return list(archive.keys())
        except (SafetensorError, OSError) as error:
            raise UserInputError(f"{path} is not a readable safetensors file: {error}") from error
    return list(read_checkpoint(path, stand_ins, mmap=True)[0])


def _load_pickled(path: Path, stand_ins: Mapping[str, type], mmap: bool) -> object:
    """`torch.load(path, weights_only=True)` allowing only `stand_ins` beyond torch's own list,
    its failures as one-line `UserInputError`s."""
    if _is_torchscript(path):
        raise UserInputError(
            f"{path} is a TorchScript archive (as OpenAI released CLIP), which cannot be read "
            "without running its code; if you trust the file, export its state dict once: python "
            f"-c \"import torch; torch.save(torch.jit.load('{path}', map_location='cpu')"
            ".state_dict(), 'clip-state.pt')\" and convert clip-state.pt"
        )
    allowed = [(stand_in, name) for name, stand_in in stand_ins.items()]
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(allowed):
            warnings.simplefilter("ignore")  # pickle-protocol notes; the errors below say enough
            return torch.load(
                path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path)
            )
    except pickle.UnpicklingError as error:
        needed = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f" (it needs {needed.group(1)})" if needed else ""
        raise UserInputError(
            f"{path} holds objects other than tensors{what}; unicl reads pickled checkpoints only "
            "with torch.load(weights_only=True) and never runs their code: save the bare state "
            "dict, or safetensors, with code you trust"
        ) from error
    except Exception as error:  # a damaged or foreign file fails in many ways inside torch.load
        lines = str(error).strip().splitlines()
        why = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
        raise UserInputError(
            f"{path} is not a readable PyTorch checkpoint (damaged, or not written by "
            f"torch.save): {why}"
        ) from error


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip whose record folder holds `constants.pkl`."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.split("/", 1)[-1] == "constants.pkl" for name in archive.namelist())
    except zipfile.BadZipFile:
        return False  # a legacy pickle, or damaged: torch.load says which


def describe_names(names: Iterable[str]) -> str:
    """The names sorted, comma-separated, the first `SHOWN` of them and how many more."""
    names = sorted(names)
    more = f" ... and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


class TensorMap:
    """One explicit rule per unicl tensor, taking named tensors from a source state dict.

    `where` names the source in errors (`clip.pt (OpenAI CLIP layout)`); `hint` ends the error
    line (what the converter reads, where the limits are documented).
    """

    def __init__(self, source: Mapping[str, torch.Tensor], where: str, hint: str):
        self.source = source
        self.where = where
        self.hint = hint
        self.used: set[str] = set()
        self.absent: set[str] = set()
        self.unfilled: set[str] = set()
        self.targets: dict[str, torch.Tensor] = {}

    def take(self, key: str) -> torch.Tensor | None:
        """The source tensor `key`, marked as used (None, recorded as absent, when missing)."""
        self.used.add(key)
        if key not in self.source:
            self.absent.add(key)
            return None
        return self.source[key]

    def copy(
        self,
        target: str,
        key: str,
        change: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        """unicl tensor `target` = source `key`, passed through `change` (a reshape or a
        transpose) when given."""
        tensor = self.take(key)
        if tensor is None:
            self.unfilled.add(target)
        else:
            self.targets[target] = change(tensor) if change else tensor

    def concat(self, target: str, keys: Iterable[str]) -> None:
        """unicl tensor `target` = the source tensors `keys` concatenated along dimension 0 (the
        separate query, key and value projections into one `qkv`)."""
        tensors = [self.take(key) for key in keys]
        if any(tensor is None for tensor in tensors):
            self.unfilled.add(target)
        elif len({tensor.shape[1:] for tensor in tensors}) > 1:
            shapes = ", ".join(f"{key} {tuple(self.source[key].shape)}" for key in keys)
            raise UserInputError(f"{self.where}: cannot concatenate {shapes}; {self.hint}")
        else:
            self.targets[target] = torch.cat(tensors, dim=0)

    def ignore(self, key: str, check: Callable[[torch.Tensor], bool]) -> None:
        """Accept source tensor `key`, if present, without converting it; `check(tensor)` must
        hold (a constant such as Hugging Face's saved `position_ids`, or size metadata)."""
        self.used.add(key)
        if key in self.source and not check(self.source[key]):
            raise UserInputError(f"{self.where}: {key} has unexpected values; {self.hint}")

    def load_into(self, model: torch.nn.Module) -> None:
        """Load the converted tensors into `model` (cast to its dtypes) after checking that every
        source tensor was used, every rule found its source, and every model tensor is filled
        with the right shape."""
        expected = model.state_dict()
        problems = []
        for label, names in (
            ("missing tensors", self.absent),
            ("tensors not converted", set(self.source) - self.used),
            ("unicl tensors without a rule", set(expected) - set(self.targets) - self.unfilled),
            ("converted tensors unicl lacks", set(self.targets) - set(expected)),
        ):
            if names:
                problems.append(f"{label}: {describe_names(names)}")
        wrong = [
            f"{name} {tuple(tensor.shape)} != {tuple(expected[name].shape)}"
            for name, tensor in sorted(self.targets.items())
            if name in expected and tensor.shape != expected[name].shape
        ]
        if wrong:
            problems.append(
                f"shape mismatches (unicl name, source shape != unicl shape): {describe_names(wrong)}"
            )
        if problems:
            raise UserInputError(f"{self.where}: {'; '.join(problems)}; {self.hint}")
        model.load_state_dict(self.targets)
