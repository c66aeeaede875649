"""microsoft/UniCL's checkpoints (Swin image encoder + CLIP-like text transformer) as unicl models.

What the official code (github.com/microsoft/UniCL: `utils.save_checkpoint`, `model/model.py`,
`model/image_encoder/swin_transformer.py`, `model/text_encoder/transformer.py`) saves and
computes, and what it becomes here:

- The file is `torch.save({"model": state_dict, "config": yacs CfgNode, ...})` (possibly with
  `optimizer`, `lr_scheduler`, `epoch`, ... beside), or a bare state dict. It is read with
  `torch.load(weights_only=True)`; the one class `yacs.config.CfgNode` is built as a plain
  `OrderedDict` (`ConfigNode`), so no yacs (nor any other) code runs.
- `encode_image = swin.forward_features(x) @ image_projection`: patch convolution + LayerNorm, no
  absolute position embedding, stages of window-attention blocks (relative-position bias, -100
  between regions of a shifted window, shift only while the map is larger than the window),
  patch merging of the (0,0), (1,0), (0,1), (1,1) neighbours -> LayerNorm -> bias-free 4C -> 2C,
  final LayerNorm, mean over positions. That is unicl's `swin` family, MLP with exact GELU.
- `encode_text = ln_final(blocks(token_embedding + positional_embedding))[argmax ids] @
  text_projection`: OpenAI's CLIP text transformer (causal mask, QuickGELU, MLP 4x) whose
  LayerNorms are TensorFlow-style with epsilon 1e-12, pooled at the largest id of the CLIP
  tokenizer (`TOKENIZER: clip`). That is unicl's `transformer` family with `act: quick_gelu`,
  `pool: argmax`, `norm_eps: 1e-12`; the tokenizer is `--tokenizer` (the file holds none).
- Projections are stored `[in, out]` and applied as `x @ P` (transposed into unicl's linear
  weights); `logit_scale` is log(multiplier) in both; images are normalised with ImageNet's
  mean and std.

Prefixes vary between the code's versions (`_convert_old_weights`, RegionCLIP's loader): the image
tower is `image_encoder.*` or `visual.*`, the text tower `text_encoder.*`, `lang_encoder.*` or
`text.*`, the projections `image_projection` or `vision_projection` and `text_projection` or
`lang_projection`. The mapping (S a stage, B a block, N a text block):

| microsoft/UniCL | unicl |
| --- | --- |
| `image_encoder.patch_embed.proj.*` | `image_encoder.patch_embed.*` |
| `image_encoder.patch_embed.norm.*` | `image_encoder.patch_norm.*` |
| `image_encoder.layers.S.blocks.B.{norm1,attn.qkv,attn.proj,norm2}.*` | `image_encoder.stages.S.B.` the same |
| `image_encoder.layers.S.blocks.B.mlp.fc1.*`, `mlp.fc2.*` | `image_encoder.stages.S.B.mlp.0.*`, `mlp.2.*` |
| `image_encoder.layers.S.blocks.B.attn.relative_position_bias_table` | `image_encoder.stages.S.B.relative_position_bias` |
| `image_encoder.layers.S.downsample.{norm,reduction}.*` | `image_encoder.merges.S.` the same |
| `image_encoder.norm.*` | `image_encoder.norm.*` |
| `text_encoder.token_embedding.weight`, `positional_embedding` | `text_encoder.` the same |
| `text_encoder.resblocks.N.*` | `text_encoder.blocks.N.*` (as for OpenAI's layout) |
| `text_encoder.ln_final.*` | `text_encoder.norm.*` |
| `image_projection [W,E]`, `text_projection [W,E]` | `image_projection.weight`, `text_projection.weight` `[E,W]` |
| `logit_scale` | `logit_scale` |

The buffers `attn.relative_position_index` and `attn_mask` are not converted (unicl computes them)
but must equal what unicl computes, so a model that windows or masks otherwise is refused.
Sizes come from tensor shapes (heads of a Swin stage from its bias tables), except the text
tower's heads, the window and the image size, which the config states (`MODEL.TEXT_ENCODER.HEADS`,
`MODEL.IMAGE_ENCODER.SWIN.WINDOW_SIZE`, `MODEL.IMAGE_ENCODER.IMG_SIZE`); without a config: heads
from `--text-heads` or width // 64, the window from the first bias table, the image size from the
first shifted-window mask, else 224.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from unicl.constants import IMAGENET_MEAN, IMAGENET_STD
from unicl.errors import UserInputError
from unicl.models.convert.clip import (
    BlockLayout,
    block_rules,
    model_with_tokenizer,
    norm_rules,
    openai_tower,
    read_clip_tokenizer,
)
from unicl.models.convert.openai_clip import OPENAI_CLIP
from unicl.models.convert.rules import import_rules, rule
from unicl.models.convert.state_dict import TensorMap, read_checkpoint
from unicl.models.model import UniCLModel
from unicl.models.swin import relative_position_index, shifted_window_mask


class ConfigNode:
    """Built in place of `yacs.config.CfgNode` while unpickling: an empty `OrderedDict`, which the
    pickle then fills with the node's entries (and whose attribute dict takes the node's flags).
    Its arguments are ignored; nothing but a mapping can come out of it."""

    def __new__(cls, *args, **kwargs) -> OrderedDict:
        return OrderedDict()


STAND_INS = {"yacs.config.CfgNode": ConfigNode}
"""The one class a microsoft/UniCL file may name beyond tensors and plain containers."""
IMAGE_PREFIXES = ("image_encoder", "visual")
TEXT_PREFIXES = ("text_encoder", "lang_encoder", "text")
IMAGE_PROJECTIONS = ("image_projection", "vision_projection")
TEXT_PROJECTIONS = ("text_projection", "lang_projection")
SWIN_BLOCK = BlockLayout(
    norm1="norm1.{}",
    qkv=("attn.qkv.{}",),
    proj="attn.proj.{}",
    norm2="norm2.{}",
    fc1="mlp.fc1.{}",
    fc2="mlp.fc2.{}",
)
"""The official Swin block's names for the tensors of unicl's `SwinBlock` (named as `Block`)."""
TEXT_NORM_EPS = 1e-12
"""The epsilon of the official text encoder's TensorFlow-style LayerNorms."""
DEFAULT_IMAGE_SIZE = 224
"""The official `IMG_SIZE`, for a file whose config and masks do not say."""
REQUIRED = {
    "MODEL.IMAGE_ENCODER.TYPE": ("a Swin image encoder", lambda v: "swin" in str(v)),
    "MODEL.IMAGE_ENCODER.SWIN.APE": ("no absolute position embedding", lambda v: not v),
    "MODEL.IMAGE_ENCODER.SWIN.PATCH_NORM": ("a patch-embedding norm", bool),
    "MODEL.IMAGE_ENCODER.SWIN.QK_SCALE": ("the standard 1/sqrt(head width)", lambda v: v is None),
    "MODEL.TEXT_ENCODER.NAME": ("the 'transformer' text encoder", lambda v: v == "transformer"),
    "MODEL.TEXT_ENCODER.TOKENIZER": ("the CLIP tokenizer", lambda v: v == "clip"),
    "MODEL.TEXT_ENCODER.AUTOGRESSIVE": ("a causal text encoder", bool),
}
"""Config settings unicl's families reproduce: name -> (what is supported, test); an absent
setting has the official default, which passes."""
HINT = "unicl convert reads microsoft/UniCL's Swin checkpoints (see docs/pretrained.md)"


