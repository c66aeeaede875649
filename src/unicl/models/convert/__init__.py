"""Import pretrained CLIP checkpoints as unicl models: `convert_checkpoint(src) -> UniCLModel`.

Formats (`FORMATS`), detected from `src` unless named:

- `hf-clip`: a directory written by `transformers.CLIPModel.save_pretrained` (`config.json`
  with `model_type: clip`), see `hf_clip`;
- `openai-clip`: one state-dict file of OpenAI's or OpenCLIP's CLIP ViT layout, see
  `openai_clip`; it needs a CLIP tokenizer, which the file does not hold.

The result is an ordinary `UniCLModel` (save it with `save_pretrained`). Every source tensor is
mapped by an explicit rule, and a tensor left over, missing or of the wrong shape is refused with
one line naming it (`state_dict.TensorMap`). Nothing in a checkpoint is executed: pickles are read
with `torch.load(weights_only=True)` only, TorchScript archives are refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from unicl.errors import UserInputError
from unicl.models.convert.hf_clip import convert_hf_clip
from unicl.models.convert.openai_clip import convert_openai_clip
from unicl.models.model import UniCLModel

FORMATS = ("hf-clip", "openai-clip")


def detect_format(src: Path) -> str:
    """`hf-clip` for a directory with `config.json`, `openai-clip` for a file."""
    if src.is_dir():
        if (src / "config.json").is_file():
            return "hf-clip"
        raise UserInputError(
            f"{src} is a directory without config.json; pass a Hugging Face CLIP directory or an "
            "OpenAI/OpenCLIP checkpoint file (.pt, .bin, .safetensors)"
        )
    if src.is_file():
        return "openai-clip"
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
    """The unicl model equal to the CLIP checkpoint `src`.

    `source_format`: one of `FORMATS` (detected when None). `tokenizer`, `act`, `vision_heads` and
    `text_heads` describe what an `openai-clip` file does not hold (see `openai_clip`); a
    Hugging Face directory holds all of it, so they are refused there.
    """
    src = Path(src)
    source_format = source_format or detect_format(src)
    if source_format not in FORMATS:
        raise UserInputError(
            f"unknown checkpoint format {source_format!r}; choose one of {', '.join(FORMATS)}"
        )
    if source_format == "hf-clip":
        given = [
            f"--{name.replace('_', '-')}"
            for name, value in dict(
                tokenizer=tokenizer, act=act, vision_heads=vision_heads, text_heads=text_heads
            ).items()
            if value is not None
        ]
        if given:
            raise UserInputError(
                f"{', '.join(given)} apply to openai-clip files only: a Hugging Face CLIP "
                "directory has its own tokenizer, activation and heads"
            )
        if not src.is_dir():
            raise UserInputError(f"{src} is not a directory; the hf-clip format is a directory")
        return convert_hf_clip(src)
    if not src.is_file():
        raise UserInputError(f"{src} is not a file; the openai-clip format is one checkpoint file")
    if tokenizer is None:
        raise UserInputError(
            f"{src} holds no tokenizer; pass --tokenizer: a CLIP tokenizer.json, a folder with "
            "one (or vocab.json + merges.txt), or OpenAI's bpe_simple_vocab_16e6.txt.gz"
        )
    return convert_openai_clip(src, Path(tokenizer), act or "quick_gelu", vision_heads, text_heads)
