"""Import pretrained checkpoints as unicl models: `convert_checkpoint(src) -> UniCLModel`.

Formats (`FORMATS`), detected from `src` unless named:

- `hf-clip`: a directory written by `transformers.CLIPModel.save_pretrained` (`config.json`
  with `model_type: clip`), see `hf_clip`;
- `openai-clip`: one state-dict file of OpenAI's or OpenCLIP's CLIP ViT layout, see
  `openai_clip`; it needs a CLIP tokenizer, which the file does not hold;
- `microsoft-unicl`: one checkpoint file of microsoft/UniCL (Swin + text transformer), told apart
  from an OpenAI file by its tensor names (`microsoft_unicl.is_microsoft_unicl`); it needs the
  CLIP tokenizer too.

The result is an ordinary `UniCLModel` (save it with `save_pretrained`). Every source tensor is
mapped by an explicit rule, and a tensor left over, missing or of the wrong shape is refused with
one line naming it (`state_dict.TensorMap`). Nothing in a checkpoint is executed: pickles are read
with `torch.load(weights_only=True)` only (microsoft/UniCL's config object built as a plain
mapping), TorchScript archives are refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from unicl.errors import UserInputError
from unicl.models.convert.hf_clip import convert_hf_clip
from unicl.models.convert.microsoft_unicl import (
    STAND_INS,
    convert_microsoft_unicl,
    is_microsoft_unicl,
)
from unicl.models.convert.openai_clip import convert_openai_clip
from unicl.models.convert.state_dict import checkpoint_names
from unicl.models.model import UniCLModel

FORMATS = ("hf-clip", "openai-clip", "microsoft-unicl")
OPTIONS = {
    "hf-clip": (
        set(),
        "a Hugging Face CLIP directory, which has its own tokenizer, activation and heads",
    ),
    "openai-clip": ({"tokenizer", "act", "vision_heads", "text_heads"}, ""),
    "microsoft-unicl": (
        {"tokenizer", "text_heads"},
        "a microsoft/UniCL checkpoint, whose activations (GELU in the Swin, QuickGELU in the "
        "text tower) are fixed and whose Swin heads are read from its tensors",
    ),
}
"""Per format: the options it takes, and what to say to the others."""


def detect_format(src: Path) -> str:
    """`hf-clip` for a directory with `config.json`; for a file, `microsoft-unicl` when its tensor
    names are microsoft/UniCL's, else `openai-clip`."""
    if src.is_dir():
        if (src / "config.json").is_file():
            return "hf-clip"
        raise UserInputError(
            f"{src} is a directory without config.json; pass a Hugging Face CLIP directory or a "
            "checkpoint file (.pt, .pth, .bin, .safetensors)"
        )
    if src.is_file():
        return (
            "microsoft-unicl"
            if is_microsoft_unicl(checkpoint_names(src, STAND_INS))
            else ("openai-clip")
        )
    raise UserInputError(f"{src} does not exist")


def convert_checkpoint(
    src: str | os.PathLike,
    source_format: str | None = None,
    *,
    tokenizer: str | os.PathLike | None = None,
    act: str | None = None,
    vision_heads: int | None = None,
    text_heads: int | None = None,
) -> UniCLModel:
    """The unicl model equal to the checkpoint `src`.

    `source_format`: one of `FORMATS` (detected when None). `tokenizer`, `act`, `vision_heads` and
    `text_heads` describe what a file does not hold (see `openai_clip` and `microsoft_unicl`);
    an option that a format does not take is refused.
    """
    src = Path(src)
    source_format = source_format or detect_format(src)
    if source_format not in FORMATS:
        raise UserInputError(
            f"unknown checkpoint format {source_format!r}; choose one of {', '.join(FORMATS)}"
        )
    taken, why = OPTIONS[source_format]
    given = dict(tokenizer=tokenizer, act=act, vision_heads=vision_heads, text_heads=text_heads)
    refused = [
        f"--{name.replace('_', '-')}"
        for name, value in given.items()
        if value is not None and name not in taken
    ]
    if refused:
        verb = "does" if len(refused) == 1 else "do"
        raise UserInputError(f"{', '.join(refused)} {verb} not apply to {why}")
    if source_format == "hf-clip":
        if not src.is_dir():
            raise UserInputError(f"{src} is not a directory; the hf-clip format is a directory")
        return convert_hf_clip(src)
    if not src.is_file():
        raise UserInputError(
            f"{src} is not a file; the {source_format} format is one checkpoint file"
        )
    if tokenizer is None:
        raise UserInputError(
            f"{src} holds no tokenizer; pass --tokenizer: a CLIP tokenizer.json, a folder with "
            "one (or vocab.json + merges.txt), or OpenAI's bpe_simple_vocab_16e6.txt.gz"
        )
    if source_format == "microsoft-unicl":
        return convert_microsoft_unicl(src, Path(tokenizer), text_heads)
    return convert_openai_clip(src, Path(tokenizer), act or "quick_gelu", vision_heads, text_heads)
