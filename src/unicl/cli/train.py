"""`unicl train CONFIG.yaml [--set key=value ...] [--print-config] [--resume latest|PATH]`.

Under `torchrun --nproc_per_node=N -m unicl train ...` every process runs this command; only
rank 0 prints and writes.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys

from unicl.train import (
    RunUnhealthy,
    TrainingDiverged,
    config_to_yaml,
    load_training_config,
    train,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        description=(
            "Train as a YAML config says (sections model, data, objective, optim, schedule, run, "
            "checkpoint, evaluation, logging; see configs/ and docs/training.md). "
            "Several processes: torchrun --nproc_per_node=N -m unicl train CONFIG.yaml."
        ),
    )
    parser.add_argument("config", help="the training config, a YAML file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=1e-3 --set run.output_dir=runs/x "
        "(the value is read as YAML; repeatable)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config (defaults and overrides applied) and exit",
    )
    parser.add_argument(
        "--resume",
        metavar="latest|PATH",
        help="continue from the newest checkpoint of run.output_dir, or from a checkpoint file",
    )
    parser.set_defaults(func=run)


def _same_run(args: argparse.Namespace) -> list[str]:
    """The config and its overrides as given, so that the hint names this very run."""
    return [str(args.config), *(part for value in args.overrides for part in ("--set", value))]


def run(args: argparse.Namespace) -> int:
    config = load_training_config(args.config, args.overrides)
    if args.print_config:
        print(config_to_yaml(config), end="")
        return 0
    try:
        result = train(config, resume=args.resume)
    except (TrainingDiverged, RunUnhealthy) as error:
        print(f"unicl: {error}", file=sys.stderr)
        return 1
    if result.stopped_by is not None:
        if result.checkpoint is not None:
            name = signal.Signals(result.stopped_by).name if result.stopped_by > 0 else "a signal"
            print(
                f"unicl: stopped by {name} at step {result.step}; checkpoint {result.checkpoint}\n"
                f"continue with: unicl train {shlex.join(_same_run(args))} --resume latest",
                file=sys.stderr,
            )
        return 128 + max(result.stopped_by, 0)
    if result.report is not None:
        for name, value in result.evaluation.items():
            print(f"{name}: {value:.4f}")
        print(f"trained model: {result.model_dir}")
        print(f"report: {result.report}")
    return 0
