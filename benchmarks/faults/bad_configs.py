"""Bad training configs: every key of `unicl.train.config.TrainConfig`, found by walking its
dataclasses, given values of the wrong type, negative, non-finite and absurd; unknown keys in every
section; broken config files and malformed `--set` overrides.

Each case is `unicl train <cheap config> --set KEY=VALUE --set run.output_dir=<case>/run`; a value
the config accepts runs the 2-step training, so an accepted bad value shows as `wrong`.
"""

from __future__ import annotations

import dataclasses
import itertools
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from unicl.train.config import TrainConfig

from .fixtures import Fixtures
from .harness import Case, Invocation

CATEGORY = "bad configs"
ABSURD = {  # sizes for which 10^12 is absurd, not merely long
    "data.batch_size",
    "data.accumulation_steps",
    "objective.num_classes",
    "run.threads",
    "run.seed",
    "model.lock_image.unlocked_groups",
}
EITHER = {  # values that are odd but harmless: accepted or refused, both are right
    ("run.seed", "-1"),
    ("objective.tile_size", "1000000000000"),
    ("optim.reference_batch", "1000000000000"),
    ("evaluation.batch_size", "1000000000000"),
}
NON_FINITE = itertools.cycle([".nan", ".inf", "-.inf"])
WRONG_TYPE = itertools.cycle([True, False])


def _unwrap(hint: Any) -> Any:
    """The type inside `Annotated[...]` and `X | None`."""
    while True:
        origin = typing.get_origin(hint)
        if origin is typing.Annotated:
            hint = typing.get_args(hint)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in typing.get_args(hint) if a is not type(None)]
            hint = options[0]
        else:
            return hint


