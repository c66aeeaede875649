"""`unicl data inspect|prepare|shard`: look at a source, fetch a dataset, write shards.

unicl data inspect data/demo/emoji/train-{000000..000003}.tar --sheet sheet.png
unicl data prepare fashion-mnist --out data/fashion-mnist [--format shards]
unicl data shard captions.tsv --out shards/ --per-shard 10000
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unicl.data.inspection import inspect_source
from unicl.data.prepare import prepare_fashion_mnist
from unicl.data.readers import open_source, source_kinds
from unicl.data.writers import write_shards
from unicl.errors import UserInputError
from unicl.files import refuse_existing, refuse_filled_folder

DATASETS = ("fashion-mnist",)


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("data")
    commands = group.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    source_help = (
        f"[KIND:]PATH[?KEY=VALUE&...][#SPLIT], KIND one of {', '.join(source_kinds())} "
        "(detected when left out)"
    )

    inspect = commands.add_parser("inspect", help="kind, size, classes and bad samples of a source")
    inspect.add_argument("source", help=source_help)
    inspect.add_argument("--sheet", type=Path, help="write a PNG contact sheet of samples here")
    inspect.add_argument(
        "--overwrite", action="store_true", help="replace an existing --sheet file"
    )
    inspect.add_argument("--limit", type=int, help="check only the first N samples for bad data")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.set_defaults(func=run_inspect)

    prepare = commands.add_parser(
        "prepare", help="write a public dataset as a folder tree or shards"
    )
    prepare.add_argument("dataset", choices=DATASETS)
    prepare.add_argument("--out", type=Path, required=True, help="new folder for the result")
    prepare.add_argument("--format", choices=("folder", "shards"), default="folder")
    prepare.add_argument("--per-shard", type=int, default=10000, help="samples per shard")
    prepare.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="folder with the IDX files (default: Debian's, else download)",
    )
    prepare.set_defaults(func=run_prepare)

    shard = commands.add_parser(
        "shard", help="write any source (e.g. a manifest) as WebDataset shards"
    )
    shard.add_argument("source", help=source_help)
    shard.add_argument("--out", type=Path, required=True, help="new folder for the shards")
    shard.add_argument("--per-shard", type=int, default=10000, help="samples per shard")
    shard.add_argument("--prefix", default="shard", help="shard file name prefix")
    shard.set_defaults(func=run_shard)


def run_inspect(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise UserInputError(f"--limit is {args.limit}; it must be at least 1")
    if args.sheet is not None:
        refuse_existing(args.sheet, overwrite=args.overwrite)
    report = inspect_source(args.source, sheet=args.sheet, limit=args.limit)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    classes = report["classes"]
    print(
        f"{report['source']}: {report['kind']}, {report['modality']}, {report['samples']} samples"
    )
    if classes:
        print(
            f"classes ({len(classes)}): {', '.join(classes[:20])}{' ...' if len(classes) > 20 else ''}"
        )
    bad = ", ".join(f"{cause} {count}" for cause, count in sorted(report["bad"].items())) or "none"
    print(f"bad samples: {report['unreadable']} of {report['checked']} checked ({bad})")
    if "sheet" in report:
        print(f"contact sheet: {report['sheet']}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    refuse_filled_folder(args.out)
    report = prepare_fashion_mnist(args.out, args.format, args.per_shard, args.source)
    print(f"read {report['from']}")
    for split in ("train", "test"):
        counts = report[split]
        where = counts.get("pattern", str(args.out / split))
        print(f"{split}: {counts['written']} images -> {where}")
    return 0


def run_shard(args: argparse.Namespace) -> int:
    report = write_shards(open_source(args.source), args.out, args.per_shard, args.prefix)
    bad = ", ".join(f"{cause} {count}" for cause, count in sorted(report["bad"].items()))
    print(f"wrote {report['written']} samples in {report['shards']} shards: {report['pattern']}")
    if bad:
        print(f"skipped bad samples: {bad}")
    return 0
