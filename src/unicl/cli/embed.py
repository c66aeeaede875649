"""`unicl embed MODEL_DIR --data SOURCE --out FILE`: image or caption embeddings to `.npy`, with a
JSON Lines index beside it (see `unicl.evaluate.export`)."""

from __future__ import annotations

import argparse

from unicl.cli.common import (
    add_model_options,
    add_num_workers_option,
    add_output_options,
    load_model,
    num_workers,
    refuse_outputs,
)
from unicl.errors import UserInputError
from unicl.evaluate.export import export_embeddings, output_paths


def register(subparsers: argparse._SubParsersAction) -> None:
    embed = subparsers.add_parser("embed", help="export image or caption embeddings to .npy")
    add_model_options(embed)
    embed.add_argument("--data", required=True, help="a source (see docs/data.md)")
    add_output_options(embed, "the .npy file to write", required=True)
    embed.add_argument(
        "--modality",
        choices=("image", "text"),
        default="image",
        help="embed the images (default) or the captions of image-text data",
    )
    add_num_workers_option(embed)
    embed.set_defaults(func=run_embed)


def run_embed(args: argparse.Namespace) -> int:
    workers = num_workers(args)
    if args.out.is_dir():
        raise UserInputError(f"--out {args.out} is a directory; give the embeddings a file name")
    model = load_model(args)
    refuse_outputs(args, *output_paths(args.out))
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