def config_keys(cls: type = TrainConfig, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, type) of every field under `cls`, sections and nested dataclasses included
    (two levels deep; of the two lock sections, `model.lock_image` only: they share one type)."""
    found = []
    hints = typing.get_type_hints(cls, include_extras=True)
    for field in dataclasses.fields(cls):
        key = f"{prefix}{field.name}"
        kind = _unwrap(hints[field.name])
        if key == "model.lock_text":
            continue
        found.append((key, kind))
        if dataclasses.is_dataclass(kind):
            found += config_keys(kind, f"{key}.")
    return found


def bad_values(key: str, kind: Any) -> list[tuple[str, str]]:
    """(what is wrong, YAML text) for one key of type `kind`: out of range for every number, a
    wrong type for every other one (`next(WRONG_TYPE)`), 10^12 for sizes in `ABSURD`; an unknown
    key in every section, a value that is not a mapping in four."""
    origin = typing.get_origin(kind)
    if kind is bool:
        return [] if key.startswith("model.lock_image.") else [("not a boolean", "sometimes")]
    if kind is int:
        values = [("negative", "-1")]
        if next(WRONG_TYPE):
            values.append(("not an integer", "ten" if len(key) % 2 else "2.5"))
        if key in ABSURD or key in {k for k, _ in EITHER}:
            values.append(("absurd", "1000000000000" if key != "run.seed" else str(2**70)))
        return values
    if kind is float:
        values = [("non-finite", next(NON_FINITE)), ("negative", "-1.0")]
        return values + ([("not a number", "fast")] if next(WRONG_TYPE) else [])
    if kind is str:
        return [("not a string", "[a, b]")]
    if origin is Literal:
        return [("unknown choice", "bogus")]
    if origin is dict:
        return [("not a mapping", "[1, 2]")]
    if origin is list:
        return [("not a list", "5")]
    if origin is tuple:
        return [("too short", "[0.9]"), ("out of range", "[0.9, 1.5]")]
    if dataclasses.is_dataclass(kind):
        wrong = [("not a mapping", "5")] if key in ("model", "data", "optim", "run") else []
        return [*wrong, ("unknown key", "{bogus_key: 1}")]
    raise TypeError(f"no bad values for {key}: {kind}")


def _train(fx: Fixtures, *overrides: str, config: Path | None = None):
    def setup(folder: Path) -> Invocation:
        sets = [part for value in overrides for part in ("--set", value)]
        return Invocation(
            argv=[
                "train",
                str(config or fx.train_config),
                "--set",
                f"run.output_dir={folder / 'run'}",
                *sets,
            ]
        )

    return setup


def _file(text: bytes, name: str = "config.yaml"):
    def setup(folder: Path) -> Invocation:
        (folder / name).write_bytes(text)
        return Invocation(argv=["train", str(folder / name)])

    return setup


def cases(fx: Fixtures) -> list[Case]:
    found = []
    for key, kind in config_keys():
        for what, value in bad_values(key, kind):
            expect = "either" if (key, value) in EITHER else "error"
            name = f"{key}={value} ({what})"
            found.append(Case(CATEGORY, name, _train(fx, f"{key}={value}"), expect))
    sources = str(fx.folder)
    found += [
        Case(CATEGORY, "unknown section", _train(fx, "bogus_section.key=1")),
        Case(CATEGORY, "no data sources", _train(fx, "data.sources=[]")),
        Case(CATEGORY, "source that does not exist", _train(fx, "data.sources=[/nonexistent/x]")),
        Case(CATEGORY, "source weight -1", _train(fx, f"data.sources=[{{location: {sources}, weight: -1}}]")),
        Case(CATEGORY, "source weight .nan", _train(fx, f"data.sources=[{{location: {sources}, weight: .nan}}]")),
        Case(CATEGORY, "source mapping unknown key", _train(fx, f"data.sources=[{{location: {sources}, bogus: 1}}]")),
        Case(CATEGORY, "warmup_steps = steps", _train(fx, "schedule.warmup_steps=2")),
        Case(CATEGORY, "fp16 on cpu", _train(fx, "run.precision=fp16", "run.device=cpu")),
        Case(CATEGORY, "unknown model name", _train(fx, "model.name=unicl-huge")),
        Case(CATEGORY, "model override absurd width", _train(fx, "model.overrides={embed_dim: 100000000}")),
        Case(CATEGORY, "model override unknown arch", _train(fx, "model.overrides={vision: {arch: alexnet}}")),
        Case(CATEGORY, "zeroshot entry without source", _train(fx, "evaluation.zeroshot=[{name: x}]")),
        Case(CATEGORY, "zeroshot templates file missing", _train(fx, f"evaluation.zeroshot=[{{source: {sources}, templates: /nonexistent.txt}}]")),
        Case(CATEGORY, "augment unknown argument", _train(fx, "data.augment={bogus: 1}")),
        Case(CATEGORY, "augment scale absurd", _train(fx, "data.augment={scale: [5, -1]}")),
        Case(CATEGORY, "--set without =", _train(fx, "optim.lr")),
        Case(CATEGORY, "--set empty key", _train(fx, ".lr=1")),
        Case(CATEGORY, "--set bad list index", _train(fx, "data.sources.7=x")),
        Case(CATEGORY, "--set unclosed YAML", _train(fx, "optim.lr=[1")),
        Case(CATEGORY, "--set into a value", _train(fx, "optim.lr.x=1")),
        Case(CATEGORY, "config file empty", _file(b"")),
        Case(CATEGORY, "config file a list", _file(b"- model\n- data\n")),
        Case(CATEGORY, "config file invalid YAML", _file(b"model: {name: [unicl-tiny\n")),
        Case(CATEGORY, "config file not UTF-8", _file("model: {name: caf\xe9}\n".encode("latin-1"))),
        Case(CATEGORY, "config file binary", _file(bytes(range(256)) * 4)),
        Case(CATEGORY, "config file YAML tag (object)", _file(b"model: !!python/object/apply:os.system ['true']\n")),
    ]  # fmt: skip
    return found