def is_microsoft_unicl(names: Iterable[str]) -> bool:
    """Whether state-dict `names` are microsoft/UniCL's: an `image_encoder.*` tower, or Swin stages
    under `visual.` (`visual.layers.N`), which OpenAI's CLIP layout never has."""
    return any(
        name.startswith("image_encoder.") or re.match(r"visual\.layers\.\d+\.", name)
        for name in names
    )


def convert_microsoft_unicl(
    path: Path, tokenizer: Path, text_heads: int | None = None
) -> UniCLModel:
    """The unicl model equal to the microsoft/UniCL checkpoint `path`, with the CLIP tokenizer at
    `tokenizer` (see `clip.read_clip_tokenizer`); `text_heads` for a file without a config."""
    state, extras = read_checkpoint(path, STAND_INS, mmap=True)
    config = extras.get("config")
    config = config if isinstance(config, Mapping) else {}
    where = f"{path} (microsoft/UniCL layout)"
    for key, (supported, test) in REQUIRED.items():
        value = _setting(config, key)
        if value is not None and not test(value):
            raise UserInputError(
                f"{where}: config {key} is {value!r}; unicl converts models with {supported}"
            )
    image = _prefix(state, IMAGE_PREFIXES, "patch_embed.proj.weight", where)
    text = _prefix(state, TEXT_PREFIXES, "token_embedding.weight", where)
    vision, image_size = _swin_section(state, image, config, where)
    projections = {
        role: next((name for name in names if name in state), names[0])
        for role, names in (("image", IMAGE_PROJECTIONS), ("text", TEXT_PROJECTIONS))
    }
    _require_dimensions(
        state,
        {
            projections["image"]: 2,
            projections["text"]: 2,
            f"{text}.positional_embedding": 2,
            f"{text}.token_embedding.weight": 2,
            f"{text}.ln_final.weight": 1,
        },
        where,
    )
    heads = _text_heads(config, text_heads, where)
    width = int(state[f"{text}.ln_final.weight"].shape[0])
    tower = openai_tower(state, text, width, "quick_gelu", heads, where, "--text-heads", HINT)
    vocab_size = int(state[f"{text}.token_embedding.weight"].shape[0])
    model_config = dict(
        embed_dim=int(state[projections["text"]].shape[1]),
        image_size=image_size,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
        context_length=int(state[f"{text}.positional_embedding"].shape[0]),
        vision=vision,
        text={
            "arch": "transformer",
            **tower.section("layers"),
            "pool": "argmax",
            "norm_eps": TEXT_NORM_EPS,
        },
    )
    model = model_with_tokenizer(model_config, read_clip_tokenizer(tokenizer), vocab_size, where)
    tensors = TensorMap(state, where=where, hint=HINT)
    _map_swin(tensors, image, vision, image_size)
    rules = [
        rule("text_encoder.token_embedding.weight", f"{text}.token_embedding.weight"),
        rule("text_encoder.positional_embedding", f"{text}.positional_embedding"),
    ]
    for i in range(tower.layers):
        rules += block_rules(f"text_encoder.blocks.{i}", f"{text}.resblocks.{i}", OPENAI_CLIP.block)
    rules += [
        *norm_rules("text_encoder.norm", f"{text}.ln_final"),
        rule("image_projection.weight", projections["image"], transposed=True),
        rule("text_projection.weight", projections["text"], transposed=True),
        rule("logit_scale", "logit_scale"),
    ]
    import_rules(tensors, rules)
    tensors.load_into(model)
    return model


