"""OpenAI and OpenCLIP CLIP ViT checkpoints (one state-dict file) as unicl models.

The file is `.safetensors`, or a pickle (`.pt`, `.pth`, `.bin`, ...) read with
`torch.load(weights_only=True)`, holding the state dict bare or as `{"state_dict": ...}`
(OpenCLIP's training checkpoints; a `module.` prefix is dropped). OpenAI's own release files are
TorchScript archives, refused with the command that exports their state dict.

The sizes are read from tensor shapes, as OpenAI's `clip.model.build_model` does: widths from
`visual.conv1.weight` and `ln_final.weight`, the patch from the convolution's kernel, the image
size from the patch and the number of positions, the context length and vocabulary from
`positional_embedding` and `token_embedding.weight`, layers by counting `resblocks.N`, the MLP
width from `mlp.c_fc.weight`, `embed_dim` from `text_projection`. Two things are not in the file:

- heads: `width // 64` as in OpenAI's and OpenCLIP's standard models, unless given (OpenCLIP's
  ViT-g/14 image tower, for one, has 16 heads of 88 channels);
- the MLP activation: `quick_gelu` for OpenAI's models (and OpenCLIP's `-quickgelu` ones); most
  models OpenCLIP trained itself use `gelu`.

The text is pooled at the largest token id (`pool: argmax`, OpenAI's rule). The mapping
(`OPENAI_CLIP`, the names that `clip.clip_rules` pairs with unicl's, read backwards by
`unicl export`), N a block index:

| OpenAI / OpenCLIP | unicl |
| --- | --- |
| `visual.conv1.weight` | `image_encoder.patch_embed.weight` |
| `visual.class_embedding` | `image_encoder.cls_token` |
| `visual.positional_embedding` | `image_encoder.pos_embed` |
| `visual.ln_pre.*` | `image_encoder.norm_pre.*` |
| `visual.transformer.resblocks.N.*` | `image_encoder.blocks.N.*` |
| `visual.ln_post.*` | `image_encoder.norm.*` |
| `visual.proj [W,E]` | `image_projection.weight [E,W]` (transposed) |
| `token_embedding.weight` | `text_encoder.token_embedding.weight` |
| `positional_embedding` | `text_encoder.positional_embedding` |
| `transformer.resblocks.N.*` | `text_encoder.blocks.N.*` |
| `ln_final.*` | `text_encoder.norm.*` |
| `text_projection [W,E]` | `text_projection.weight [E,W]` (transposed) |
| `logit_scale` | `logit_scale` |

and in each block `ln_1` -> `norm1`, `attn.in_proj_{weight,bias}` -> `attn.qkv` (q, k, v already
stacked in that order), `attn.out_proj` -> `attn.proj`, `ln_2` -> `norm2`, `mlp.c_fc` -> `mlp.0`,
`mlp.c_proj` -> `mlp.2`. The scalars `input_resolution`, `context_length` and `vocab_size` of
state dicts exported from OpenAI's archives are accepted when they agree with the shapes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from unicl.errors import UserInputError
from unicl.models.convert.clip import (
    BlockLayout,
    ClipLayout,
    ClipShape,
    clip_model,
    map_clip,
    openai_tower,
    read_clip_tokenizer,
)
from unicl.models.convert.state_dict import TensorMap, read_tensors
from unicl.models.model import UniCLModel

OPENAI_CLIP = ClipLayout(
    name="OpenAI CLIP layout",
    patch_embed="visual.conv1.weight",
    class_embedding="visual.class_embedding",
    image_positions="visual.positional_embedding",
    pre_norm="visual.ln_pre",
    image_blocks="visual.transformer.resblocks.{}",
    image_norm="visual.ln_post",
    image_projection="visual.proj",
    token_embedding="token_embedding.weight",
    text_positions="positional_embedding",
    text_blocks="transformer.resblocks.{}",
    text_norm="ln_final",
    text_projection="text_projection",
    block=BlockLayout(
        norm1="ln_1.{}",
        qkv=("attn.in_proj_{}",),
        proj="attn.out_proj.{}",
        norm2="ln_2.{}",
        fc1="mlp.c_fc.{}",
        fc2="mlp.c_proj.{}",
    ),
    transposed_projections=True,
)
SIZING = {
    "visual.conv1.weight": 4,
    "visual.positional_embedding": 2,
    "visual.proj": 2,
    "text_projection": 2,
    "positional_embedding": 2,
    "token_embedding.weight": 2,
    "ln_final.weight": 1,
}
"""The tensors the sizes are read from, with their number of dimensions."""
HINT = "unicl convert reads CLIP ViT checkpoints (see docs/pretrained.md)"


def convert_openai_clip(
    path: Path,
    tokenizer: Path,
    act: str = "quick_gelu",
    vision_heads: int | None = None,
    text_heads: int | None = None,
) -> UniCLModel:
    """The unicl model equal to the CLIP ViT checkpoint `path`, with the CLIP tokenizer at
    `tokenizer` (see `clip.read_clip_tokenizer`); `act` and the heads are not in the file (see the
    module's docstring)."""
    state = read_tensors(path)
    where = f"{path} ({OPENAI_CLIP.name})"
    _refuse_other_towers(state, where)
    conv, positions = state["visual.conv1.weight"], state["visual.positional_embedding"]
    grid = round((positions.shape[0] - 1) ** 0.5)
    if conv.shape[-1] != conv.shape[-2] or grid * grid + 1 != positions.shape[0]:
        raise UserInputError(
            f"{where}: visual.conv1.weight {tuple(conv.shape)} and visual.positional_embedding "
            f"{tuple(positions.shape)} are not a square patch embedding and a square grid"
        )
    vision_width, text_width = int(conv.shape[0]), int(state["ln_final.weight"].shape[0])
    vision = openai_tower(
        state, "visual.transformer", vision_width, act, vision_heads, where, "--vision-heads", HINT
    )
    text = openai_tower(
        state, "transformer", text_width, act, text_heads, where, "--text-heads", HINT
    )
    shape = ClipShape(
        vision=vision,
        text=text,
        embed_dim=int(state["text_projection"].shape[-1]),
        image_size=int(conv.shape[-1]) * grid,
        patch_size=int(conv.shape[-1]),
        context_length=int(state["positional_embedding"].shape[0]),
        vocab_size=int(state["token_embedding.weight"].shape[0]),
        pool="argmax",
        init_logit_bias=float(state["logit_bias"]) if "logit_bias" in state else None,
    )
    tensors = TensorMap(state, where=where, hint=HINT)
    for key, value in (
        ("input_resolution", shape.image_size),
        ("context_length", shape.context_length),
        ("vocab_size", shape.vocab_size),
    ):
        tensors.ignore(
            key, lambda tensor, value=value: tensor.numel() == 1 and tensor.item() == value
        )
    model = clip_model(shape, read_clip_tokenizer(tokenizer), where)
    map_clip(tensors, OPENAI_CLIP, shape)
    tensors.load_into(model)
    return model


def _refuse_other_towers(state: dict[str, torch.Tensor], where: str) -> None:
    """Name what the checkpoint is when it lacks the tensors that size a CLIP ViT model, or
    holds them with other numbers of dimensions."""
    missing = [key for key in SIZING if key not in state]
    if not missing:
        wrong = [
            f"{k} {tuple(state[k].shape)}" for k, ndim in SIZING.items() if state[k].ndim != ndim
        ]
        if wrong:
            raise UserInputError(f"{where}: unexpected shapes {', '.join(wrong)}; {HINT}")
        return
    if any(key.startswith("visual.layer1.") for key in state):
        raise UserInputError(
            f"{where}: this is a ModifiedResNet CLIP (RN50, RN101, RN50x4, ...); unicl converts "
            "ViT image towers only (see docs/pretrained.md)"
        )
    raise UserInputError(
        f"{where}: missing tensors {', '.join(missing)}, so this is not a CLIP ViT checkpoint "
        f"(it has {', '.join(sorted(state)[:3]) or 'no tensors'}, ...); {HINT}"
    )
