"""Named model configurations (YAML files shipped in `unicl/models/configs/`) and their validation.

A config is a plain dict:
- `embed_dim` (int): the shared embedding width E.
- `image_size` (int, pixels), `image_mean`, `image_std` (3 floats each, on 0-1 pixel values).
- `context_length` (int): tokens per text.
- `vision`: `{arch: <variant such as resnet50, swin-t, vit-b-16, or family resnet|swin|vit>, ...}`
  with any further keys passed to the encoder's constructor.
- `text`: `{arch: transformer, width, layers, heads}` or `{arch: hf, path | package, pooling,
  freeze}`.
- `tokenizer`: a shipped tokenizer name or a `tokenizer.json` path (optional for `hf` towers,
  which default to the tower's own).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import yaml

from unicl.errors import UserInputError

CONFIG_DIR = Path(__file__).parent / "configs"
REQUIRED = {
    "embed_dim": int,
    "image_size": int,
    "image_mean": list,
    "image_std": list,
    "context_length": int,
    "vision": dict,
    "text": dict,
}
OPTIONAL = {"tokenizer": str}


def list_models() -> list[str]:
    """Names of the shipped configurations, e.g. `unicl-tiny`."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))


def load_config(name_or_path: str | os.PathLike) -> dict:
    """A shipped config by name, or a `.yaml`/`.yml`/`.json` file, validated."""
    path = CONFIG_DIR / f"{name_or_path}.yaml"
    if str(name_or_path) not in list_models():
        path = Path(name_or_path)
        if not path.is_file() or path.suffix not in (".yaml", ".yml", ".json"):
            raise UserInputError(
                f"{str(name_or_path)!r} is neither a model name ({', '.join(list_models())}) "
                "nor a .yaml/.json config file; to load a saved model use unicl.load(DIR)"
            )
    try:
        text = path.read_text(encoding="utf-8")
        config = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserInputError(f"{path} is not a valid config file: {error}") from error
    return validate_config(config, source=str(path))


def apply_overrides(config: dict, overrides: dict) -> dict:
    """A copy of `config` with `overrides` applied.

    A dict value merges into `vision`/`text` key by key, unless it names a different `arch`, in
    which case it replaces that section.
    """
    merged = copy.deepcopy(config)
    for key, value in overrides.items():
        section = merged.get(key)
        if (
            isinstance(value, dict)
            and isinstance(section, dict)
            and value.get("arch", section.get("arch")) == section.get("arch")
        ):
            merged[key] = {**merged[key], **copy.deepcopy(value)}
        else:
            merged[key] = copy.deepcopy(value)
    return validate_config(merged, source="overrides")


def validate_config(config: object, source: str) -> dict:
    """Check keys and types; raise `UserInputError` naming the bad key and `source`."""
    if not isinstance(config, dict):
        raise UserInputError(f"{source}: a model config must be a mapping of keys to values")
    unknown = sorted(config.keys() - REQUIRED.keys() - OPTIONAL.keys())
    if unknown:
        raise UserInputError(
            f"{source}: unknown model config keys {unknown}; known: {sorted({**REQUIRED, **OPTIONAL})}"
        )
    for key, kind in {**REQUIRED, **OPTIONAL}.items():
        if key not in config:
            if key in REQUIRED:
                raise UserInputError(f"{source}: the model config needs {key!r}")
            continue
        if not isinstance(config[key], kind) or isinstance(config[key], bool):
            raise UserInputError(f"{source}: {key}={config[key]!r} should be a {kind.__name__}")
    for key in ("image_mean", "image_std"):
        if len(config[key]) != 3 or not all(isinstance(v, (int, float)) for v in config[key]):
            raise UserInputError(f"{source}: {key} should be 3 numbers, got {config[key]!r}")
    for key in ("embed_dim", "image_size", "context_length"):
        if config[key] <= 0:
            raise UserInputError(f"{source}: {key} should be positive, got {config[key]}")
    for tower in ("vision", "text"):
        if "arch" not in config[tower]:
            raise UserInputError(f"{source}: {tower} needs an 'arch' key")
    return config