def _setting(config: Mapping, key: str) -> object:
    """The value at dotted `key` of the nested `config`, or None where it has none."""
    node: object = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _prefix(
    state: Mapping[str, torch.Tensor], prefixes: tuple[str, ...], probe: str, where: str
) -> str:
    """The one of `prefixes` under which `state` holds `probe`."""
    found = [prefix for prefix in prefixes if f"{prefix}.{probe}" in state]
    if len(found) != 1:
        names = " or ".join(f"{prefix}.{probe}" for prefix in prefixes)
        what = "no" if not found else "more than one"
        raise UserInputError(f"{where}: {what} {names}; {HINT}")
    return found[0]


def _require_dimensions(
    state: Mapping[str, torch.Tensor], dimensions: Mapping[str, int], where: str
) -> None:
    """Refuse, naming them, the sizing tensors that are missing or have other numbers of
    dimensions than `dimensions` says."""
    missing = [name for name in dimensions if name not in state]
    if missing:
        raise UserInputError(f"{where}: missing tensors {', '.join(missing)}; {HINT}")
    wrong = [f"{n} {tuple(state[n].shape)}" for n, d in dimensions.items() if state[n].ndim != d]
    if wrong:
        raise UserInputError(f"{where}: unexpected shapes {', '.join(wrong)}; {HINT}")


def _text_heads(config: Mapping, given: int | None, where: str) -> int | None:
    """The text tower's heads: the config's `MODEL.TEXT_ENCODER.HEADS`, else `given`, else None
    (width // 64); a `given` that contradicts the config is refused."""
    stated = _setting(config, "MODEL.TEXT_ENCODER.HEADS")
    if stated is not None and given is not None and stated != given:
        raise UserInputError(
            f"{where}: --text-heads {given} contradicts the file's config "
            f"(MODEL.TEXT_ENCODER.HEADS: {stated}); leave the option out"
        )
    return int(stated) if isinstance(stated, int) else given


