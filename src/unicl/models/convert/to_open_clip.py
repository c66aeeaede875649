"""A unicl model as an OpenCLIP model directory: `open_clip_files(model) -> (weights, files)`.

What OpenCLIP reads from a local or hub directory (`create_model_and_transforms("local-dir:DIR")`
in OpenCLIP releases that have the schema, `hf-hub:` for an uploaded copy):

- `open_clip_config.json`: `{"model_cfg": ..., "preprocess_cfg": ...}`. `model_cfg` is the schema
  of OpenCLIP's `model_configs/*.json` (`embed_dim`, `quick_gelu`, `vision_cfg` with `image_size`,
  `patch_size`, `width`, `layers`, `head_width`, `mlp_ratio`; `text_cfg` with `context_length`,
  `vocab_size`, `width`, `heads`, `layers`, `mlp_ratio`, `pool_type`); `preprocess_cfg` the
  image size, mean, std, bicubic interpolation and shortest-side resizing;
- `open_clip_model.safetensors`: the weights in OpenAI's layout, OpenCLIP's for these models, by
  the table `openai_clip.OPENAI_CLIP` read backwards (`clip.clip_rules`); the file converts back
  with `unicl convert FILE --tokenizer DIR --act ACT` (the `openai-clip` format);
- the tokenizer files (`clip_export.clip_tokenizer_files`), for `unicl convert --tokenizer DIR`
  and for transformers; OpenCLIP itself tokenises with its built-in CLIP tokenizer (49,408 tokens).

OpenCLIP has one activation flag for both towers (`quick_gelu`), so towers with different
activations are refused. Text pooling: `argmax` is OpenCLIP's default; `eot` is written as
`argmax` when the end-of-text token has the largest id (CLIP's tokenizers: the same position for
every text that holds the token, as every tokenised text does), else as `pool_type: eos` with
`eos_id` (OpenCLIP releases with end-of-sequence pooling). A model trained with the sigmoid
objective keeps its `logit_bias` (OpenCLIP's tensor of that name, `init_logit_bias` in
`model_cfg`).
"""

from __future__ import annotations

import json

import torch

from unicl.errors import UserInputError
from unicl.models.convert.clip import clip_rules
from unicl.models.convert.clip_export import clip_shape, clip_tokenizer_files
from unicl.models.convert.openai_clip import OPENAI_CLIP
from unicl.models.convert.rules import export_rules
from unicl.models.model import UniCLModel

FORMAT = "open-clip"
WEIGHTS_FILE = "open_clip_model.safetensors"
CONFIG_FILE = "open_clip_config.json"


def open_clip_files(model: UniCLModel) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(the weights of `open_clip_model.safetensors`, the text files by name) of `model`."""
    shape = clip_shape(model, FORMAT)
    vision, text = shape.vision, shape.text
    if vision.act != text.act:
        raise UserInputError(
            f"the image tower uses {vision.act} and the text tower {text.act}; OpenCLIP has one "
            "activation for both towers (quick_gelu: true or false)"
        )
    if shape.pool == "argmax" or shape.eot_id == shape.vocab_size - 1:
        pooling = {"pool_type": "argmax"}
    else:
        pooling = {"pool_type": "eos", "eos_id": shape.eot_id}
    model_cfg = {
        "embed_dim": shape.embed_dim,
        "quick_gelu": vision.act == "quick_gelu",
        **({} if shape.init_logit_bias is None else {"init_logit_bias": shape.init_logit_bias}),
        "vision_cfg": {
            "image_size": shape.image_size,
            "patch_size": shape.patch_size,
            "width": vision.width,
            "layers": vision.layers,
            "head_width": vision.width // vision.heads,
            "mlp_ratio": vision.mlp_ratio,
        },
        "text_cfg": {
            "context_length": shape.context_length,
            "vocab_size": shape.vocab_size,
            "width": text.width,
            "heads": text.heads,
            "layers": text.layers,
            "mlp_ratio": text.mlp_ratio,
            **pooling,
        },
    }
    preprocess_cfg = {
        "size": shape.image_size,
        "mode": "RGB",
        "mean": list(shape.image_mean),
        "std": list(shape.image_std),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    record = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
    bias = shape.init_logit_bias is not None
    rules = clip_rules(OPENAI_CLIP, vision.layers, text.layers, logit_bias=bias)
    weights = export_rules(model.state_dict(), rules, f"{FORMAT} ({OPENAI_CLIP.name})")
    files = {
        CONFIG_FILE: json.dumps(record, indent=2) + "\n",
        **clip_tokenizer_files(model.tokenizer),
    }
    return weights, files


USE = (
    "```python",
    "import open_clip",
    "",
    'model, _, preprocess = open_clip.create_model_and_transforms("local-dir:{path}")',
    "```",
    "",
    "or back into unicl: `unicl convert {path}/open_clip_model.safetensors --tokenizer {path} "
    "--act ACT` (ACT: `quick_gelu` when `open_clip_config.json` says `quick_gelu: true`, else "
    "`gelu`).",
)
"""How the exported directory is loaded, for its model card."""
