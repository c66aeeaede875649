"""Small random microsoft/UniCL models built from `transformers` (code no one here wrote) and saved
as the official code saves them, for the `microsoft-unicl` equivalence tests.

- `tiny_swin()`: a random `transformers.SwinModel` (64 px, patch 4, window 4, three stages of
  16, 8 and 4 cells: the first two shift every second block, the last is one window and never
  does, as the 7-cell last stage of the released 224 px models).
- `tiny_text(vocab)`: a random `CLIPTextModelWithProjection` configured as UniCL's text encoder:
  QuickGELU, MLP 4x, LayerNorm epsilon 1e-12, pooled at the largest token id
  (`eos_token_id: 2`, transformers' rule for that).
- `unicl_state_dict(...)`: their weights in microsoft/UniCL's layout. The Swin names are the
  inverse of transformers' `convert_swin_timm_to_pytorch.py` (`rename_key`, and the `qkv` split
  of `convert_state_dict`) composed with the inverse of the renames transformers 5 applies when
  it loads such files (`conversion_mapping.py`, "swin": `attention.self.query` ->
  `attention.q_proj`, ...). The buffers the official code saves are added from transformers'
  modules: `relative_position_index`, and `attn_mask` from `SwinLayer.get_attn_mask`. The text
  names are the OpenAI layout (`clip_reference.openai_text_state_dict`) under the text prefix.

Saving them as the official code does is `unicl_checkpoint.save_official`.
"""

from __future__ import annotations

import pytest
import torch

from tests.models.clip_reference import CONTEXT, openai_text_state_dict
from tests.models.unicl_checkpoint import (
    DEPTHS,
    EMBED_DIM,
    HEADS,
    IMAGE_SIZE,
    PROJECTION,
    TEXT_HEADS,
    TEXT_WIDTH,
    WINDOW,
)

transformers = pytest.importorskip("transformers")


def _randomise(model, seed: int) -> None:
    """Every parameter random (norm gains around 1), so that no wrong mapping hides behind an
    initial value."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            is_gain = "norm" in name and name.endswith("weight")
            parameter.normal_(1.0 if is_gain else 0.0, 0.1)


def tiny_swin():
    config = transformers.SwinConfig(
        image_size=IMAGE_SIZE,
        patch_size=4,
        embed_dim=EMBED_DIM,
        depths=list(DEPTHS),
        num_heads=list(HEADS),
        window_size=WINDOW,
        mlp_ratio=4.0,
        qkv_bias=True,
        hidden_act="gelu",
        use_absolute_embeddings=False,
        layer_norm_eps=1e-5,
    )
    model = transformers.SwinModel(config).eval()
    _randomise(model, 0)
    return model


def tiny_text(vocab: dict[str, int]):
    end = vocab["<|endoftext|>"]
    config = transformers.CLIPTextConfig(
        hidden_size=TEXT_WIDTH,
        intermediate_size=4 * TEXT_WIDTH,
        num_hidden_layers=2,
        num_attention_heads=TEXT_HEADS,
        vocab_size=len(vocab),
        max_position_embeddings=CONTEXT,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-12,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=2,
        pad_token_id=end,
        projection_dim=PROJECTION,
    )
    model = transformers.CLIPTextModelWithProjection(config).eval()
    _randomise(model, 1)
    return model


SWIN_BLOCK = {
    "layernorm_before": "norm1",
    "attention.o_proj": "attn.proj",
    "layernorm_after": "norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
"""transformers 5 name (legacy name) -> official name, within a block: `layernorm_before` ->
`norm1`, `attention.o_proj` (`attention.output.dense`) -> `attn.proj`, `layernorm_after` ->
`norm2`, `mlp.fc1` (`intermediate.dense`) -> `mlp.fc1`, `mlp.fc2` (`output.dense`) -> `mlp.fc2`."""


def swin_state_dict(swin) -> dict[str, torch.Tensor]:
    """`swin`'s weights and buffers in the official Swin layout (see the module docstring)."""
    hf = {name: tensor.detach().clone() for name, tensor in swin.state_dict().items()}
    state = {}
    for kind in ("weight", "bias"):
        state[f"patch_embed.proj.{kind}"] = hf[f"embeddings.patch_embeddings.projection.{kind}"]
        state[f"patch_embed.norm.{kind}"] = hf[f"embeddings.norm.{kind}"]
        state[f"norm.{kind}"] = hf[f"layernorm.{kind}"]
    for s, stage in enumerate(swin.encoder.layers):
        cells = swin.config.image_size // swin.config.patch_size // 2**s
        for b, layer in enumerate(stage.blocks):
            ours, theirs = f"layers.{s}.blocks.{b}", f"encoder.layers.{s}.blocks.{b}"
            for kind in ("weight", "bias"):
                for hf_name, name in SWIN_BLOCK.items():
                    state[f"{ours}.{name}.{kind}"] = hf[f"{theirs}.{hf_name}.{kind}"]
                state[f"{ours}.attn.qkv.{kind}"] = torch.cat(
                    [hf[f"{theirs}.attention.{p}_proj.{kind}"] for p in "qkv"], dim=0
                )
            bias = layer.attention.relative_position_bias
            state[f"{ours}.attn.relative_position_bias_table"] = hf[
                f"{theirs}.attention.relative_position_bias.relative_position_bias_table"
            ]
            area = bias.window_area
            state[f"{ours}.attn.relative_position_index"] = bias.relative_position_index.view(
                area, area
            ).clone()
            layer.set_shift_and_window_size((cells, cells))
            mask = layer.get_attn_mask(cells, cells, torch.float32, torch.device("cpu"))
            if mask is not None:
                state[f"{ours}.attn_mask"] = mask
        if stage.downsample is not None:
            for name in ("norm.weight", "norm.bias", "reduction.weight"):
                state[f"layers.{s}.downsample.{name}"] = hf[f"encoder.layers.{s}.downsample.{name}"]
    return state


def unicl_state_dict(
    swin,
    text,
    image_projection: torch.Tensor,
    logit_scale: float,
    names: tuple[str, str, str, str] = (
        "image_encoder",
        "text_encoder",
        "image_projection",
        "text_projection",
    ),
) -> dict[str, torch.Tensor]:
    """The official state dict of the model `swin` + `text`, the image projection stored `[in,
    out]`; `names`: the image and text prefixes and the two projections' names."""
    image, language, image_name, text_name = names
    hf_text = {name: tensor.detach().clone() for name, tensor in text.state_dict().items()}
    openai = openai_text_state_dict(hf_text, text.config.num_hidden_layers)
    state = {f"{image}.{name}": tensor for name, tensor in swin_state_dict(swin).items()}
    for name, tensor in openai.items():
        state[f"{language}.{name.removeprefix('transformer.')}"] = tensor
    state[image_name] = image_projection
    state[text_name] = hf_text["text_projection.weight"].T.contiguous()
    state["logit_scale"] = torch.tensor(logit_scale)
    return state
