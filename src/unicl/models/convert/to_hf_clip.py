"""A unicl model as a Hugging Face CLIP directory: `hf_clip_files(model) -> {file: content}`.

The directory loads offline with `transformers.CLIPModel.from_pretrained(DIR)`,
`CLIPProcessor.from_pretrained(DIR)` and `CLIPTokenizer(Fast).from_pretrained(DIR)`, and with
`unicl convert DIR` back into the same unicl model:

- `model.safetensors`: the weights by the table `hf_clip.HF_CLIP` read backwards
  (`clip.clip_rules`), float32 as unicl holds them;
- `config.json`: `CLIPConfig` (`model_type: clip`) with each tower's sizes, `hidden_act`,
  `layer_norm_eps` 1e-5 and `projection_dim`. The text pooling is `CLIPTextModel`'s
  `eos_token_id` rule: `pool: eot` writes the end-of-text id (pooled at its first occurrence),
  `pool: argmax` writes 2, which transformers reads as "pool at the largest token id" (configs
  written before transformers PR #24773); an `eot` model whose end-of-text id is 2 therefore has
  no counterpart and is refused;
- `preprocessor_config.json`: `CLIPImageProcessor` resizing the shorter side to `image_size`
  (bicubic), centre-cropping to it and normalising with the model's mean and std, as unicl's
  `EvalTransform` does;
- the tokenizer files (`clip_export.clip_tokenizer_files`): `vocab.json`, `merges.txt`,
  `tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`.
"""

from __future__ import annotations

import json

import torch

from unicl.errors import UserInputError
from unicl.models.convert.clip import ClipShape, ClipTower, clip_rules
from unicl.models.convert.clip_export import NORM_EPS, clip_shape, clip_tokenizer_files
from unicl.models.convert.hf_clip import HF_CLIP
from unicl.models.convert.rules import export_rules
from unicl.models.model import UniCLModel
from unicl.models.tokenizer import END, START

FORMAT = "hf-clip"
LEGACY_EOS = 2
"""The `eos_token_id` that makes `CLIPTextModel` pool at the largest token id."""


def hf_clip_files(model: UniCLModel) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(the weights of `model.safetensors`, the text files by name) of `model` as a Hugging
    Face CLIP directory."""
    shape = clip_shape(model, FORMAT)
    if shape.init_logit_bias is not None:
        raise UserInputError(
            "the model has a logit_bias (trained with objective unicl-sigmoid) and CLIPModel has "
            "none; export with --format open-clip, which keeps it"
        )
    if shape.pool == "eot" and shape.eot_id == LEGACY_EOS:
        raise UserInputError(
            f"the text tower pools at end-of-text id {LEGACY_EOS}, which transformers reads as "
            "'pool at the largest token id' (its configs before PR #24773); no hf-clip "
            "config expresses it"
        )
    rules = clip_rules(HF_CLIP, shape.vision.layers, shape.text.layers)
    weights = export_rules(model.state_dict(), rules, f"{FORMAT} ({HF_CLIP.name})")
    files = {
        "config.json": _json(_config(shape, model.tokenizer.backend.token_to_id)),
        "preprocessor_config.json": _json(_preprocessor(shape)),
        **clip_tokenizer_files(model.tokenizer),
    }
    return weights, files


def _json(record: dict) -> str:
    return json.dumps(record, indent=2) + "\n"


def _tower(tower: ClipTower, shape: ClipShape) -> dict:
    return {
        "hidden_size": tower.width,
        "intermediate_size": tower.mlp,
        "num_hidden_layers": tower.layers,
        "num_attention_heads": tower.heads,
        "hidden_act": tower.act,
        "layer_norm_eps": NORM_EPS,
        "projection_dim": shape.embed_dim,
    }


def _config(shape: ClipShape, token_to_id) -> dict:
    """`CLIPConfig` of `shape`; `token_to_id` gives the special tokens' ids."""
    end = token_to_id(END)
    text = {
        **_tower(shape.text, shape),
        "vocab_size": shape.vocab_size,
        "max_position_embeddings": shape.context_length,
        "bos_token_id": token_to_id(START),
        "eos_token_id": LEGACY_EOS if shape.pool == "argmax" else shape.eot_id,
        "pad_token_id": end,
    }
    vision = {
        **_tower(shape.vision, shape),
        "image_size": shape.image_size,
        "patch_size": shape.patch_size,
        "num_channels": 3,
    }
    return {
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": shape.embed_dim,
        "text_config": text,
        "vision_config": vision,
        "dtype": "float32",
    }


def _preprocessor(shape: ClipShape) -> dict:
    return {
        "image_processor_type": "CLIPImageProcessor",
        "processor_class": "CLIPProcessor",
        "do_convert_rgb": True,
        "do_resize": True,
        "size": {"shortest_edge": shape.image_size},
        "resample": 3,  # PIL's bicubic
        "do_center_crop": True,
        "crop_size": {"height": shape.image_size, "width": shape.image_size},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(shape.image_mean),
        "image_std": list(shape.image_std),
    }


USE = (
    "```python",
    "from transformers import CLIPModel, CLIPProcessor",
    "",
    'model = CLIPModel.from_pretrained("{path}")',
    'processor = CLIPProcessor.from_pretrained("{path}")',
    'inputs = processor(text=["a photo of a cat"], images=image, return_tensors="pt", padding=True)',
    "logits_per_image = model(**inputs).logits_per_image",
    "```",
)
"""How the exported directory is loaded, for its model card."""
