"""Options and checks shared by the commands that run a saved model (`eval`, `predict`, `embed`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from unicl.constants import MAX_THREADS
from unicl.errors import UserInputError
from unicl.files import refuse_existing
from unicl.models import UniCLModel, load
from unicl.process_group import resolve_device


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """MODEL_DIR, --device, --batch-size and --threads, shared by every command that runs a saved
    model."""
    parser.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="a saved model directory")
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N, or auto (cuda when available)"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    parser.add_argument(
        "--threads", type=int, help="CPU threads for PyTorch (default: PyTorch's own choice)"
    )


def add_output_options(parser: argparse.ArgumentParser, out_help: str, required: bool) -> None:
    """--out FILE and --overwrite."""
    parser.add_argument("--out", type=Path, required=required, help=out_help)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace output files that already exist"
    )


def add_num_workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")


def num_workers(args: argparse.Namespace) -> int:
    """`--num-workers`, checked."""
    if args.num_workers < 0:
        raise UserInputError(f"--num-workers is {args.num_workers}; it must be 0 or more")
    return args.num_workers


def load_model(args: argparse.Namespace) -> UniCLModel:
    """The model of `args.model_dir`, in eval mode on `args.device`."""
    if args.batch_size < 1:
        raise UserInputError(f"--batch-size is {args.batch_size}; it must be at least 1")
    if args.threads is not None:
        if not 1 <= args.threads <= MAX_THREADS:
            raise UserInputError(f"--threads is {args.threads}; it must be in [1, {MAX_THREADS}]")
        torch.set_num_threads(args.threads)
    if not args.model_dir.is_dir():
        raise UserInputError(
            f"model directory {str(args.model_dir)!r} does not exist; pass a directory written "
            "by `unicl train` or save_pretrained"
        )
    device = resolve_device(args.device, setting="--device")
    return load(args.model_dir).to(device).eval()


def refuse_outputs(args: argparse.Namespace, *paths: Path) -> None:
    """Check output files before any work: none inside the model directory except under its
    `evaluation/` folder, none that is a directory, and none that exists unless `--overwrite`."""
    model_dir = args.model_dir.resolve()
    for path in paths:
        resolved = path.resolve()
        if resolved.is_relative_to(model_dir) and not resolved.is_relative_to(
            model_dir / "evaluation"
        ):
            raise UserInputError(
                f"{path} is inside the model directory {args.model_dir}; write results to its "
                "evaluation/ folder (the default) or outside it"
            )
    refuse_existing(*paths, overwrite=args.overwrite)
