"""`unicl eval zeroshot|linear-probe|retrieval MODEL_DIR ...`: evaluate a saved model.

Each command prints its metrics and writes them as JSON next to the model, in
`MODEL_DIR/evaluation/<command>-<data name>.json` (`--out FILE` to choose); zero-shot also saves
the confusion matrix as a PNG beside the JSON. An existing result is replaced only with
`--overwrite`, and no result is ever written over the model's own files.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import torch

from unicl.data import parse_source
from unicl.errors import UserInputError
from unicl.evaluate import evaluate_retrieval, evaluate_zeroshot, linear_probe
from unicl.evaluate.results import write_json
from unicl.files import refuse_existing
from unicl.models import UniCLModel, load
from unicl.templates import get_templates


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """MODEL_DIR, --device and --batch-size, shared by every command that runs a saved model."""
    parser.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="a saved model directory")
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N, or auto (cuda when available)"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")


def load_model(args: argparse.Namespace) -> UniCLModel:
    """The model of `args.model_dir`, in eval mode on `args.device`."""
    if args.batch_size < 1:
        raise UserInputError(f"--batch-size is {args.batch_size}; it must be at least 1")
    if not args.model_dir.is_dir():
        raise UserInputError(
            f"model directory {str(args.model_dir)!r} does not exist; pass a directory written "
            "by `unicl train` or save_pretrained"
        )
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except RuntimeError:
        raise UserInputError(
            f"--device {args.device!r} is not a device; use cpu, cuda or auto"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"--device {args.device} asks for CUDA, which this machine lacks")
    return load(args.model_dir).to(device).eval()


def data_name(source: str) -> str:
    """A file-name-safe name for a source string: `data/fm#t10k` -> `fm-t10k`."""
    spec = parse_source(source)
    name = Path(spec.location.rstrip("/")).name.removesuffix(".tar")
    name = f"{name}-{spec.split}" if spec.split else name
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "data"


def refuse_outputs(args: argparse.Namespace, *paths: Path) -> None:
    """Check output files before any work: none inside the model directory except under its
    `evaluation/` folder, and none that exists unless `--overwrite`."""
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


def result_path(args: argparse.Namespace, command: str, source: str, *siblings: str) -> Path:
    """`--out` if given, else `MODEL_DIR/evaluation/<command>-<data name>.json`, after checking
    it and its `siblings` (other suffixes written beside it) with `refuse_outputs`."""
    path = args.out
    if path is None:
        path = args.model_dir / "evaluation" / f"{command}-{data_name(source)}.json"
    refuse_outputs(args, path, *(path.with_suffix(suffix) for suffix in siblings))
    return path


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_shown(item)}" for key, item in value.items())
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def report(metrics: dict[str, Any], path: Path, as_json: bool) -> None:
    """Print the metrics (aligned `name: value` lines, or JSON) and where they were written."""
    if as_json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
        return
    width = max(len(name) for name in metrics)
    for name, value in metrics.items():
        print(f"{name:<{width}}  {_shown(value)}")
    print(f"results: {path}")


def _common(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument(
        "--out", type=Path, help="the JSON result file (default: next to the model)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_overwrite_option(parser)


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overwrite", action="store_true", help="replace output files that already exist"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("eval", help="evaluate a saved model")
    commands = group.add_subparsers(dest="eval_command", metavar="COMMAND", required=True)

    zeroshot = commands.add_parser(
        "zeroshot", help="zero-shot classification with prompt-ensembled text classifiers"
    )
    _common(zeroshot)
    zeroshot.add_argument("--data", required=True, help="image-label source (see docs/data.md)")
    zeroshot.add_argument(
        "--templates", help="template set name (default, imagenet) or a file, one per line"
    )
    zeroshot.set_defaults(func=run_zeroshot)

    probe = commands.add_parser(
        "linear-probe", help="logistic regression on frozen image features, L2 chosen on validation"
    )
    _common(probe)
    probe.add_argument("--train", required=True, help="image-label source to fit the probe on")
    probe.add_argument("--test", required=True, help="image-label source to score it on")
    probe.add_argument(
        "--validation-fraction",
        type=float,
        default=0.2,
        help="share of --train held out to choose the L2 strength (default 0.2)",
    )
    probe.add_argument("--seed", type=int, default=0, help="seed of the validation split")
    probe.set_defaults(func=run_linear_probe)

    retrieval = commands.add_parser("retrieval", help="image<->text recall@1/5/10")
    _common(retrieval)
    retrieval.add_argument("--data", required=True, help="image-text source (see docs/data.md)")
    retrieval.set_defaults(func=run_retrieval)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    if args.workers < 0:
        raise UserInputError(f"--workers is {args.workers}; it must be 0 or more")
    return {"batch_size": args.batch_size, "num_workers": args.workers}


def run_zeroshot(args: argparse.Namespace) -> int:
    options = _options(args)
    model = load_model(args)
    templates = None if args.templates is None else get_templates(args.templates)
    path = result_path(args, "zeroshot", args.data, ".png")
    metrics = evaluate_zeroshot(
        model, args.data, templates=templates, confusion_png=path.with_suffix(".png"), **options
    )
    write_json(path, {"command": "zeroshot", "data": args.data, **metrics})
    report(metrics, path, args.json)
    return 0


def run_linear_probe(args: argparse.Namespace) -> int:
    if not 0.0 < args.validation_fraction < 1.0:
        raise UserInputError(
            f"--validation-fraction is {args.validation_fraction}; it must be between 0 and 1"
        )
    options = _options(args)
    model = load_model(args)
    path = result_path(args, "linear-probe", args.test)
    metrics = linear_probe(
        model,
        args.train,
        args.test,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        **options,
    )
    write_json(path, {"command": "linear-probe", "train": args.train, "test": args.test, **metrics})
    report(metrics, path, args.json)
    return 0


def run_retrieval(args: argparse.Namespace) -> int:
    options = _options(args)
    model = load_model(args)
    path = result_path(args, "retrieval", args.data)
    metrics = evaluate_retrieval(model, args.data, **options)
    write_json(path, {"command": "retrieval", "data": args.data, **metrics})
    report(metrics, path, args.json)
    return 0
