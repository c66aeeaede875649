"""`unicl info MODEL_DIR [--json]`: what a saved model is: its towers, sizes, parameter counts,
tokenizer and, for a model written by `unicl train`, how it was trained (from the run's
`config.yaml` beside it)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from unicl.errors import UserInputError
from unicl.models import UniCLModel, load


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info")
    parser.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="a saved model directory")
    parser.add_argument("--json", action="store_true", help="print the description as JSON")
    parser.set_defaults(func=run_info)


def describe(model: UniCLModel, model_dir: Path) -> dict[str, Any]:
    """The model's architecture, sizes and parameter counts, plus its training run if known."""
    config = model.config

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    description = {
        "model": str(model_dir),
        "vision": config.vision,
        "text": config.text,
        "embed_dim": config.embed_dim,
        "image_size": config.image_size,
        "context_length": config.context_length,
        "tokenizer_vocab_size": model.tokenizer.vocab_size,
        "parameters": {
            "total": count(model),
            "image_tower": count(model.image_encoder),
            "text_tower": count(model.text_encoder),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        },
        "logit_scale": round(float(model.logit_scale.detach().exp()), 4),
    }
    if config.image_only:
        description["image_only"] = "yes: the text tower was not trained (ce or supcon run)"
    run_config = model_dir.parent / "config.yaml"
    if run_config.is_file():
        try:
            run = yaml.safe_load(run_config.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            run = None
        if isinstance(run, dict):
            description["trained"] = {
                "run": str(model_dir.parent),
                "objective": (run.get("objective") or {}).get("name"),
                "steps": (run.get("schedule") or {}).get("steps"),
                "sources": (run.get("data") or {}).get("sources"),
            }
    return description


def run_info(args: argparse.Namespace) -> int:
    if not args.model_dir.is_dir():
        raise UserInputError(f"model directory {str(args.model_dir)!r} does not exist")
    description = describe(load(args.model_dir), args.model_dir)
    if args.json:
        print(json.dumps(description, indent=2))
        return 0
    for key, value in description.items():
        shown = (
            ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else value
        )
        print(f"{key:<22}{shown}")
    return 0
