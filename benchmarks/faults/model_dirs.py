"""Damaged and hostile model directories: a copy of a saved `unicl-tiny` with its weights cut
short, files missing, `config.json` of wrong types, absurd sizes, unknown architectures or package
names, non-UTF-8 bytes, symbolic links to devices and loops, NaN weights; each given to `info`,
`predict`, `eval`, `embed` or `train` (fine-tuning from it).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .fixtures import Fixtures
from .harness import Case, Invocation

CATEGORY = "damaged or hostile model directories"
PAYLOAD = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\n"


def _config(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A damage that edits the parsed `config.json` in place."""

    def damage(model: Path) -> None:
        config = json.loads((model / "config.json").read_text())
        change(config)
        (model / "config.json").write_text(json.dumps(config))

    return damage


def _weights(change: Callable[[dict], dict]) -> Callable[[Path], None]:
    """A damage that rewrites `model.safetensors` with `change(tensors)`."""

    def damage(model: Path) -> None:
        path = model / "model.safetensors"
        save_file(change(load_file(path)), path)

    return damage


def _cut(fraction: float) -> Callable[[Path], None]:
    def damage(model: Path) -> None:
        path = model / "model.safetensors"
        path.write_bytes(path.read_bytes()[: int(path.stat().st_size * fraction)])

    return damage


def _header_length(length: int) -> Callable[[Path], None]:
    """Weights whose 8-byte header length says `length`."""

    def damage(model: Path) -> None:
        path = model / "model.safetensors"
        data = path.read_bytes()
        path.write_bytes(struct.pack("<Q", length) + data[8:])

    return damage


def _replace(name: str, content: bytes | None = None, link: str | None = None, directory=False):
    """Replace `name` in the model by `content`, a symbolic link to `link`, a directory, or
    nothing (all None)."""

    def damage(model: Path) -> None:
        path = model / name
        path.unlink()
        if content is not None:
            path.write_bytes(content)
        elif link is not None:
            path.symlink_to(link)
        elif directory:
            path.mkdir()

    return damage


def _nan(tensors: dict) -> dict:
    name = next(n for n, t in tensors.items() if t.is_floating_point() and t.ndim == 2)
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    return tensors


def _drop_one(tensors: dict) -> dict:
    tensors.pop(sorted(tensors)[0])
    return tensors


def _extra(tensors: dict) -> dict:
    return {**tensors, "bogus.weight": torch.zeros(3)}


def _reshape(tensors: dict) -> dict:
    name = next(n for n, t in tensors.items() if t.ndim == 2)
    tensors[name] = tensors[name].reshape(-1, 1).contiguous()
    return tensors


def _half(tensors: dict) -> dict:
    return {n: t.half() if t.is_floating_point() else t for n, t in tensors.items()}


def _command(command: str, model: Path, folder: Path, fx: Fixtures) -> list[str]:
    return {
        "info": ["info", str(model)],
        "predict": ["predict", str(model), str(fx.image), "--labels", "black,white"],
        "eval": ["eval", "zeroshot", str(model), "--data", str(fx.folder), "--out",
                 str(folder / "zeroshot.json")],
        "embed": ["embed", str(model), "--data", str(fx.folder), "--out", str(folder / "e.npy")],
        "train": ["train", str(fx.train_config), "--set", f"model.name={model}",
                  "--set", f"run.output_dir={folder / 'run'}"],
    }[command]  # fmt: skip


def _case(fx: Fixtures, name: str, damage, command: str, expect: str = "error") -> Case:
    def setup(folder: Path) -> Invocation:
        model = fx.copy_model(folder)
        damage(model)
        return Invocation(argv=_command(command, model, folder, fx))

    return Case(CATEGORY, f"{name} ({command})", setup, expect)


def _hostile_package(fx: Fixtures, package: str, command: str) -> Case:
    """config.json names a text tower package; a module of that name sits beside the model and
    in the working directory: it must never run."""

    def setup(folder: Path) -> Invocation:
        model = fx.copy_model(folder)
        marker = folder / "code-ran"
        for place in (model, folder):
            (place / f"{package}.py").write_text(PAYLOAD.format(marker=str(marker)))
        _config(lambda c: c.update(text={"arch": "hf", "package": package}))(model)
        return Invocation(
            argv=_command(command, Path("model"), folder, fx),
            check=lambda: "code named by config.json ran" if marker.exists() else None,
        )

    return Case(CATEGORY, f"text.package names a module beside it ({command})", setup)


def _linked_model(fx: Fixtures) -> Case:
    def setup(folder: Path) -> Invocation:
        model = fx.copy_model(folder, "real")
        (folder / "model").symlink_to(model)
        return Invocation(argv=_command("predict", folder / "model", folder, fx))

    return Case(CATEGORY, "model directory is a symbolic link (predict)", setup, "ok")


def _model_is(kind: str) -> Case:
    def setup(folder: Path) -> Invocation:
        path = folder / "model"
        if kind == "file":
            path.write_text("not a model\n")
        else:
            path.mkdir()
        return Invocation(argv=["info", str(path)])

    return Case(CATEGORY, f"model directory is {kind} (info)", setup)


