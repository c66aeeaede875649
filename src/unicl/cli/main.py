"""Entry point of the `unicl` command.

Each command lives in its own module with a `register(subparsers)` function that adds its
sub-command (without `help=`: its one-line summary is in `COMMANDS`) and sets `func` on the parsed
namespace. Only the module of the command being run is imported, so a command loads what it uses
and nothing else (`unicl --help` and a misspelt command load no module at all, nor PyTorch).
Errors a user can fix are printed as one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from unicl.errors import UserInputError

COMMANDS: dict[str, tuple[str, str]] = {
    # command: (module under unicl.cli, the summary `unicl --help` lists)
    "data": ("data", "inspect, prepare and shard data sources"),
    "tokenizer": ("tokenizer", "train tokenizers"),
    "train": ("train", "train a model from a YAML config"),
    "eval": ("evaluate", "evaluate a saved model"),
    "predict": ("predict", "the most probable labels of image files (zero-shot)"),
    "embed": ("embed", "export image or caption embeddings to .npy"),
    "info": ("info", "architecture, parameters and origin of a model"),
    "convert": (
        "convert",
        "import a pretrained CLIP or UniCL checkpoint as a unicl model directory",
    ),
    "export": ("export", "write a model as a Hugging Face CLIP or OpenCLIP directory"),
    "wise-ft": (
        "wise_ft",
        "interpolate a zero-shot and a fine-tuned model in weight space (WiSE-FT)",
    ),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: the full parser of the command it names (its module imported),
    a summary entry for every other command."""
    parser = argparse.ArgumentParser(
        prog="unicl", description="Unified contrastive learning in image-text-label space."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    words = sys.argv[1:] if argv is None else argv
    chosen = next((word for word in words if not word.startswith("-")), None)
    for name, (module, summary) in COMMANDS.items():
        if name == chosen:
            importlib.import_module(f"unicl.cli.{module}").register(subparsers)
            command = subparsers.choices[name]
            command.description = command.description or summary
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; exit status 2 for an error the user can fix, 130 for Ctrl-C (at any
    moment, also while the command's modules are still loading)."""
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print("unicl: interrupted", file=sys.stderr)
        return 130


def _run(argv: list[str] | None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        print("unicl: error: name a command, e.g. unicl train CONFIG.yaml", file=sys.stderr)
        return 2
    try:
        return args.func(args) or 0
    except (UserInputError, FileNotFoundError) as error:
        print(f"unicl: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
