"""`unicl export MODEL_DIR --format hf-clip|open-clip --out DIR`: a unicl model for other tools.

`hf-clip` writes a directory that `transformers.CLIPModel`, `CLIPProcessor` and
`CLIPTokenizer(Fast)` load offline; `open-clip` writes OpenCLIP's `open_clip_config.json` and
`open_clip_model.safetensors` (OpenAI's layout) with the tokenizer files. Only models with CLIP's
towers and tokenizer can be written (imported CLIPs and models fine-tuned from them); any other
is refused in one line naming the tower. DIR must be new or empty; nothing is written until the
whole export has been computed. Both directories get a model card (`README.md`). See
docs/interop.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unicl.errors import UserInputError
from unicl.files import refuse_filled_folder, write_text_atomic
from unicl.models import load
from unicl.models.card import CARD_FILE, model_card
from unicl.models.convert.exporting import EXPORT_FORMATS, export_format, write_export


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export")
    parser.add_argument(
        "model_dir", type=Path, metavar="MODEL_DIR", help="a saved unicl model directory"
    )
    parser.add_argument(
        "--format",
        required=True,
        choices=EXPORT_FORMATS,
        help="hf-clip (transformers' CLIPModel) or open-clip (OpenCLIP's config and weights)",
    )
    parser.add_argument("--out", type=Path, required=True, help="a new (or empty) folder")
    parser.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    out: Path = args.out
    refuse_filled_folder(out)
    if not args.model_dir.is_dir():
        raise UserInputError(
            f"model directory {str(args.model_dir)!r} does not exist; pass a directory written "
            "by `unicl train`, `unicl convert` or save_pretrained"
        )
    if out.resolve().is_relative_to(args.model_dir.resolve()):
        raise UserInputError(f"{out} is inside the model directory; choose a folder outside it")
    model = load(args.model_dir)
    chosen = export_format(args.format)
    weights, files = chosen.files(model)
    card = model_card(
        model,
        args.model_dir,
        title=out.resolve().name,
        origin=f"exported from the unicl model `{args.model_dir}` as {args.format}",
        use=chosen.use,
    )
    write_export(out, chosen.weights_file, weights, files)
    write_text_atomic(out / CARD_FILE, card)
    parameters = sum(tensor.numel() for tensor in weights.values())
    print(
        f"wrote {out} ({args.format}) from {args.model_dir}: {len(weights)} tensors, "
        f"{parameters / 1e6:.2f} M values; {', '.join(sorted([chosen.weights_file, *files]))}"
    )
    return 0
