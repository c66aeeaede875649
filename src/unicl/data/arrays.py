"""Image-label arrays: IDX files (the MNIST / Fashion-MNIST layout) and NPZ archives."""

from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path

import numpy as np

from unicl.data.classes import CLASSES_FILE, read_class_names
from unicl.data.readers import register_reader
from unicl.data.source import IndexedSource, Modality, RawSample
from unicl.data.spec import SourceSpec, idx_split, is_idx_images
from unicl.errors import UserInputError
from unicl.objective import CAPTION_CLASS_ID


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (optionally gzip-compressed): magic `0 0 type ndim`, big-endian u32 dims."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:  # cut short or not gzip after all
            raise UserInputError(
                f"{path} is not a readable gzip file ({error}); fetch it again"
            ) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserInputError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != expected:
        raise UserInputError(f"{path} holds {len(data)} bytes, its header promises {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as gzip-compressed IDX (reproducible bytes: no gzip timestamp)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0))


class ArraySource(IndexedSource):
    """Images uint8 [N,H,W] or [N,H,W,3] held in memory with integer labels [N] (image-label) or
    with captions [N] (image-text, `texts`).

    Class names: `spec.classes`, else a `classes` or `class_names` array in the NPZ, else
    `classes.txt` beside the arrays, else the label values as strings.
    """

    def __init__(
        self,
        spec: SourceSpec,
        images: np.ndarray,
        labels: np.ndarray | None,
        names: list[str] | None,
        texts: list[str] | None = None,
    ) -> None:
        super().__init__(spec)
        count = len(texts) if texts is not None else len(labels)
        if images.ndim not in (3, 4) or images.dtype != np.uint8 or len(images) != count:
            raise UserInputError(
                f"{spec.location}: expected uint8 images [N,H,W] or [N,H,W,3] and {count} labels or "
                f"captions, got {images.dtype} {images.shape}"
            )
        if count == 0:
            raise UserInputError(f"{spec.location} holds no images")
        if labels is not None and (labels.ndim != 1 or labels.dtype.kind not in "iu"):
            raise UserInputError(
                f"{spec.location}: expected integer labels [N], got {labels.dtype} {labels.shape}"
            )
        self.images, self.texts = images, texts
        if texts is not None:
            self.modality, self.class_names = Modality.IMAGE_TEXT, []
            self.labels = np.full(count, CAPTION_CLASS_ID, dtype=np.int64)
            return
        self.modality = Modality.IMAGE_LABEL
        self.labels = labels.astype(np.int64)
        if spec.classes is not None:
            names = read_class_names(spec.classes)
        if names is None:
            names = [str(value) for value in range(int(self.labels.max()) + 1)]
        if self.labels.min() < 0 or self.labels.max() >= len(names):
            raise UserInputError(
                f"{spec.location}: labels span {self.labels.min()}..{self.labels.max()} but there "
                f"are {len(names)} class names; fix the classes file"
            )
        self.class_names = names

    def __len__(self) -> int:
        return len(self.labels)

    def raw(self, index: int) -> RawSample:
        text = None if self.texts is None else self.texts[index]
        return RawSample(
            f"{self.spec.location}[{index}]", self.images[index], text, int(self.labels[index])
        )


def _names_beside(path: Path) -> list[str] | None:
    classes = path / CLASSES_FILE
    return read_class_names(classes) if classes.is_file() else None


class IdxSource(ArraySource):
    kind = "idx"

    def __init__(self, spec: SourceSpec) -> None:
        path = Path(spec.location)
        if path.is_dir():
            split = spec.split or "train"
            candidates = sorted(path.glob(f"{split}-images-idx3-ubyte*"))
            if not candidates:
                raise UserInputError(
                    f"{path} has no {split}-images-idx3-ubyte[.gz]; splits there: "
                    f"{sorted({idx_split(p.name) for p in path.iterdir()} - {None})}"
                )
            images_path = candidates[0]
        else:
            images_path = path
        if not images_path.is_file():
            raise UserInputError(f"IDX file {images_path} does not exist")
        labels_path = images_path.with_name(images_path.name.replace("images-idx3", "labels-idx1"))
        if not labels_path.is_file():
            raise UserInputError(f"{images_path} has no labels file {labels_path.name} beside it")
        super().__init__(
            spec, read_idx(images_path), read_idx(labels_path), _names_beside(images_path.parent)
        )


class NpzSource(ArraySource):
    kind = "npz"
    _KEY_PAIRS = (("images", "labels"), ("x", "y"))
    CLASS_NAME_KEYS = ("classes", "class_names")

    def __init__(self, spec: SourceSpec) -> None:
        path = Path(spec.location)
        if not path.is_file():
            raise UserInputError(f"NPZ file {path} does not exist")
        try:
            images, labels, names, texts = self._arrays(spec, path)
        except (zipfile.BadZipFile, OSError, EOFError, KeyError) as error:
            raise UserInputError(f"{path} is not a readable NPZ archive ({error})") from None
        except ValueError as error:  # an object array: reading it would unpickle, never done
            if isinstance(error, UserInputError):
                raise
            raise UserInputError(f"{path}: {error}; save plain numeric arrays") from None
        if texts is not None:
            super().__init__(spec, images, None, None, texts=texts)
        else:
            super().__init__(spec, images, labels, names or _names_beside(path.parent))

    def _arrays(self, spec: SourceSpec, path: Path) -> tuple:
        """(images, labels, class names, captions) read from the archive; None where absent."""
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            split = spec.split or "train"
            pairs = [(f"x_{split}", f"y_{split}"), *self._KEY_PAIRS]
            if {"images", "captions"} <= keys:  # image-text
                texts = [str(caption) for caption in archive["captions"]]
                return archive["images"], None, None, texts
            found = next(((x, y) for x, y in pairs if x in keys and y in keys), None)
            if found is None:
                raise UserInputError(
                    f"{path} holds arrays {sorted(keys)}; expected images/labels, images/captions, "
                    "x/y or x_SPLIT/y_SPLIT (choose the split with '#SPLIT')"
                )
            stored = next((k for k in self.CLASS_NAME_KEYS if k in keys), None)
            names = None if stored is None else [str(n) for n in archive[stored]]
            return archive[found[0]], archive[found[1]], names, None


def _is_idx(location: str) -> bool:
    path = Path(location)
    if is_idx_images(path.name):
        return True
    return path.is_dir() and any(is_idx_images(child.name) for child in path.iterdir())


register_reader("idx", IdxSource, _is_idx)
register_reader("npz", NpzSource, lambda location: location.lower().endswith(".npz"))
