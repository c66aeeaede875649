"""OpenCLIP's entry points, for harnesses and scripts written against OpenCLIP (CLIP_benchmark).

    model, preprocess_train, preprocess_val = unicl.create_model_and_transforms(NAME_OR_DIR)
    tokenizer = unicl.get_tokenizer(NAME_OR_DIR)
    images = torch.stack([preprocess_val(image) for image in pil_images])
    image_features = model.encode_image(images)          # [B, E]; normalize=True for unit norm
    text_features = model.encode_text(tokenizer(texts))  # [T, E]
    logits = model.logit_scale.exp() * normalized_image_features @ normalized_text_features.T

NAME_OR_DIR is a model directory saved by unicl (`save_pretrained`, `unicl train`'s `model/`,
`unicl convert`'s output), a Hugging Face CLIP directory (converted in memory, as `unicl convert`
does), or a shipped model name or config file (a new model; `unicl.list_models()`).
OpenCLIP's `local-dir:` prefix is accepted; `hf-hub:` is refused (unicl reads local files only).

The meanings are OpenCLIP's: `model.logit_scale` is a parameter holding log(multiplier), the
scale of the logits being `logit_scale.exp()` (unicl's `UniCLModel` has always held it so, as do
CLIP and transformers' `CLIPModel`); `preprocess_val` takes a PIL image of any mode and returns the
normalised float tensor [3, S, S] that `unicl predict` and `unicl eval` feed the model
(`EvalTransform`); `preprocess_train` is unicl's training augmentation for one image
(`TrainTransform`); the tokenizer maps a text or a list of texts to int64 [B, context_length].
The model is returned in eval mode on `device`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from unicl.data import EvalTransform, TrainTransform
from unicl.errors import UserInputError
from unicl.models import UniCLModel, create_model, load
from unicl.models.config import load_model_config, model_config_from_dict
from unicl.models.convert import convert_checkpoint
from unicl.models.convert.clip import read_clip_tokenizer
from unicl.models.factory import config_tokenizer
from unicl.models.serialization import CONFIG_FILE, read_config
from unicl.models.tokenizer import Tokenizer

CLIP_CONTEXT = 77
"""Hugging Face's default `max_position_embeddings` of a CLIP text tower."""


def create_model_and_transforms(
    name_or_dir: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[UniCLModel, TrainTransform, EvalTransform]:
    """(model in eval mode on `device`, training transform, evaluation transform) of
    `name_or_dir` (see the module's docstring)."""
    kind, where = _resolve(name_or_dir)
    if kind == "saved":
        model = load(where)
    elif kind == "hf-clip":
        model = convert_checkpoint(where, "hf-clip")
    else:
        model = create_model(where)
    mean, std = model.image_mean, model.image_std
    train = TrainTransform(model.image_size, mean, std)
    return model.to(device).eval(), train, EvalTransform(model.image_size, mean, std)


def get_tokenizer(name_or_dir: str | os.PathLike) -> Tokenizer:
    """The tokenizer of `name_or_dir`, read without building the model: a callable from a text
    or a list of texts to int64 [B, context_length]."""
    kind, where = _resolve(name_or_dir)
    if kind == "saved":
        config = model_config_from_dict(read_config(where), source=str(where / CONFIG_FILE))
        return config_tokenizer(config, where)
    if kind == "hf-clip":
        text = json.loads((where / CONFIG_FILE).read_text(encoding="utf-8")).get("text_config")
        context = (text or {}).get("max_position_embeddings", CLIP_CONTEXT)
        return Tokenizer(read_clip_tokenizer(where), context)
    return config_tokenizer(load_model_config(where))


def _resolve(name_or_dir: str | os.PathLike) -> tuple[str, Path | str]:
    """(`saved`, `hf-clip` or `config`, the directory or the name)."""
    text = str(name_or_dir)
    if text.startswith("hf-hub:"):
        raise UserInputError(
            f"{text}: unicl reads local files only; download the model and give its directory"
        )
    text = text.removeprefix("local-dir:")
    path = Path(text)
    if not path.is_dir():
        return "config", text
    config = path / CONFIG_FILE
    try:
        record = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        record = None
    if isinstance(record, dict) and record.get("model_type") == "clip":
        return "hf-clip", path
    if isinstance(record, dict) and "format" not in record:
        raise UserInputError(
            f"{config} is neither a unicl model config nor a Hugging Face CLIP config"
        )
    return "saved", path  # load() names what is missing or damaged
