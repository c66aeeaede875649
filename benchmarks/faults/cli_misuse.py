"""CLI misuses: every command with missing, wrong or contradictory arguments, nonexistent paths,
outputs pointing at existing files, directories or into a model directory.

Each case's folder holds a copy of the model (`{model}`), and a user's own files that nothing may
touch: `mine.json`, `mine.npy`, `sheet.png`, `file.txt`, `filled/keep.txt`, plus inputs
(`notes.txt`, `latin1.txt`, `empty.txt`, `texts.txt`, `tensor.pt`). Arguments name them with `{placeholders}`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .fixtures import FASHION, Fixtures
from .harness import Case, Invocation

CATEGORY = "CLI misuses"


def _user_files(folder: Path) -> None:
    for name, data in {
        "mine.json": b'{"mine": true}\n',
        "mine.npy": b"not mine to lose",
        "sheet.png": b"a picture of mine",
        "file.txt": b"my notes\n",
        "filled/keep.txt": b"keep me\n",
        "notes.txt": b"just some text, not an image or a checkpoint\n",
        "latin1.txt": "caf\xe9\ncr\xe8me br\xfbl\xe9e\n".encode("latin-1"),
        "empty.txt": b"",
        "texts.txt": b"a photo of a cat\na photo of a dog\n" * 30,
    }.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(data)
    torch.save(torch.zeros(3), folder / "tensor.pt")


def _case(fx: Fixtures, name: str, argv: str, expect: str = "error", check=None, may_change=()):
    """`argv`: the arguments after `unicl`, split on spaces, with `{model}`, `{other}`, `{case}`,
    `{data}`, `{captions}`, `{image}`, `{config}`, `{fashion}` filled in; `''` is an empty
    argument."""

    def setup(folder: Path) -> Invocation:
        _user_files(folder)
        places = {
            "model": folder / "model", "other": fx.other_model, "case": folder,
            "data": fx.folder, "captions": fx.captions, "image": fx.image,
            "config": fx.train_config, "fashion": FASHION,
        }  # fmt: skip
        if "{model}" in argv:
            fx.copy_model(folder)
        words = [word.format(**places) if word != "''" else "" for word in argv.split()]
        return Invocation(
            argv=words,
            check=None if check is None else lambda: check(folder),
            may_change=may_change,
        )

    return Case(CATEGORY, name, setup, expect)


def _inside(path: str, message: str):
    def check(folder: Path) -> str | None:
        return message if list(folder.glob(path)) else None

    return check


def cases(fx: Fixtures) -> list[Case]:
    zs = "eval zeroshot {model} --data {data}"
    out = "--out {case}/result.json"
    pred = "predict {model} {image}"
    tok = "tokenizer train {case}/texts.txt --vocab-size 300"
    shard = "data shard {data} --out {case}/shards"
    return [
        _case(fx, "no command", ""),
        _case(fx, "unknown command", "trian {config}"),
        _case(fx, "train: no config", "train"),
        _case(fx, "train: config does not exist", "train {case}/none.yaml"),
        _case(fx, "train: config is a directory", "train {case}"),
        _case(fx, "train: --resume latest of a new folder", "train {config} --set run.output_dir={case}/run --resume latest"),
        _case(fx, "train: --resume a missing file", "train {config} --set run.output_dir={case}/run --resume {case}/none.pt"),
        _case(fx, "train: --resume a text file", "train {config} --set run.output_dir={case}/run --resume {case}/notes.txt"),
        _case(fx, "train: --resume a file of one tensor", "train {config} --set run.output_dir={case}/run --resume {case}/tensor.pt"),
        _case(fx, "train: output_dir is a model directory", "train {config} --set run.output_dir={model}"),
        _case(fx, "train: output_dir is a file", "train {config} --set run.output_dir={case}/file.txt"),
        _case(fx, "train: output_dir holds a user's files", "train {config} --set run.output_dir={case}/filled"),
        _case(fx, "train: --print-config", "train {config} --print-config", "ok"),
        _case(fx, "eval: no subcommand", "eval"),
        _case(fx, "eval zeroshot: no --data", "eval zeroshot {model}"),
        _case(fx, "eval zeroshot: model does not exist", "eval zeroshot {case}/none --data {data}"),
        _case(fx, "eval zeroshot: a data folder as the model", "eval zeroshot {data} --data {data} " + out),
        _case(fx, "eval zeroshot: data does not exist", "eval zeroshot {model} --data {case}/none " + out),
        _case(fx, "eval zeroshot: --out an existing file", zs + " --out {case}/mine.json"),
        _case(fx, "eval zeroshot: --out the model's weights --overwrite", zs + " --out {model}/model.safetensors --overwrite"),
        _case(fx, "eval zeroshot: --out a directory", zs + " --out {case}/filled"),
        _case(fx, "eval zeroshot: --batch-size 0", zs + " --batch-size 0 " + out),
        _case(fx, "eval zeroshot: --threads 0", zs + " --threads 0 " + out),
        _case(fx, "eval zeroshot: --threads 100000000000", zs + " --threads 100000000000 " + out),
        _case(fx, "eval zeroshot: --device bogus", zs + " --device bogus " + out),
        _case(fx, "eval zeroshot: --device cuda without a GPU", zs + " --device cuda " + out),
        _case(fx, "eval zeroshot: --templates missing file", zs + " --templates {case}/none.txt " + out),
        _case(fx, "eval zeroshot: --templates empty file", zs + " --templates {case}/empty.txt " + out),
        _case(fx, "eval zeroshot: --templates not UTF-8", zs + " --templates {case}/latin1.txt " + out, "either"),
        _case(fx, "eval zeroshot: default result path", zs, "ok", may_change=("model/README.md",)),
        _case(fx, "eval linear-probe: no --test", "eval linear-probe {model} --train {data}"),
        _case(fx, "eval linear-probe: --validation-fraction 2", "eval linear-probe {model} --train {data} --test {data} --validation-fraction 2 " + out),
        _case(fx, "predict: no images", "predict {model} --labels a,b"),
        _case(fx, "predict: no labels", pred),
        _case(fx, "predict: image does not exist", "predict {model} {case}/none.png --labels a,b"),
        _case(fx, "predict: image is a directory", "predict {model} {case} --labels a,b"),
        _case(fx, "predict: image is a text file", "predict {model} {case}/notes.txt --labels a,b"),
        _case(fx, "predict: empty label list", pred + " --labels ''"),
        _case(fx, "predict: --labels-file missing", pred + " --labels-file {case}/none.txt"),
        _case(fx, "predict: --labels-file not UTF-8", pred + " --labels-file {case}/latin1.txt"),
        _case(fx, "predict: --top-k 0", pred + " --labels a,b --top-k 0"),
        _case(fx, "predict: --top-k larger than the labels", pred + " --labels a,b --top-k 50", "either"),
        _case(fx, "predict: unknown --templates", pred + " --labels a,b --templates bogus"),
        _case(fx, "embed: no --out", "embed {model} --data {data}"),
        _case(fx, "embed: --texts empty", "embed {model} --texts {case}/empty.txt --out {case}/e.npy"),
        _case(fx, "embed: --texts not UTF-8", "embed {model} --texts {case}/latin1.txt --out {case}/e.npy"),
        _case(fx, "embed: text modality of image-label data", "embed {model} --data {data} --modality text --out {case}/e.npy", "either"),
        _case(fx, "embed: --out an existing file", "embed {model} --data {data} --out {case}/mine.npy"),
        _case(fx, "embed: --out inside the model", "embed {model} --data {data} --out {model}/e.npy"),
        _case(fx, "embed: --out in a new folder", "embed {model} --data {data} --out {case}/new/deeper/e.npy", "either"),
        _case(fx, "info: model does not exist", "info {case}/none"),
        _case(fx, "info: an image as the model", "info {image}"),
        _case(fx, "data inspect: no source", "data inspect"),
        _case(fx, "data inspect: --limit -1", "data inspect {data} --limit -1"),
        _case(fx, "data inspect: --sheet an existing file", "data inspect {data} --sheet {case}/sheet.png"),
        _case(fx, "data inspect: --sheet a directory", "data inspect {data} --sheet {case}/filled"),
        _case(fx, "data inspect: --sheet in a new folder", "data inspect {data} --sheet {case}/new/sheet.png", "either"),
        _case(fx, "data prepare: --out a filled folder", "data prepare fashion-mnist --out {case}/filled --from {fashion}"),
        _case(fx, "data prepare: --from missing", "data prepare fashion-mnist --out {case}/p --from {case}/none"),
        _case(fx, "data prepare: --per-shard 0", "data prepare fashion-mnist --out {case}/p --from {fashion} --format shards --per-shard 0"),
        _case(fx, "data shard: --out a filled folder", "data shard {data} --out {case}/filled"),
        _case(fx, "data shard: --per-shard 0", shard + " --per-shard 0"),
        _case(fx, "data shard: --prefix escaping --out", shard + " --prefix ../escaped", "error", _inside("escaped*", "a shard was written outside --out")),
        _case(fx, "data shard: empty --prefix", shard + " --prefix ''", "either"),
        _case(fx, "data shard: --prefix with %", shard + " --prefix 100%", "either"),
        _case(fx, "data shard: source missing", "data shard {case}/none --out {case}/shards"),
        _case(fx, "tokenizer: file missing", "tokenizer train {case}/none.txt --out {case}/tok"),
        _case(fx, "tokenizer: file not UTF-8", "tokenizer train {case}/latin1.txt --out {case}/tok"),
        _case(fx, "tokenizer: empty file", "tokenizer train {case}/empty.txt --out {case}/tok", "either"),
        _case(fx, "tokenizer: a directory as input", "tokenizer train {case}/filled --out {case}/tok"),
        _case(fx, "tokenizer: --vocab-size 0", tok + " --vocab-size 0 --out {case}/tok"),
        _case(fx, "tokenizer: --vocab-size 10^12", tok + " --vocab-size 1000000000000 --out {case}/tok"),
        _case(fx, "tokenizer: --out an existing file", tok + " --out {case}/file.txt"),
        _case(fx, "convert: source missing", "convert {case}/none.pt --out {case}/c"),
        _case(fx, "convert: a text file", "convert {case}/notes.txt --out {case}/c"),
        _case(fx, "convert: a unicl model directory", "convert {model} --out {case}/c"),
        _case(fx, "convert: --out a filled folder", "convert {case}/notes.txt --out {case}/filled"),
        _case(fx, "export: a model without CLIP towers", "export {model} --format hf-clip --out {case}/x"),
        _case(fx, "export: --out inside the model", "export {model} --format open-clip --out {model}/x"),
        _case(fx, "export: model missing", "export {case}/none --format hf-clip --out {case}/x"),
        _case(fx, "wise-ft: --alpha 2", "wise-ft {model} {model} --out {case}/w --alpha 2"),
        _case(fx, "wise-ft: --alpha nan", "wise-ft {model} {model} --out {case}/w --alpha nan"),
        _case(fx, "wise-ft: --alphas without --eval-zeroshot", "wise-ft {model} {model} --out {case}/w --alphas 0,1"),
        _case(fx, "wise-ft: models that do not fit", "wise-ft {model} {other} --out {case}/w"),
        _case(fx, "wise-ft: --out a filled folder", "wise-ft {model} {model} --out {case}/filled"),
    ]  # fmt: skip
