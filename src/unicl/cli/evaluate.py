"""`unicl eval zeroshot|linear-probe|retrieval MODEL_DIR ...`: evaluate a saved model.

Each command prints its metrics and writes them as JSON next to the model, in
`MODEL_DIR/evaluation/<command>-<data name>.json` (`--out FILE` to choose), and adds them to the
model card `MODEL_DIR/README.md`; zero-shot also saves the confusion matrix as a PNG beside the
JSON. An existing result is replaced only with
`--overwrite`, and no result is ever written over the model's own files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from unicl.cli.common import (
    add_model_options,
    add_num_workers_option,
    add_output_options,
    load_model,
    num_workers,
    refuse_outputs,
)
from unicl.data import parse_source
from unicl.errors import UserInputError
from unicl.evaluate import evaluate_retrieval, evaluate_zeroshot, linear_probe
from unicl.evaluate.results import write_json
from unicl.models import UniCLModel
from unicl.models.card import CARD_FILE, EVALUATION_DIR, write_model_card
from unicl.templates import get_templates


def result_path(args: argparse.Namespace, command: str, source: str, *siblings: str) -> Path:
    """`--out` if given, else `MODEL_DIR/evaluation/<command>-<data name>.json`, after checking
    it and its `siblings` (other suffixes written beside it) with `refuse_outputs`."""
    path = args.out
    if path is None:
        path = args.model_dir / EVALUATION_DIR / f"{command}-{parse_source(source).name}.json"
    refuse_outputs(args, path, *(path.with_suffix(suffix) for suffix in siblings))
    return path


def save_result(args: argparse.Namespace, model: UniCLModel, path: Path, payload: dict) -> None:
    """Write the result; one written into the model's `evaluation/` folder is added to its model
    card (`README.md`), unless that card was not written by unicl."""
    write_json(path, payload)
    in_model_dir = path.resolve().is_relative_to((args.model_dir / EVALUATION_DIR).resolve())
    if in_model_dir and not write_model_card(model, args.model_dir):
        print(
            f"unicl: {args.model_dir / CARD_FILE} was not written by unicl; left unchanged",
            file=sys.stderr,
        )


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
    add_num_workers_option(parser)
    add_output_options(parser, "the JSON result file (default: next to the model)", required=False)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("eval")
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
    return {"batch_size": args.batch_size, "num_workers": num_workers(args)}


def run_zeroshot(args: argparse.Namespace) -> int:
    options = _options(args)
    model = load_model(args)
    templates = None if args.templates is None else get_templates(args.templates)
    path = result_path(args, "zeroshot", args.data, ".png")
    metrics = evaluate_zeroshot(
        model, args.data, templates=templates, confusion_png=path.with_suffix(".png"), **options
    )
    save_result(args, model, path, {"command": "zeroshot", "data": args.data, **metrics})
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
    payload = {"command": "linear-probe", "train": args.train, "test": args.test, **metrics}
    save_result(args, model, path, payload)
    report(metrics, path, args.json)
    return 0


def run_retrieval(args: argparse.Namespace) -> int:
    options = _options(args)
    model = load_model(args)
    path = result_path(args, "retrieval", args.data)
    metrics = evaluate_retrieval(model, args.data, **options)
    save_result(args, model, path, {"command": "retrieval", "data": args.data, **metrics})
    report(metrics, path, args.json)
    return 0