def _swin_section(
    state: Mapping[str, torch.Tensor], prefix: str, config: Mapping, where: str
) -> tuple[dict, int]:
    """The `swin` config section of the image tower under `prefix`, and the image size."""
    pattern = re.compile(
        rf"{re.escape(prefix)}\.layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table$"
    )
    blocks: dict[int, set[int]] = {}
    for name in state:
        if match := pattern.match(name):
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        raise UserInputError(
            f"{where}: no Swin stages {prefix}.layers.0, 1, ... with "
            "blocks.B.attn.relative_position_bias_table (FocalNet and other image encoders are "
            f"not converted); {HINT}"
        )
    conv = state[f"{prefix}.patch_embed.proj.weight"]
    if conv.ndim != 4 or conv.shape[1] != 3 or conv.shape[2] != conv.shape[3]:
        raise UserInputError(
            f"{where}: {prefix}.patch_embed.proj.weight {tuple(conv.shape)} is not a square "
            "patch convolution of RGB images"
        )
    embed_dim, patch = int(conv.shape[0]), int(conv.shape[2])
    tables = [
        state[f"{prefix}.layers.{s}.blocks.0.attn.relative_position_bias_table"] for s in blocks
    ]
    if any(table.ndim != 2 for table in tables):
        raise UserInputError(f"{where}: relative_position_bias_table is not [positions, heads]")
    window = _setting(config, "MODEL.IMAGE_ENCODER.SWIN.WINDOW_SIZE")
    if not isinstance(window, int):
        window = (math.isqrt(tables[0].shape[0]) + 1) // 2
    image_size = _setting(config, "MODEL.IMAGE_ENCODER.IMG_SIZE")
    if not isinstance(image_size, int):
        mask = state.get(f"{prefix}.layers.0.blocks.1.attn_mask")
        windows = math.isqrt(mask.shape[0]) if mask is not None and mask.ndim == 3 else 0
        image_size = windows * window * patch if windows else DEFAULT_IMAGE_SIZE
    for stage in blocks:
        cells = image_size // patch // 2**stage
        if cells < window:
            raise UserInputError(
                f"{where}: stage {stage}'s map ({cells} cells at {image_size} px) is smaller than "
                f"the window ({window}), so the checkpoint stores smaller relative-position tables "
                "than unicl's swin family; such models are not converted"
            )
        if cells % window:
            raise UserInputError(
                f"{where}: stage {stage}'s map ({cells} cells at {image_size} px) is not a whole "
                f"number of windows ({window}); check the config's IMG_SIZE and WINDOW_SIZE"
            )
    hidden = state.get(f"{prefix}.layers.0.blocks.0.mlp.fc1.weight")
    section = {
        "arch": "swin",
        "embed_dim": embed_dim,
        "depths": [len(blocks[s]) for s in sorted(blocks)],
        "heads": [int(table.shape[1]) for table in tables],
        "window": window,
        "patch_size": patch,
        "mlp_ratio": hidden.shape[0] / embed_dim if hidden is not None and hidden.ndim else 4.0,
    }
    return section, image_size


def _map_swin(tensors: TensorMap, prefix: str, section: dict, image_size: int) -> None:
    """Rules for every tensor of unicl's `swin` tower (see the module's table), and checks that
    the stored relative-position indices and shifted-window masks are those unicl computes."""
    window = section["window"]
    for kind in ("weight", "bias"):
        tensors.copy(f"image_encoder.patch_embed.{kind}", f"{prefix}.patch_embed.proj.{kind}")
    import_rules(tensors, norm_rules("image_encoder.patch_norm", f"{prefix}.patch_embed.norm"))
    depths = section["depths"]
    index = relative_position_index(window, window, torch.device("cpu"))
    for stage, depth in enumerate(depths):
        cells = image_size // section["patch_size"] // 2**stage
        mask = shifted_window_mask(cells, cells, window, window // 2, torch.device("cpu"))[:, 0]
        for block in range(depth):
            source = f"{prefix}.layers.{stage}.blocks.{block}"
            target = f"image_encoder.stages.{stage}.{block}"
            import_rules(tensors, block_rules(target, source, SWIN_BLOCK))
            tensors.copy(
                f"{target}.relative_position_bias", f"{source}.attn.relative_position_bias_table"
            )
            tensors.ignore(f"{source}.attn.relative_position_index", lambda x, i=index: _same(x, i))
            shifted = block % 2 == 1 and cells > window
            tensors.ignore(f"{source}.attn_mask", lambda x, m=mask, s=shifted: s and _same(x, m))
        if stage < len(depths) - 1:
            merge, source = f"image_encoder.merges.{stage}", f"{prefix}.layers.{stage}.downsample"
            import_rules(tensors, norm_rules(f"{merge}.norm", f"{source}.norm"))
            tensors.copy(f"{merge}.reduction.weight", f"{source}.reduction.weight")
    import_rules(tensors, norm_rules("image_encoder.norm", f"{prefix}.norm"))


def _same(stored: torch.Tensor, computed: torch.Tensor) -> bool:
    """Whether a stored buffer holds exactly the values unicl computes."""
    return stored.shape == computed.shape and bool((stored.float() == computed.float()).all())
