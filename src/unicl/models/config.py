"""The model configuration: a typed, bounded `ModelConfig`, and the named configs shipped with unicl.

Named configs are YAML files in `unicl/models/configs/`; a config may also be any `.yaml`/`.json`
file, and a saved model's `config.json` holds one. All of them go through `model_config_from_dict`,
which refuses unknown keys (with a did-you-mean), values of the wrong type and sizes out of bounds
with a one-line `UserInputError` before anything is built.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml

from unicl.config_checks import Range, build_dataclass, describe_yaml_error
from unicl.errors import UserInputError
from unicl.files import read_utf8
from unicl.models.registry import IMAGE_TOWERS, TEXT_TOWERS
from unicl.models.tower import ContextLength, ImageSize, Width

CONFIG_DIR = Path(__file__).parent / "configs"
Mean = Annotated[float, Range(0.0, 1.0)]
Std = Annotated[float, Range(0.0, 1.0, low_open=True)]
Scale = Annotated[float, Range(0.0, 1.0, low_open=True)]


@dataclass(frozen=True, kw_only=True)
class TowerLRScale:
    """The learning rate of each tower as a share of the rate of the model's other parameters
    (the projections and the logit scale), each in (0, 1]. A tower that comes pretrained states
    less than 1 so that training keeps what it learned while the new parts adapt; a tower trained
    from scratch keeps 1. Training multiplies it into `optim.layer_decay`'s per-layer rates
    (`unicl.train.optim.lr_scales`); `optim.tower_lr_scale` overrides it."""

    image: Scale = 1.0
    text: Scale = 1.0


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """What `UniCLModel` is built from and what `save_pretrained` writes to `config.json`.

    - `embed_dim`: the shared embedding width E, in [1, 16384].
    - `image_size` (pixels, in [1, 8192]); `image_mean`, `image_std`: 3 values each on 0-1 pixel
      values (means in [0, 1], standard deviations in (0, 1]).
    - `context_length`: tokens per text, in [1, 8192].
    - `tokenizer`: a shipped tokenizer name or a `tokenizer.json` path; optional when the text
      tower has a directory (`text.path` or `text.package`), whose own tokenizer is then used.
    - `vision`: `{arch: <family or variant, e.g. resnet50, swin-t, vit-b-16>, **arguments}`.
    - `text`: `{arch: transformer | hf, **arguments}`; `package: NAME` may replace `path` for the
      towers listed in `unicl.models.factory.PACKAGED_TEXT_TOWERS`.
    - `image_only`: the text tower was not trained with the image tower (a `ce` or `supcon` run),
      so the model is an image encoder: everything that needs its texts refuses it.
    - `tower_lr_scale`: `{image, text}`, each tower's learning rate as a share of the rest's
      (`TowerLRScale`; 1 and 1 unless a tower comes pretrained).
    - `init_logit_bias`: the model has a learned `logit_bias` (the sigmoid objective's `b`),
      starting at this value; None (the default): no bias. OpenCLIP's key of the same meaning.

    The tower sections' keys are the registered family's constructor arguments (see
    `unicl.models.registry`), checked against its signature, annotations and bounds; the
    arguments every family takes (`image_size`; `vocab_size`, `pad_id`, `context_length`) come
    from the top level and the tokenizer and may not be set in a section.
    """

    embed_dim: Width
    image_size: ImageSize
    image_mean: tuple[Mean, Mean, Mean]
    image_std: tuple[Std, Std, Std]
    context_length: ContextLength
    tokenizer: str | None = None
    vision: dict[str, Any]
    text: dict[str, Any]
    image_only: bool = False
    tower_lr_scale: TowerLRScale = TowerLRScale()
    init_logit_bias: Annotated[float, Range(-1e4, 1e4)] | None = None

    def validate(self) -> None:
        """Check the tower sections against their registered families."""
        IMAGE_TOWERS.arguments(self.vision)
        TEXT_TOWERS.arguments(self.text)

    def to_dict(self) -> dict[str, Any]:
        """The plain JSON/YAML mapping that `model_config_from_dict` reads back unchanged."""
        record = dataclasses.asdict(self)
        record.update(image_mean=list(self.image_mean), image_std=list(self.image_std))
        if self.tokenizer is None:
            del record["tokenizer"]
        if not self.image_only:
            del record["image_only"]
        if self.tower_lr_scale == TowerLRScale():
            del record["tower_lr_scale"]
        if self.init_logit_bias is None:
            del record["init_logit_bias"]
        return record


def list_models() -> list[str]:
    """Names of the shipped configurations, e.g. `unicl-tiny`."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))


def model_config_from_dict(raw: object, source: str) -> ModelConfig:
    """Validate a raw mapping (from YAML or JSON) into a `ModelConfig`; errors name `source`."""
    try:
        return build_dataclass(ModelConfig, copy.deepcopy(raw), "")
    except UserInputError as error:
        raise UserInputError(f"{source}: {error}") from None


def load_model_config(name_or_path: str | os.PathLike) -> ModelConfig:
    """A shipped config by name, or a `.yaml`/`.yml`/`.json` file, validated."""
    path = CONFIG_DIR / f"{name_or_path}.yaml"
    if str(name_or_path) not in list_models():
        path = Path(name_or_path)
        if not path.is_file() or path.suffix not in (".yaml", ".yml", ".json"):
            raise UserInputError(
                f"{str(name_or_path)!r} is neither a model name ({', '.join(list_models())}) "
                "nor a .yaml/.json config file; to load a saved model use unicl.load(DIR)"
            )
    text = read_utf8(path)
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise UserInputError(f"{path} is not a valid config file: {error}") from None
    except yaml.YAMLError as error:
        raise UserInputError(
            f"{path} is not a valid config file: {describe_yaml_error(error)}"
        ) from None
    return model_config_from_dict(raw, source=str(path))


def apply_overrides(config: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    """`config` with `overrides` applied, validated.

    A dict value merges into `vision`/`text` key by key, unless it names a different `arch`, in
    which case it replaces that section.
    """
    merged = config.to_dict()
    for key, value in overrides.items():
        section = merged.get(key)
        if (
            isinstance(value, dict)
            and isinstance(section, dict)
            and value.get("arch", section.get("arch")) == section.get("arch")
        ):
            merged[key] = {**section, **value}
        else:
            merged[key] = value
    return model_config_from_dict(merged, source="overrides")
