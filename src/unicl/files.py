"""Writing files so that a crash never leaves a half-written file in place of a good one, and
reading the user's text files with one-line errors.

Every output of the project (weights, checkpoints, configs, results, figures, embeddings) is written
to a temporary file in the target's directory, flushed to disk, then renamed over the target: the
target is either the old complete file or the new complete file, never a mixture.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from unicl.errors import UserInputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it replaces ``path``.

    The temporary file exists (empty) when yielded; on an exception it is removed and ``path`` is
    left as it was. ``suffix`` lets writers that infer the format from the name (``np.save``,
    ``savefig``) see the right extension.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as error:
        raise UserInputError(cannot_write(path, error)) from None
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with temporary.open("rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, 0o644)  # after writing: some writers replace the file with a 0600 one
        os.replace(temporary, path)
    except OSError as error:
        raise UserInputError(cannot_write(path, error)) from None
    finally:
        temporary.unlink(missing_ok=True)


def cannot_write(path: str | os.PathLike, error: OSError) -> str:
    """One line for a failed write: a read-only folder, a full disk, a missing permission."""
    return f"cannot write {path}: {error.strerror or error}; free space or choose a writable place"


def read_utf8(path: str | os.PathLike) -> str:
    """The text of the UTF-8 file `path`; a file in another encoding is a `UserInputError` that
    names it and the first byte that does not decode."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserInputError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8"
        ) from None


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def refuse_existing(*paths: str | os.PathLike, overwrite: bool = False) -> None:
    """Raise `UserInputError` before any work if an output path is taken.

    A directory is never an acceptable output file; an existing file is replaced only when
    ``overwrite`` is true (the command line's ``--overwrite``).
    """
    for path in map(Path, paths):
        if path.is_dir():
            raise UserInputError(f"{path} is a directory; give the output a file name")
        if path.exists() and not overwrite:
            raise UserInputError(
                f"{path} already exists; pass --overwrite to replace it or choose another --out"
            )


def refuse_filled_folder(path: str | os.PathLike, option: str = "--out") -> None:
    """Raise `UserInputError` before any work unless ``path`` is new or an empty folder (an
    output folder that a command fills, given as ``option``)."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserInputError(
            f"{path} already exists and is not an empty folder; choose a new {option} folder"
        )
