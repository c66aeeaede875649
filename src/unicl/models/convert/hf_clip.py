"""Hugging Face CLIP directories (`transformers.CLIPModel.save_pretrained`) as unicl models.

Read from the directory:

- `config.json`, through `transformers.CLIPConfig` (which fills the defaults that files written by
  older versions leave out; `transformers` is the `unicl[hf]` extra, and only its configuration
  class is used): tower sizes, `hidden_act` (`quick_gelu` or `gelu`), `projection_dim`, and the
  text pooling, as `CLIPTextModel` does it: `eos_token_id == 2` (configs written before
  transformers PR #24773) pools at the largest token id (`pool: argmax`), any other value at the
  first occurrence of that id (`pool: eot`);
- the weights: `model.safetensors` (or the shards of `model.safetensors.index.json`), else
  `pytorch_model.bin` read with `torch.load(weights_only=True)`;
- the tokenizer: `tokenizer.json`, else `vocab.json` + `merges.txt`; padded with `<|endoftext|>`;
- `preprocessor_config.json`'s `image_mean` / `image_std` when present (CLIP's otherwise).

The mapping (`HF_CLIP`, the names that `clip.clip_rules` pairs with unicl's, read backwards by
`unicl export`), N a block index:

| Hugging Face | unicl |
| --- | --- |
| `vision_model.embeddings.patch_embedding.weight` | `image_encoder.patch_embed.weight` |
| `vision_model.embeddings.class_embedding` | `image_encoder.cls_token` |
| `vision_model.embeddings.position_embedding.weight` | `image_encoder.pos_embed` |
| `vision_model.pre_layrnorm.*` | `image_encoder.norm_pre.*` |
| `vision_model.encoder.layers.N.*` | `image_encoder.blocks.N.*` |
| `vision_model.post_layernorm.*` | `image_encoder.norm.*` |
| `visual_projection.weight` | `image_projection.weight` (already a Linear weight) |
| `text_model.embeddings.token_embedding.weight` | `text_encoder.token_embedding.weight` |
| `text_model.embeddings.position_embedding.weight` | `text_encoder.positional_embedding` |
| `text_model.encoder.layers.N.*` | `text_encoder.blocks.N.*` |
| `text_model.final_layer_norm.*` | `text_encoder.norm.*` |
| `text_projection.weight` | `text_projection.weight` |
| `logit_scale` | `logit_scale` |

and in each block `layer_norm1` -> `norm1`, `self_attn.{q,k,v}_proj` -> `attn.qkv` (concatenated),
`self_attn.out_proj` -> `attn.proj`, `layer_norm2` -> `norm2`, `mlp.fc1` -> `mlp.0`, `mlp.fc2` ->
`mlp.2`. `*.embeddings.position_ids`, a constant that older versions saved, is accepted when it
holds 0, 1, ..., N-1.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import get_args

import torch

from unicl.constants import CLIP_MEAN, CLIP_STD
from unicl.errors import UserInputError
from unicl.models.convert.clip import (
    BlockLayout,
    ClipLayout,
    ClipShape,
    ClipTower,
    clip_model,
    map_clip,
    read_clip_tokenizer,
)
from unicl.models.convert.state_dict import TensorMap, read_tensors
from unicl.models.layers import Activation
from unicl.models.model import UniCLModel

HF_CLIP = ClipLayout(
    name="Hugging Face CLIP",
    patch_embed="vision_model.embeddings.patch_embedding.weight",
    class_embedding="vision_model.embeddings.class_embedding",
    image_positions="vision_model.embeddings.position_embedding.weight",
    pre_norm="vision_model.pre_layrnorm",
    image_blocks="vision_model.encoder.layers.{}",
    image_norm="vision_model.post_layernorm",
    image_projection="visual_projection.weight",
    token_embedding="text_model.embeddings.token_embedding.weight",
    text_positions="text_model.embeddings.position_embedding.weight",
    text_blocks="text_model.encoder.layers.{}",
    text_norm="text_model.final_layer_norm",
    text_projection="text_projection.weight",
    block=BlockLayout(
        norm1="layer_norm1.{}",
        qkv=("self_attn.q_proj.{}", "self_attn.k_proj.{}", "self_attn.v_proj.{}"),
        proj="self_attn.out_proj.{}",
        norm2="layer_norm2.{}",
        fc1="mlp.fc1.{}",
        fc2="mlp.fc2.{}",
    ),
    transposed_projections=False,
)
HINT = "unicl convert reads CLIPModel directories with ViT towers (see docs/pretrained.md)"


def convert_hf_clip(directory: Path) -> UniCLModel:
    """The unicl model equal to the `CLIPModel` saved in `directory` (same features, same
    tokenizer ids, same logit scale)."""
    config = _clip_config(directory)
    vision, text = config.vision_config, config.text_config
    legacy_eos = text.eos_token_id == 2
    shape = ClipShape(
        vision=_tower(vision, "vision_config", directory),
        text=_tower(text, "text_config", directory),
        embed_dim=config.projection_dim,
        image_size=vision.image_size,
        patch_size=vision.patch_size,
        context_length=text.max_position_embeddings,
        vocab_size=text.vocab_size,
        pool="argmax" if legacy_eos else "eot",
        eot_id=None if legacy_eos else text.eos_token_id,
        **_normalisation(directory),
    )
    if vision.num_channels != 3:
        raise UserInputError(
            f"{directory}: vision_config.num_channels is {vision.num_channels}; unicl's image "
            "towers read RGB images (3 channels)"
        )
    tensors = TensorMap(_weights(directory), where=f"{directory} ({HF_CLIP.name})", hint=HINT)
    grid = shape.image_size // shape.patch_size
    for name, positions in (
        ("vision_model", grid * grid + 1),
        ("text_model", shape.context_length),
    ):
        tensors.ignore(f"{name}.embeddings.position_ids", partial(_counts_to, positions))
    model = clip_model(shape, read_clip_tokenizer(directory), str(directory))
    map_clip(tensors, HF_CLIP, shape)
    tensors.load_into(model)
    return model


def _counts_to(count: int, ids: torch.Tensor) -> bool:
    """Whether `ids` holds 0, 1, ..., count - 1 (any leading dimensions of size 1)."""
    return ids.flatten().tolist() == list(range(count))


def _clip_config(directory: Path):
    """`transformers.CLIPConfig` of `directory`, after checking that it describes a CLIP model."""
    path = directory / "config.json"
    try:
        model_type = json.loads(path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise UserInputError(f"{path} is not a readable Hugging Face config: {error}") from error
    if model_type != "clip":
        raise UserInputError(
            f"{path} describes a {model_type!r} model; unicl convert reads Hugging Face CLIPModel "
            "directories (model_type 'clip')"
        )
    try:
        import transformers
    except ImportError as error:
        raise UserInputError(
            "converting a Hugging Face CLIP directory needs transformers: pip install 'unicl[hf]'"
        ) from error
    return transformers.CLIPConfig.from_pretrained(str(directory), local_files_only=True)


def _tower(config, section: str, directory: Path) -> ClipTower:
    """The sizes of one tower, refusing what unicl's towers cannot represent exactly."""
    if config.hidden_act not in get_args(Activation):
        raise UserInputError(
            f"{directory}: {section}.hidden_act is {config.hidden_act!r}; unicl converts "
            f"{' and '.join(get_args(Activation))}"
        )
    if config.layer_norm_eps != 1e-5:
        raise UserInputError(
            f"{directory}: {section}.layer_norm_eps is {config.layer_norm_eps}; unicl's towers "
            "use CLIP's 1e-5"
        )
    return ClipTower(
        width=config.hidden_size,
        layers=config.num_hidden_layers,
        heads=config.num_attention_heads,
        mlp=config.intermediate_size,
        act=config.hidden_act,
    )


