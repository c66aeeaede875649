"""Faults driven through the real `unicl` command: a subprocess, real files, its exit status."""

from __future__ import annotations

import hashlib
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from unicl.models import create_model


@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: str

    @property
    def error_line(self) -> str:
        """The one-line error, checked to be the whole of stderr."""
        assert self.stderr.startswith("unicl: error: "), self.stderr
        assert self.stderr.count("\n") == 1, self.stderr
        return self.stderr


def run_unicl(*argv: object, cwd: Path | None = None, max_file_bytes: int | None = None) -> Outcome:
    """`python -m unicl ARGV...` in a fresh process, as a user runs it. `max_file_bytes` limits
    the size of every file it writes (RLIMIT_FSIZE): a bigger write fails as on a full disk."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    done = subprocess.run(
        [sys.executable, "-m", "unicl", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        preexec_fn=None if max_file_bytes is None else limit,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def snapshot(*roots: Path) -> dict[str, str]:
    """Path -> SHA-256 of every file under `roots` (or of `roots` themselves when files)."""
    files = [p for root in roots for p in ([root] if root.is_file() else root.rglob("*"))]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A saved (untrained) unicl-tiny."""
    directory = tmp_path_factory.mktemp("model")
    create_model("unicl-tiny").save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """An ImageFolder of 2 classes x 3 PNG images."""
    root = tmp_path_factory.mktemp("labelled")
    for name, value in (("black", 10), ("white", 240)):
        (root / name).mkdir()
        for i in range(3):
            Image.new("RGB", (20, 20), (value, value, value - i)).save(root / name / f"{i}.png")
    return root
