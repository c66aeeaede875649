"""Entry point of the `unicl` command.

Each command group lives in its own module with a `register(subparsers)` function that adds its
sub-command and sets `func` on the parsed namespace. Errors a user can fix are printed as one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from unicl.errors import UserInputError

COMMAND_MODULES: tuple[str, ...] = (
    "data",
    "tokenizer",
    "train",
    "evaluate",
    "predict",
    "embed",
    "info",
    "convert",
    "export",
    "wise_ft",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unicl", description="Unified contrastive learning in image-text-label space."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"unicl.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except (UserInputError, FileNotFoundError) as error:
        print(f"unicl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unicl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