def _normalisation(directory: Path) -> dict:
    """`image_mean` / `image_std` of `preprocessor_config.json`, or CLIP's."""
    path = directory / "preprocessor_config.json"
    if not path.is_file():
        return dict(image_mean=CLIP_MEAN, image_std=CLIP_STD)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserInputError(f"{path} is not valid JSON: {error}") from error
    return dict(
        image_mean=tuple(record.get("image_mean", CLIP_MEAN)),
        image_std=tuple(record.get("image_std", CLIP_STD)),
    )


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    """The state dict of `directory`: safetensors (single or sharded), else `pytorch_model.bin`."""
    single, index = directory / "model.safetensors", directory / "model.safetensors.index.json"
    if single.is_file():
        return read_tensors(single)
    if index.is_file():
        try:
            shards = sorted(
                set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            )
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, AttributeError) as error:
            raise UserInputError(f"{index} is not a safetensors index: {error}") from error
        tensors = {}
        for shard in shards:
            if not isinstance(shard, str) or Path(shard).name != shard:
                raise UserInputError(f"{index} names a shard outside the directory: {shard!r}")
            tensors.update(read_tensors(directory / shard))
        return tensors
    if (directory / "pytorch_model.bin").is_file():
        return read_tensors(directory / "pytorch_model.bin")
    raise UserInputError(
        f"{directory} has no weights: expected model.safetensors, model.safetensors.index.json "
        "or pytorch_model.bin"
    )
