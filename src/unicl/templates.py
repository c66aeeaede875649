"""CLIP-style prompt templates that turn a class name into a caption, written for this project.

A template is a string with exactly one `{}` where the class name goes: `"a photo of a {}."`.
`TEMPLATE_SETS["imagenet"]` (80 varied photo/art/quality prompts, for zero-shot classifiers that
average over templates) and `TEMPLATE_SETS["default"]` (a short set, for training prompts and quick
evaluation). `get_templates(name_or_file)` returns one of them or reads a file, one per line.
"""

from __future__ import annotations

import os
from pathlib import Path

from unicl.errors import UserInputError
from unicl.files import read_utf8

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a picture of the {}.",
    "an image showing a {}.",
    "a close-up photo of a {}.",
    "a {} in a photo.",
    "a low resolution photo of the {}.",
)

IMAGENET_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a photo of one {}.",
    "a photo of many {}.",
    "a photo of my {}.",
    "a photo of someone's {}.",
    "a picture of a {}.",
    "a picture of the {}.",
    "an image of a {}.",
    "an image of the {}.",
    "an image showing a {}.",
    "a snapshot of a {}.",
    "a close-up photo of a {}.",
    "a close-up photo of the {}.",
    "a zoomed-in photo of a {}.",
    "a far-away photo of a {}.",
    "a cropped photo of a {}.",
    "a cropped photo of the {}.",
    "a centered photo of a {}.",
    "a photo of a small {}.",
    "a photo of a large {}.",
    "a photo of a big {}.",
    "a photo of a tiny {}.",
    "a photo of the small {}.",
    "a photo of the large {}.",
    "a bright photo of a {}.",
    "a bright photo of the {}.",
    "a dark photo of a {}.",
    "a dark photo of the {}.",
    "a blurry photo of a {}.",
    "a blurry photo of the {}.",
    "a grainy photo of a {}.",
    "a noisy photo of the {}.",
    "a low resolution photo of a {}.",
    "a low resolution photo of the {}.",
    "a high resolution photo of a {}.",
    "a pixelated photo of a {}.",
    "a jpeg-compressed photo of a {}.",
    "a bad photo of a {}.",
    "a good photo of a {}.",
    "a clean photo of a {}.",
    "a dirty photo of a {}.",
    "a black and white photo of a {}.",
    "a grayscale photo of the {}.",
    "a faded photo of a {}.",
    "an overexposed photo of a {}.",
    "an old photo of a {}.",
    "a vintage photo of the {}.",
    "a studio photo of a {}.",
    "a product photo of a {}.",
    "a catalogue photo of a {}.",
    "a photo of a {} on a plain background.",
    "a photo of a {} seen from the side.",
    "a photo of a {} seen from above.",
    "an outdoor photo of a {}.",
    "an indoor photo of a {}.",
    "a photo of a {} in the wild.",
    "a drawing of a {}.",
    "a sketch of a {}.",
    "a pencil sketch of the {}.",
    "a painting of a {}.",
    "an oil painting of the {}.",
    "a watercolor of a {}.",
    "a cartoon of a {}.",
    "a cartoon {}.",
    "a doodle of a {}.",
    "a rendering of a {}.",
    "a 3d render of the {}.",
    "a sculpture of a {}.",
    "a plastic {}.",
    "a toy {}.",
    "a plush {}.",
    "an origami {}.",
    "a tattoo of a {}.",
    "an embroidered {}.",
    "graffiti of a {}.",
    "art of the {}.",
    "a video game {}.",
    "itap of a {}.",
    "a {}.",
)

TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    "default": DEFAULT_TEMPLATES,
    "imagenet": IMAGENET_TEMPLATES,
}


def validate_template(template: str, where: str) -> str:
    """Return `template` if it has exactly one `{}` and no other braces, else raise."""
    if template.count("{}") != 1 or template.count("{") != 1 or template.count("}") != 1:
        raise UserInputError(
            f"{where}: template {template!r} must contain exactly one '{{}}' for the class name"
        )
    return template


def fill_template(template: str, class_name: str) -> str:
    """The prompt for `class_name`: `template` with its `{}` replaced (braces in the name are kept
    as they are, unlike `str.format`)."""
    return template.replace("{}", class_name)


def get_templates(name_or_file: str | os.PathLike) -> tuple[str, ...]:
    """A named set (`default`, `imagenet`) or a UTF-8 file with one template per line.

    Blank lines and lines starting with `#` are skipped.
    """
    if str(name_or_file) in TEMPLATE_SETS:
        return TEMPLATE_SETS[str(name_or_file)]
    path = Path(name_or_file)
    if not path.is_file():
        raise UserInputError(
            f"templates {str(name_or_file)!r} are neither a named set ({', '.join(TEMPLATE_SETS)}) "
            "nor a file with one template per line"
        )
    lines = [line.strip() for line in read_utf8(path).splitlines()]
    templates = tuple(
        validate_template(line, f"{path}:{number}")
        for number, line in enumerate(lines, start=1)
        if line and not line.startswith("#")
    )
    if not templates:
        raise UserInputError(f"{path} holds no templates; write one per line, each with '{{}}'")
    return templates
