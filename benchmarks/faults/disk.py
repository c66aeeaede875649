"""Disk problems: outputs on a read-only file system (`/proc`), under a path whose parent is a
file, and on a "full disk" (the process's file-size limit, `prlimit --fsize`: a write past it
fails with EFBIG as a full disk fails with ENOSPC). Each must end in one line naming the place,
leave no partial or temporary file behind, and a training run must resume afterwards.
"""

from __future__ import annotations

from pathlib import Path

from .fixtures import FASHION, Fixtures
from .harness import Case, Invocation, Runner

CATEGORY = "disk problems"
READ_ONLY = "/proc/unicl-faults"


def _leftovers(folder: Path) -> str | None:
    partial = [str(p.relative_to(folder)) for p in folder.rglob(".*.tmp")]
    return f"temporary files left: {', '.join(partial[:3])}" if partial else None


def _argv(command: str, out: str, fx: Fixtures, folder: Path) -> list[str]:
    model = str(folder / "model")
    return {
        "train": ["train", str(fx.train_config), "--set", f"run.output_dir={out}"],
        "eval": ["eval", "zeroshot", model, "--data", str(fx.folder), "--out", out],
        "embed": ["embed", model, "--data", f"{FASHION}#t10k?take=0:2000", "--out", out],
        "tokenizer": ["tokenizer", "train", str(folder / "texts.txt"), "--vocab-size", "400", "--out", out],
        "shard": ["data", "shard", f"{FASHION}#t10k?take=0:500", "--out", out, "--per-shard", "200"],
        "sheet": ["data", "inspect", str(fx.folder), "--sheet", out],
        "prepare": ["data", "prepare", "fashion-mnist", "--from", str(FASHION), "--out", out, "--format", "shards"],
        "wise-ft": ["wise-ft", model, model, "--out", out],
    }[command]  # fmt: skip


def _case(fx: Fixtures, command: str, where: str, fsize: int | None = None) -> Case:
    """`command` writing to `where` (`{case}` is the case folder), under a file-size limit."""

    def setup(folder: Path) -> Invocation:
        fx.copy_model(folder)
        (folder / "texts.txt").write_text("a photo of a cat\na photo of a dog\n" * 200)
        (folder / "file.txt").write_text("my notes\n")
        out = where.format(case=folder)
        limits = {} if fsize is None else {"fsize": fsize}
        return Invocation(
            argv=_argv(command, out, fx, folder), limits=limits, check=lambda: _leftovers(folder)
        )

    place = "" if fsize is None else f" on a full disk ({fsize // 1000} kB files)"
    return Case(CATEGORY, f"{command}: {where.replace('{case}', 'CASE')}{place}", setup)


def _full_disk_then_resume(fx: Fixtures) -> Case:
    """Training on a disk too small for its checkpoint fails with one line; with space again,
    `--resume latest` finishes the run."""

    def setup(folder: Path) -> Invocation:
        run = folder / "run"
        argv = ["train", str(fx.train_config), "--set", f"run.output_dir={run}",
                "--set", "checkpoint.every_steps=1"]  # fmt: skip

        def drive(runner: Runner):
            full = Runner(folder, {"fsize": 3_000_000}).run(argv, 240)
            if not full.clear_error:
                return [full], f"exit {full.status} on a full disk without a one-line error"
            resumed = runner.run([*argv, "--resume", "latest"], 240)
            if resumed.status != 0:
                return [full, resumed], f"the resumed run ended with exit {resumed.status}"
            return [full, resumed], _leftovers(folder)

        return Invocation(drive=drive)

    return Case(CATEGORY, "train on a full disk, then resume with space", setup, "ok")


def cases(fx: Fixtures) -> list[Case]:
    return [
        _case(fx, "train", READ_ONLY + "/run"),
        _case(fx, "train", "{case}/file.txt/run"),
        _case(fx, "train", "{case}/run", fsize=3_000_000),
        _full_disk_then_resume(fx),
        _case(fx, "eval", READ_ONLY + "/result.json"),
        _case(fx, "eval", "{case}/file.txt/result.json"),
        _case(fx, "eval", "{case}/result.json", fsize=2_000),
        _case(fx, "embed", READ_ONLY + "/e.npy"),
        _case(fx, "embed", "{case}/file.txt/e.npy"),
        _case(fx, "embed", "{case}/e.npy", fsize=100_000),
        _case(fx, "tokenizer", READ_ONLY + "/tok"),
        _case(fx, "tokenizer", "{case}/tok", fsize=2_000),
        _case(fx, "shard", READ_ONLY + "/shards"),
        _case(fx, "shard", "{case}/shards", fsize=50_000),
        _case(fx, "sheet", READ_ONLY + "/sheet.png"),
        _case(fx, "sheet", "{case}/sheet.png", fsize=2_000),
        _case(fx, "prepare", READ_ONLY + "/fm"),
        _case(fx, "prepare", "{case}/fm", fsize=100_000),
        _case(fx, "wise-ft", READ_ONLY + "/w"),
        _case(fx, "wise-ft", "{case}/w", fsize=1_000_000),
    ]
