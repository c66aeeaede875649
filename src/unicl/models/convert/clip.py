"""CLIP ViT models in unicl terms, shared by the Hugging Face and the OpenAI/OpenCLIP converters.

A CLIP ViT model becomes a `UniCLModel` whose

- image tower is the `vit` family with `pre_norm=True` (CLIP's `ln_pre`), `patch_bias=False` and
  the checkpoint's activation;
- text tower is the `transformer` family with the checkpoint's activation, pooled at the
  end-of-text token (`pool: eot` with its id, or `pool: argmax`, as the source model pools);
- tokenizer is CLIP's, padding with `<|endoftext|>` (`unicl.models.tokenizer.use_clip_padding`);
- `image_mean` / `image_std` are CLIP's unless the source says otherwise; `embed_dim`,
  `image_size` and `context_length` are the checkpoint's.

A format is a `ClipLayout`: its name for every tensor. `clip_rules` is the one table that pairs
every unicl tensor with the layout's (`block_rules` those of one transformer block, `layers.Block`,
the query, key and value projections concatenated into `attn.qkv` in that order); the importers
read it forwards (`map_clip`), the exporters backwards (`rules.export_rules`).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import tokenizers
import torch

from unicl.constants import CLIP_MEAN, CLIP_STD
from unicl.errors import UserInputError
from unicl.models.config import model_config_from_dict
from unicl.models.convert.rules import Rule, import_rules, rule
from unicl.models.convert.state_dict import TensorMap
from unicl.models.factory import model_from_config
from unicl.models.model import UniCLModel
from unicl.models.tokenizer import Tokenizer, clip_tokenizer, clip_vocabulary, use_clip_padding

OPENAI_MERGES = 49152 - 256 - 2
"""How many merges of `bpe_simple_vocab_16e6.txt.gz` OpenAI's tokenizer uses (48,894)."""
HEAD_WIDTH = 64
"""Channels per attention head in OpenAI's CLIP models (heads = width // 64)."""


@dataclass(frozen=True)
class ClipTower:
    """The sizes of one CLIP transformer: `width`, `layers`, `heads`, MLP hidden width `mlp`, and
    the MLP activation `act` (`gelu` or `quick_gelu`)."""

    width: int
    layers: int
    heads: int
    mlp: int
    act: str

    @property
    def mlp_ratio(self) -> float:
        """The ratio whose `int(width * ratio)` is `mlp` (unicl's and OpenCLIP's MLP width rule):
        nudged up when plain division rounds down."""
        ratio = self.mlp / self.width
        return ratio if int(self.width * ratio) == self.mlp else (self.mlp + 0.5) / self.width

    def section(self, layers_key: str) -> dict:
        """The sizes as keys of a `vit` or `transformer` config section, whose layer count is
        called `layers_key`."""
        return {
            "width": self.width,
            layers_key: self.layers,
            "heads": self.heads,
            "mlp_ratio": self.mlp_ratio,
            "act": self.act,
        }


@dataclass(frozen=True)
class ClipShape:
    """Everything that sizes a CLIP ViT model in unicl: the towers, the shared `embed_dim`,
    `image_size` and `patch_size` (pixels), `context_length` and `vocab_size` (token positions
    and embedding rows), how the text is pooled (`pool`, with `eot_id` for `eot`), the image
    normalisation, and the initial `logit_bias` of a model that has one (OpenCLIP's
    `init_logit_bias`; None: no bias)."""

    vision: ClipTower
    text: ClipTower
    embed_dim: int
    image_size: int
    patch_size: int
    context_length: int
    vocab_size: int
    pool: str
    eot_id: int | None = None
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    init_logit_bias: float | None = None


def clip_model(shape: ClipShape, tokenizer: tokenizers.Tokenizer, where: str) -> UniCLModel:
    """A freshly initialised unicl model of `shape` with the CLIP `tokenizer`, to be filled by a
    `TensorMap`. The configuration goes through the same checks as any model config (errors name
    `where`)."""
    vision = {"arch": "vit", **shape.vision.section("depth"), "patch_size": shape.patch_size}
    vision.update(pre_norm=True, patch_bias=False)
    text = {"arch": "transformer", **shape.text.section("layers"), "pool": shape.pool}
    if shape.eot_id is not None:
        text["eot_id"] = shape.eot_id
    config = dict(
        embed_dim=shape.embed_dim,
        image_size=shape.image_size,
        image_mean=list(shape.image_mean),
        image_std=list(shape.image_std),
        context_length=shape.context_length,
        vision=vision,
        text=text,
        init_logit_bias=shape.init_logit_bias,
    )
    return model_with_tokenizer(config, tokenizer, shape.vocab_size, where)


def model_with_tokenizer(
    config: dict, tokenizer: tokenizers.Tokenizer, vocab_size: int, where: str
) -> UniCLModel:
    """A freshly initialised unicl model of the raw model `config` (checked as any model config,
    errors naming `where`) with `tokenizer`, which must have the `vocab_size` tokens that the
    checkpoint's text tower embeds."""
    checked = model_config_from_dict(config, source=where)
    wrapped = Tokenizer(tokenizer, checked.context_length)
    if wrapped.vocab_size != vocab_size:
        raise UserInputError(
            f"{where}: the tokenizer has {wrapped.vocab_size} tokens but the text tower embeds "
            f"{vocab_size}; give the checkpoint's own CLIP tokenizer"
        )
    return model_from_config(checked, tokenizer=wrapped)


