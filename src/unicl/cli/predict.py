"""`unicl predict MODEL_DIR IMAGE... --labels "cat,dog"`: the top-k labels of image files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unicl.cli.common import add_model_options, load_model
from unicl.errors import UserInputError
from unicl.evaluate import Prediction, predict
from unicl.files import read_utf8


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict")
    add_model_options(parser)
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    labels = parser.add_mutually_exclusive_group(required=True)
    labels.add_argument("--labels", help='comma-separated class names, e.g. "cat,dog,ship"')
    labels.add_argument("--labels-file", type=Path, help="a file with one class name per line")
    parser.add_argument(
        "--templates", default="default", help="template set name (default, imagenet) or a file"
    )
    parser.add_argument("--top-k", type=int, default=5, help="labels shown per image (default 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run_predict)


def read_labels(args: argparse.Namespace) -> list[str]:
    """Class names from `--labels` (comma-separated) or `--labels-file` (one per line)."""
    if args.labels is not None:
        return [name.strip() for name in args.labels.split(",") if name.strip()]
    if not args.labels_file.is_file():
        raise UserInputError(f"labels file {str(args.labels_file)!r} does not exist")
    lines = read_utf8(args.labels_file).splitlines()
    return [line.strip() for line in lines if line.strip()]


def format_table(predictions: list[Prediction]) -> str:
    """One block per image: the image, then `label  probability` rows, most probable first."""
    width = max(len(label) for p in predictions for label in p.labels)
    blocks = []
    for prediction in predictions:
        rows = [prediction.image]
        rows += [
            f"  {label:<{width}}  {probability:6.1%}"
            for label, probability in zip(prediction.labels, prediction.probabilities, strict=True)
        ]
        blocks.append("\n".join(rows))
    return "\n".join(blocks)


def run_predict(args: argparse.Namespace) -> int:
    labels = read_labels(args)
    if not labels:
        raise UserInputError("the label list is empty; pass --labels 'cat,dog' or --labels-file")
    model = load_model(args)
    predictions = predict(
        model,
        args.images,
        labels,
        templates=args.templates,
        top_k=args.top_k,
        batch_size=args.batch_size,
    )
    if args.json:
        print(json.dumps([vars(p) for p in predictions], indent=2, ensure_ascii=False))
    else:
        print(format_table(predictions))
    return 0
