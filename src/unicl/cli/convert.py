"""`unicl convert SRC --out DIR [--format hf-clip|openai-clip|microsoft-unicl]`: a pretrained CLIP or
UniCL as a unicl model.

SRC is a Hugging Face CLIP directory (`CLIPModel.save_pretrained`), one OpenAI/OpenCLIP checkpoint
file, or one microsoft/UniCL checkpoint file; the format is detected (a file by its tensor names)
unless `--format` names it. An `openai-clip` file needs `--tokenizer` and may need `--act` and
`--vision-heads` / `--text-heads` (what the file does not hold); a `microsoft-unicl` file needs
`--tokenizer`, and `--text-heads` when it has no config. DIR, which must be new or empty, becomes an ordinary saved model (`model.safetensors`,
`config.json`, `tokenizer.json`) for `unicl.load`, `unicl train` (`model.name: DIR`), `eval`,
`predict` and `embed`. See docs/pretrained.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

from unicl.files import refuse_filled_folder
from unicl.models.convert import FORMATS, convert_checkpoint, detect_format
from unicl.models.layers import Activation


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("convert")
    parser.add_argument(
        "src",
        type=Path,
        metavar="SRC",
        help="a Hugging Face CLIP directory, or an OpenAI/OpenCLIP or microsoft/UniCL checkpoint file",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="a new (or empty) folder for the unicl model"
    )
    parser.add_argument("--format", choices=FORMATS, help="the layout of SRC (default: detected)")
    parser.add_argument(
        "--tokenizer",
        type=Path,
        help="openai-clip, microsoft-unicl: CLIP's tokenizer.json, a folder with it (or "
        "vocab.json + merges.txt), or OpenAI's bpe_simple_vocab_16e6.txt.gz",
    )
    parser.add_argument(
        "--act",
        choices=get_args(Activation),
        help="openai-clip: the MLP activation (default quick_gelu, OpenAI's; most models "
        "OpenCLIP trained itself use gelu)",
    )
    parser.add_argument(
        "--vision-heads",
        type=int,
        help="openai-clip: attention heads of the vision tower (default: width // 64)",
    )
    parser.add_argument(
        "--text-heads",
        type=int,
        help="openai-clip, microsoft-unicl: attention heads of the text tower (default: the "
        "file's config, else width // 64)",
    )
    parser.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    out: Path = args.out
    refuse_filled_folder(out)
    source_format = args.format or detect_format(args.src)
    model = convert_checkpoint(
        args.src,
        source_format,
        tokenizer=args.tokenizer,
        act=args.act,
        vision_heads=args.vision_heads,
        text_heads=args.text_heads,
    )
    model.provenance = {"kind": "imported", "source": str(args.src), "format": source_format}
    model.save_pretrained(out)
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"wrote {out} from {args.src} ({source_format}): {parameters / 1e6:.2f} M parameters, "
        f"{model.image_size} px images, {model.context_length}-token texts, "
        f"embed_dim {model.embed_dim}"
    )
    return 0
