"""`unicl embed MODEL_DIR --data SOURCE --out FILE` (image or caption embeddings of a source) and
`unicl embed MODEL_DIR --texts FILE --out FILE` (texts, one per line): `.npy` with a JSON Lines
index beside it (see `unicl.evaluate.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from unicl.cli.common import (
    add_model_options,
    add_num_workers_option,
    add_output_options,
    load_model,
    num_workers,
    refuse_outputs,
)
from unicl.errors import UserInputError
from unicl.evaluate.export import export_embeddings, export_text_embeddings, output_paths
from unicl.files import read_utf8


def register(subparsers: argparse._SubParsersAction) -> None:
    embed = subparsers.add_parser("embed")
    add_model_options(embed)
    inputs = embed.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--data", help="a source (see docs/data.md)")
    inputs.add_argument("--texts", type=Path, help="a UTF-8 file of texts, one per line")
    add_output_options(embed, "the .npy file to write", required=True)
    embed.add_argument(
        "--modality",
        choices=("image", "text"),
        default="image",
        help="embed the images (default) or the captions of image-text data (with --data)",
    )
    add_num_workers_option(embed)
    embed.set_defaults(func=run_embed)


def read_texts(path: Path) -> list[str]:
    """The non-empty lines of a UTF-8 file, stripped."""
    if not path.is_file():
        raise UserInputError(f"texts file {path} does not exist")
    lines = read_utf8(path).splitlines()
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise UserInputError(f"{path} holds no texts; write one per line")
    return texts


def run_embed(args: argparse.Namespace) -> int:
    workers = num_workers(args)
    if args.out.is_dir():
        raise UserInputError(f"--out {args.out} is a directory; give the embeddings a file name")
    texts = None if args.texts is None else read_texts(args.texts)
    model = load_model(args)
    refuse_outputs(args, *output_paths(args.out))
    if texts is not None:
        npy, index = export_text_embeddings(
            model, texts, args.out, batch_size=args.batch_size, overwrite=args.overwrite
        )
        print(f"wrote {npy} and {index}")
        return 0
    npy, index = export_embeddings(
        model,
        args.data,
        args.out,
        modality=args.modality,
        batch_size=args.batch_size,
        num_workers=workers,
        overwrite=args.overwrite,
    )
    print(f"wrote {npy} and {index}")
    return 0
