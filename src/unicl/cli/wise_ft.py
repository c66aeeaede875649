"""`unicl wise-ft MODEL_ZEROSHOT MODEL_FINETUNED --out DIR`: WiSE-FT weight-space ensembles.

`--alpha A` (default 0.5) writes the model `(1 - A) * zero-shot + A * fine-tuned` to DIR
(`unicl.models.interpolate.interpolate_weights`). `--alphas 0,0.25,...` sweeps the mixing
coefficient instead: each mixture is scored with zero-shot classification on every
`--eval-zeroshot SOURCE` and the table is printed and written to `DIR.json`, beside DIR; the
mixtures themselves are written (to `DIR/alpha-<A>/`) only with `--save-models`. Nothing that
exists is overwritten: DIR and DIR.json are checked before any work.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from unicl.cli.common import add_num_workers_option, load_model, num_workers
from unicl.data import parse_source
from unicl.errors import UserInputError
from unicl.evaluate import evaluate_zeroshot
from unicl.evaluate.results import write_json
from unicl.models.interpolate import interpolate_weights
from unicl.templates import get_templates

METRICS = ("top1", "top5")
"""The zero-shot metrics shown in the printed table (the JSON holds every metric)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "wise-ft",
        description=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "model_zeroshot",
        type=Path,
        metavar="MODEL_ZEROSHOT",
        help="the model fine-tuning began from",
    )
    parser.add_argument(
        "model_finetuned", type=Path, metavar="MODEL_FINETUNED", help="the fine-tuned model"
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="the model directory to create; a table goes to DIR.json",
    )
    mixing = parser.add_mutually_exclusive_group()
    mixing.add_argument("--alpha", type=float, help="weight of the fine-tuned model (default 0.5)")
    mixing.add_argument("--alphas", help="a sweep: comma-separated weights, e.g. 0,0.25,0.5,0.75,1")
    parser.add_argument(
        "--eval-zeroshot",
        action="append",
        default=[],
        metavar="SOURCE",
        help="image-label source to score each mixture on (repeatable)",
    )
    parser.add_argument(
        "--templates", help="template set name or file (default: each source's own)"
    )
    parser.add_argument(
        "--save-models", action="store_true", help="with --alphas: write every mixture too"
    )
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N, or auto (cuda when available)"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    add_num_workers_option(parser)
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    parser.set_defaults(func=run_wise_ft)


def parse_alphas(args: argparse.Namespace) -> list[float]:
    """`--alphas` or `--alpha` (default 0.5) as numbers in [0, 1], each once."""
    if args.alphas is None:
        alphas = [0.5 if args.alpha is None else args.alpha]
    else:
        try:
            alphas = [float(item) for item in args.alphas.split(",")]
        except ValueError:
            raise UserInputError(
                f"--alphas is {args.alphas!r}; give comma-separated numbers, e.g. 0,0.5,1"
            ) from None
    flag = "--alphas" if args.alphas is not None else "--alpha"
    if not all(0.0 <= alpha <= 1.0 for alpha in alphas):
        raise UserInputError(f"{flag} is {', '.join(map(str, alphas))}; each must be in [0, 1]")
    if len(set(alphas)) < len(alphas):
        raise UserInputError(f"{flag} lists a value twice: {args.alphas}")
    return alphas


def run_wise_ft(args: argparse.Namespace) -> int:
    alphas = parse_alphas(args)
    sweep = args.alphas is not None
    if sweep and not args.eval_zeroshot:
        raise UserInputError("--alphas sweeps need at least one --eval-zeroshot SOURCE to score")
    table = args.out.with_name(f"{args.out.name}.json")
    for path in (args.out, table) if args.eval_zeroshot else (args.out,):
        if path.exists():
            raise UserInputError(f"{path} already exists; choose another --out")
    workers = num_workers(args)
    templates = None if args.templates is None else get_templates(args.templates)
    names = [parse_source(source).name for source in args.eval_zeroshot]
    zeroshot = load_model(argparse.Namespace(**vars(args), model_dir=args.model_zeroshot))
    finetuned = load_model(argparse.Namespace(**vars(args), model_dir=args.model_finetuned))
    rows = []
    for alpha in alphas:
        model = interpolate_weights(zeroshot, finetuned, alpha).eval()
        saved = None
        if not sweep or args.save_models:
            saved = args.out / f"alpha-{alpha:g}" if sweep else args.out
            model.provenance = {
                "kind": "interpolated",
                "alpha": alpha,
                "zeroshot": str(args.model_zeroshot),
                "finetuned": str(args.model_finetuned),
                "base": finetuned.provenance,
            }
            model.save_pretrained(saved)
        scores = {
            source: evaluate_zeroshot(
                model,
                source,
                templates=templates,
                batch_size=args.batch_size,
                num_workers=workers,
            )
            for source in args.eval_zeroshot
        }
        rows.append(
            {"alpha": alpha, "model": None if saved is None else str(saved), "zeroshot": scores}
        )
    if not args.eval_zeroshot:
        print(f"model (alpha {alphas[0]:g}): {args.out}")
        return 0
    payload = {
        "command": "wise-ft",
        "zeroshot_model": str(args.model_zeroshot),
        "finetuned_model": str(args.model_finetuned),
        "sources": dict(zip(args.eval_zeroshot, names, strict=True)),
        "results": rows,
    }
    write_json(table, payload)
    if args.json:
        print(json.dumps(payload, indent=2, sort_keys=True))
    else:
        print(sweep_table(rows, args.eval_zeroshot, names))
        print(f"results: {table}")
    return 0


def sweep_table(rows: list[dict[str, Any]], sources: list[str], names: list[str]) -> str:
    """One line per alpha: the `METRICS` of every source, in aligned columns."""
    header = ["alpha", *(f"{name} {metric}" for name in names for metric in METRICS)]
    lines = [header]
    for row in rows:
        scores = row["zeroshot"]
        values = [f"{scores[source][metric]:.4f}" for source in sources for metric in METRICS]
        lines.append([f"{row['alpha']:g}", *values])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
