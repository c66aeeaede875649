"""ImageFolder trees: `ROOT/CLASS_NAME/IMAGE`, one sub-folder per class (sorted by name)."""

from __future__ import annotations

from pathlib import Path

from unicl.data.classes import read_class_names
from unicl.data.readers import register_reader
from unicl.data.source import IndexedSource, Modality, RawSample
from unicl.data.spec import SourceSpec
from unicl.errors import UserInputError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"}
)


class FolderSource(IndexedSource):
    """Every image file under `ROOT/<class>/` (recursively); the class is the sub-folder.

    `spec.classes` (a file or known name) replaces the folder names as class names, matched to the
    sorted folders in order (useful when folder names are ids such as WordNet synsets).
    """

    kind = "folder"
    modality = Modality.IMAGE_LABEL

    def __init__(self, spec: SourceSpec) -> None:
        super().__init__(spec)
        root = Path(spec.location)
        if not root.is_dir():
            raise UserInputError(f"image folder {root} does not exist or is not a directory")
        folders = sorted(child for child in root.iterdir() if child.is_dir())
        if not folders:
            raise UserInputError(f"{root} has no class sub-folders; expected ROOT/CLASS/IMAGE")
        self.files: list[Path] = []
        self.file_classes: list[int] = []
        for class_id, folder in enumerate(folders):
            # A broken or looping link is kept, so that reading it counts it as bad, not lost.
            files = sorted(
                p
                for p in folder.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES and (p.is_file() or p.is_symlink())
            )
            self.files += files
            self.file_classes += [class_id] * len(files)
        self.class_names = [folder.name for folder in folders]
        if spec.classes is not None:
            names = read_class_names(spec.classes)
            if len(names) != len(folders):
                raise UserInputError(
                    f"{spec.classes} names {len(names)} classes but {root} has {len(folders)} "
                    "class folders"
                )
            self.class_names = names

    def __len__(self) -> int:
        return len(self.files)

    def raw(self, index: int) -> RawSample:
        path = self.files[index]
        return RawSample(str(path), path, None, self.file_classes[index])


register_reader("folder", FolderSource, lambda location: Path(location).is_dir(), fallback=True)
