"""`unicl tokenizer train FILES... --vocab-size N --out DIR`: train a byte-level BPE tokenizer.

Every line of every UTF-8 text file is one training text (captions, class names, prompts). Writes
`DIR/tokenizer.json`, loadable by any model config's `tokenizer:` key.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from unicl.errors import UserInputError
from unicl.files import refuse_existing, write_text_atomic
from unicl.models.serialization import TOKENIZER_FILE
from unicl.models.tokenizer import train_bpe


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("tokenizer")
    commands = group.add_subparsers(dest="tokenizer_command", metavar="COMMAND", required=True)
    train = commands.add_parser("train", help="train a byte-level BPE on text files")
    train.add_argument("files", nargs="+", type=Path, help="UTF-8 text files, one text per line")
    train.add_argument(
        "--vocab-size", type=int, default=8192, help="vocabulary size (default 8192)"
    )
    train.add_argument("--min-frequency", type=int, default=2, help="minimum pair count to merge")
    train.add_argument("--out", type=Path, required=True, help="directory for tokenizer.json")
    train.add_argument(
        "--overwrite", action="store_true", help="replace an existing OUT/tokenizer.json"
    )
    train.set_defaults(func=run_train)


def _lines(files: list[Path]) -> Iterator[str]:
    for path in files:
        with path.open(encoding="utf-8") as handle:
            yield from (line.rstrip("\n") for line in handle)


def run_train(args: argparse.Namespace) -> int:
    out = args.out / TOKENIZER_FILE
    refuse_existing(out, overwrite=args.overwrite)
    for path in args.files:
        if not path.is_file():
            raise UserInputError(f"{path} is not a file; pass UTF-8 text files, one text per line")
    try:
        backend = train_bpe(_lines(args.files), args.vocab_size, args.min_frequency)
    except UnicodeDecodeError as error:
        raise UserInputError(f"a training file is not UTF-8 text: {error}") from error
    write_text_atomic(out, backend.to_str())
    print(f"wrote {out} ({backend.get_vocab_size()} tokens)")
    return 0