def _fifo_weights(fx: Fixtures) -> Case:
    def setup(folder: Path) -> Invocation:
        model = fx.copy_model(folder)
        (model / "model.safetensors").unlink()
        os.mkfifo(model / "model.safetensors")
        return Invocation(argv=["info", str(model)], timeout=60)

    return Case(CATEGORY, "model.safetensors is a FIFO nobody writes (info)", setup)


def cases(fx: Fixtures) -> list[Case]:
    weights = "model.safetensors"
    return [
        _case(fx, "weights cut to half", _cut(0.5), "info"),
        _case(fx, "weights cut to 100 bytes", _cut(100 / 8.8e6), "predict"),
        _case(fx, "weights zero bytes", _cut(0.0), "eval"),
        _case(fx, "weights header length 2^62", _header_length(1 << 62), "info"),
        _case(fx, "weights header length 0", _header_length(0), "info"),
        _case(fx, "weights random bytes", _replace(weights, os.urandom(4096)), "embed"),
        _case(fx, "weights missing", _replace(weights), "info"),
        _case(fx, "weights is a directory", _replace(weights, directory=True), "info"),
        _case(fx, "weights link to /dev/zero", _replace(weights, link="/dev/zero"), "info"),
        _case(fx, "weights link loop", _replace(weights, link=weights), "info"),
        _case(fx, "weights of another shape", _weights(_reshape), "info"),
        _case(fx, "weights missing a tensor", _weights(_drop_one), "eval"),
        _case(fx, "weights with an extra tensor", _weights(_extra), "info"),
        _case(fx, "weights in float16", _weights(_half), "predict", "either"),
        _case(fx, "weights NaN", _weights(_nan), "predict", "either"),
        _case(fx, "weights NaN", _weights(_nan), "train"),
        _case(fx, "config.json missing", _replace("config.json"), "info"),
        _case(fx, "config.json truncated", lambda m: (m / "config.json").write_text('{"format": "unicl-mo'), "info"),
        _case(fx, "config.json not UTF-8", _replace("config.json", b'{"format": "unicl-model\xff\xfe"}'), "predict"),
        _case(fx, "config.json a list", _replace("config.json", b"[1, 2, 3]"), "info"),
        _case(fx, "config.json link to /dev/zero", _replace("config.json", link="/dev/zero"), "info"),
        _case(fx, "config.json link to /etc/passwd", _replace("config.json", link="/etc/passwd"), "info"),
        _case(fx, "config.json format version 99", _config(lambda c: c.update(version=99)), "info"),
        _case(fx, "config.json embed_dim 'big'", _config(lambda c: c.update(embed_dim="big")), "eval"),
        _case(fx, "config.json embed_dim 2e8", _config(lambda c: c.update(embed_dim=2e8)), "info"),
        _case(fx, "config.json embed_dim 200000000", _config(lambda c: c.update(embed_dim=200000000)), "info"),
        _case(fx, "config.json context_length 1e9", _config(lambda c: c.update(context_length=10**9)), "predict"),
        _case(fx, "config.json image_size -5", _config(lambda c: c.update(image_size=-5)), "info"),
        _case(fx, "config.json image_mean of one value", _config(lambda c: c.update(image_mean=[0.5])), "info"),
        _case(fx, "config.json image_std NaN", _config(lambda c: c.update(image_std=[float("nan")] * 3)), "info"),
        _case(fx, "config.json unknown key", _config(lambda c: c.update(bogus=1)), "info"),
        _case(fx, "config.json unknown vision arch", _config(lambda c: c["vision"].update(arch="alexnet")), "info"),
        _case(fx, "config.json vision widths absurd", _config(lambda c: c["vision"].update(widths=[16384] * 4, layers=[1024] * 4)), "info"),
        _case(fx, "config.json text width absurd", _config(lambda c: c["text"].update(width=16384, layers=1024)), "train"),
        _case(fx, "config.json text arch hf package os", _config(lambda c: c.update(text={"arch": "hf", "package": "os"})), "info"),
        _case(fx, "config.json text hf path /etc", _config(lambda c: c.update(text={"arch": "hf", "path": "/etc"})), "info"),
        _case(fx, "config.json tokenizer /dev/zero", _config(lambda c: c.update(tokenizer="/dev/zero")), "info"),
        _case(fx, "config.json tokenizer ../../etc/passwd", _config(lambda c: c.update(tokenizer="../../../../../etc/passwd")), "info"),
        _case(fx, "config.json tokenizer missing file", _config(lambda c: c.update(tokenizer="nope.json")), "predict"),
        _case(fx, "tokenizer.json missing", _replace("tokenizer.json"), "predict"),
        _case(fx, "tokenizer.json truncated", _replace("tokenizer.json", b'{"version": "1.0", "trunc'), "info"),
        _case(fx, "tokenizer.json not UTF-8", _replace("tokenizer.json", b"\xff\xfe\x00garbage"), "info"),
        _case(fx, "provenance.json damaged", _replace("provenance.json", b"{not json"), "info", "either"),
        _case(fx, "README.md missing", _replace("README.md"), "eval", "ok"),
        _hostile_package(fx, "evil_tower", "info"),
        _hostile_package(fx, "evil_tower", "eval"),
        _linked_model(fx),
        _model_is("file"),
        _model_is("empty"),
        _fifo_weights(fx),
    ]  # fmt: skip