def openai_tower(
    state: Mapping[str, torch.Tensor],
    prefix: str,
    width: int,
    act: str,
    heads: int | None,
    where: str,
    heads_option: str,
    hint: str,
) -> ClipTower:
    """The sizes of the OpenAI-layout transformer whose blocks are `{prefix}.resblocks.N` (counted,
    as OpenAI's `build_model` does, by their `attn.in_proj_weight`), its MLP width from the first
    block's `mlp.c_fc.weight`. `heads` None means width // 64 (OpenAI's head width), refused with
    a pointer to `heads_option` when the width is not a multiple of 64."""
    pattern = re.compile(rf"{re.escape(prefix)}\.resblocks\.(\d+)\.attn\.in_proj_weight$")
    indices = {int(match.group(1)) for key in state if (match := pattern.match(key))}
    if not indices:
        raise UserInputError(f"{where}: no {prefix}.resblocks.N.attn.in_proj_weight; {hint}")
    if heads is None:
        if width % HEAD_WIDTH:
            raise UserInputError(
                f"{where}: {prefix} width {width} is not a multiple of {HEAD_WIDTH}, so its number "
                f"of heads is unknown; pass {heads_option}"
            )
        heads = width // HEAD_WIDTH
    fc = f"{prefix}.resblocks.{min(indices)}.mlp.c_fc.weight"
    hidden = state.get(fc)
    if hidden is None or hidden.ndim != 2:
        shape = "missing" if hidden is None else f"of shape {tuple(hidden.shape)}"
        raise UserInputError(f"{where}: {fc} is {shape}; {hint}")
    return ClipTower(
        width=width, layers=len(indices), heads=heads, mlp=int(hidden.shape[0]), act=act
    )


@dataclass(frozen=True)
class BlockLayout:
    """A format's names, relative to one block and with `{}` for `weight` / `bias`, of the
    tensors of unicl's `layers.Block`: `norm1`, the query/key/value projections (`qkv`: one fused
    name or three), the attention output `proj`, `norm2`, and the MLP's `fc1` and `fc2`."""

    norm1: str
    qkv: tuple[str, ...]
    proj: str
    norm2: str
    fc1: str
    fc2: str


def block_rules(ours: str, theirs: str, layout: BlockLayout) -> list[Rule]:
    """The rules of unicl block `ours` (e.g. `text_encoder.blocks.3`) and the layout's block
    `theirs`:

    | unicl | layout |
    | --- | --- |
    | `norm1.*` | `norm1` |
    | `attn.qkv.*` | `qkv` (three names: concatenated as q, k, v along the output dimension) |
    | `attn.proj.*` | `proj` |
    | `norm2.*` | `norm2` |
    | `mlp.0.*` / `mlp.2.*` | `fc1` / `fc2` |
    """
    pairs = (
        ("norm1", (layout.norm1,)),
        ("attn.qkv", layout.qkv),
        ("attn.proj", (layout.proj,)),
        ("norm2", (layout.norm2,)),
        ("mlp.0", (layout.fc1,)),
        ("mlp.2", (layout.fc2,)),
    )
    return [
        rule(f"{ours}.{name}.{kind}", *(f"{theirs}.{n.format(kind)}" for n in names))
        for name, names in pairs
        for kind in ("weight", "bias")
    ]


def read_clip_tokenizer(path: Path) -> tokenizers.Tokenizer:
    """CLIP's tokenizer from `path`, padding with `<|endoftext|>`: a `tokenizer.json`, a folder
    holding one or Hugging Face's `vocab.json` + `merges.txt`, or OpenAI's
    `bpe_simple_vocab_16e6.txt.gz` (the merges; the vocabulary follows from them)."""
    if path.is_dir():
        if (path / "tokenizer.json").is_file():
            return read_clip_tokenizer(path / "tokenizer.json")
        vocab_file, merges_file = path / "vocab.json", path / "merges.txt"
        if not (vocab_file.is_file() and merges_file.is_file()):
            raise UserInputError(
                f"{path} has no CLIP tokenizer: it needs tokenizer.json, or vocab.json and "
                "merges.txt"
            )
        try:
            vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserInputError(f"{vocab_file} is not valid JSON: {error}") from error
        if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
            raise UserInputError(f"{vocab_file} is not a vocabulary (a map of tokens to ids)")
        return clip_tokenizer(vocab, _merges(merges_file.read_text(encoding="utf-8"), merges_file))
    if not path.is_file():
        raise UserInputError(f"tokenizer {path} does not exist")
    if path.name.endswith(".gz"):
        try:
            text = gzip.decompress(path.read_bytes()).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as error:
            raise UserInputError(f"{path} is not a gzip-compressed merges file: {error}") from error
        merges = _merges(text, path)[:OPENAI_MERGES]
        return clip_tokenizer(clip_vocabulary(merges), merges)
    try:
        backend = tokenizers.Tokenizer.from_file(str(path))
    except Exception as error:
        raise UserInputError(f"{path} is not a valid tokenizer.json: {error}") from error
    return use_clip_padding(backend)


def _merges(text: str, path: Path) -> list[tuple[str, str]]:
    """BPE merges, one `left right` pair a line after the `#version` header line."""
    lines = text.split("\n")
    if lines and "#version" in lines[0]:
        lines = lines[1:]
    merges = [tuple(line.split()) for line in lines if line.strip()]
    bad = next((i for i, merge in enumerate(merges) if len(merge) != 2), None)
    if bad is not None:
        raise UserInputError(f"{path}: merge {bad + 1} is not two symbols: {merges[bad]!r}")
    return merges


@dataclass(frozen=True)
class ClipLayout:
    """A format's names for the tensors of a CLIP ViT model: full tensor names, except the
    LayerNorms (`*_norm`: `.weight` and `.bias` follow) and the blocks (`*_blocks`: the prefix of
    block `{}`). `transposed_projections`: the projections are stored `[width, embed]` (applied as
    `x @ proj`) rather than as `nn.Linear` weights `[embed, width]`."""

    name: str
    patch_embed: str
    class_embedding: str
    image_positions: str
    pre_norm: str
    image_blocks: str
    image_norm: str
    image_projection: str
    token_embedding: str
    text_positions: str
    text_blocks: str
    text_norm: str
    text_projection: str
    block: BlockLayout
    transposed_projections: bool


def clip_rules(
    layout: ClipLayout, vision_layers: int, text_layers: int, *, logit_bias: bool = False
) -> list[Rule]:
    """The table of a CLIP ViT model with the given numbers of blocks in `layout`, read by the
    importers (`map_clip`) and the exporters alike (W: a tower's width, G: the patch grid side,
    L: context length, E: `embed_dim`):

    | unicl | `layout` |
    | --- | --- |
    | `image_encoder.patch_embed.weight [W,3,P,P]` | `patch_embed` |
    | `image_encoder.cls_token [1,1,W]` | `class_embedding [W]` |
    | `image_encoder.pos_embed [1,1+G*G,W]` | `image_positions [1+G*G,W]` |
    | `image_encoder.norm_pre.*` | `pre_norm` |
    | `image_encoder.blocks.N.*` | `image_blocks` N (`block_rules`) |
    | `image_encoder.norm.*` | `image_norm` (CLIP's post-norm of the class token) |
    | `image_projection.weight [E,W]` | `image_projection` (transposed if stored `[W,E]`) |
    | `text_encoder.token_embedding.weight [V,W]` | `token_embedding` |
    | `text_encoder.positional_embedding [L,W]` | `text_positions` |
    | `text_encoder.blocks.N.*` | `text_blocks` N |
    | `text_encoder.norm.*` | `text_norm` |
    | `text_projection.weight [E,W]` | `text_projection` (transposed if stored `[W,E]`) |
    | `logit_scale` (log of the multiplier) | `logit_scale` (the same) |
    | `logit_bias` (with `logit_bias`: a sigmoid-trained model) | `logit_bias` |
    """
    transposed = layout.transposed_projections
    rules = [
        rule("image_encoder.patch_embed.weight", layout.patch_embed),
        rule("image_encoder.cls_token", layout.class_embedding, leading=2),
        rule("image_encoder.pos_embed", layout.image_positions, leading=1),
        *norm_rules("image_encoder.norm_pre", layout.pre_norm),
    ]
    for i in range(vision_layers):
        rules += block_rules(
            f"image_encoder.blocks.{i}", layout.image_blocks.format(i), layout.block
        )
    rules += [
        *norm_rules("image_encoder.norm", layout.image_norm),
        rule("image_projection.weight", layout.image_projection, transposed=transposed),
        rule("text_encoder.token_embedding.weight", layout.token_embedding),
        rule("text_encoder.positional_embedding", layout.text_positions),
    ]
    for i in range(text_layers):
        rules += block_rules(f"text_encoder.blocks.{i}", layout.text_blocks.format(i), layout.block)
    rules += [
        *norm_rules("text_encoder.norm", layout.text_norm),
        rule("text_projection.weight", layout.text_projection, transposed=transposed),
        rule("logit_scale", "logit_scale"),
    ]
    if logit_bias:
        rules.append(rule("logit_bias", "logit_bias"))
    return rules


def map_clip(tensors: TensorMap, layout: ClipLayout, shape: ClipShape) -> None:
    """A rule for every tensor of the unicl model of `shape`, from `clip_rules`."""
    bias = shape.init_logit_bias is not None
    import_rules(
        tensors, clip_rules(layout, shape.vision.layers, shape.text.layers, logit_bias=bias)
    )


def norm_rules(ours: str, theirs: str) -> list[Rule]:
    """Rules for LayerNorm `ours`'s weight and bias from `theirs`'s."""
    return [rule(f"{ours}.{kind}", f"{theirs}.{kind}") for kind in ("weight", "bias")]
