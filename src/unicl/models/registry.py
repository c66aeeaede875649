"""The registries of encoder families: each family file registers its tower class and variants.

```python
register_image_family("vit", VisionTransformer, {"vit-b-16": dict(patch_size=16, ...)})
```

A config section `{arch: <family or variant>, **keys}` names a family (its constructor's
defaults) or one of its variants (the variant's keyword arguments, which the section's keys
override). The factory finds families here and nowhere else, so a new family is one file that
calls `register_image_family` / `register_text_family` at its bottom, imported by
`unicl.models` so that registration happens.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from unicl.config_checks import check_arguments, did_you_mean
from unicl.errors import UserInputError
from unicl.models.tower import ImageTower, TextTower, Tower


class TowerRegistry:
    """The families of one config section (`vision` or `text`).

    `supplied`: constructor arguments that every family takes and the factory passes itself
    (name -> where the value comes from), so a section may not set them. `stand_ins`: section
    keys that replace a constructor argument (key -> argument) and that the factory resolves,
    such as `text.package` for `path`.
    """

    def __init__(
        self,
        section: str,
        base: type[Tower],
        supplied: Mapping[str, str],
        stand_ins: Mapping[str, str] | None = None,
    ):
        self.section = section
        self.base = base
        self.supplied = dict(supplied)
        self.stand_ins = dict(stand_ins or {})
        self.families: dict[str, tuple[type[Tower], dict[str, dict[str, Any]]]] = {}

    def register(
        self, name: str, cls: type[Tower], variants: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        """Make `name` and every variant name a valid `arch` of this section."""
        if not (inspect.isclass(cls) and issubclass(cls, self.base)):
            raise TypeError(
                f"{self.section} family {name!r}: {cls!r} is not a subclass of {self.base.__name__}"
            )
        missing = sorted(self.supplied.keys() - inspect.signature(cls).parameters.keys())
        if missing:
            raise TypeError(f"{self.section} family {name!r}: {cls.__name__} must take {missing}")
        variants = {variant: dict(kwargs) for variant, kwargs in (variants or {}).items()}
        taken = sorted(({name} | variants.keys()) & set(self.architectures()))
        if taken:
            raise ValueError(f"{self.section} arch names {taken} are already registered")
        self.families[name] = (cls, variants)

    def architectures(self) -> list[str]:
        """Every valid `arch`: the family names and their variants."""
        names = list(self.families)
        for _, variants in self.families.values():
            names.extend(variants)
        return sorted(names)

    def arguments(self, section: Mapping[str, Any]) -> tuple[type[Tower], dict[str, Any]]:
        """The family class of `section` and its checked, converted constructor arguments
        (variant defaults, then the section's keys; stand-ins kept under their own names).

        Raises a one-line `UserInputError` naming the key for an unknown arch, an unknown or
        missing key, or a value of the wrong type or out of bounds.
        """
        cls, defaults = self._family(section.get("arch"))
        options = {**defaults, **{k: v for k, v in section.items() if k != "arch"}}
        supplied, kept = dict(self.supplied), {}
        parameters = inspect.signature(cls).parameters
        for key, argument in self.stand_ins.items():
            if key in options and argument in parameters:
                kept[key] = options.pop(key)
                if not isinstance(kept[key], str):
                    raise UserInputError(
                        f"config key '{self.section}.{key}' must be a string, got {kept[key]!r}"
                    )
                supplied[argument] = f"'{self.section}.{key}' (give one of the two)"
        return cls, {**check_arguments(cls, options, self.section, supplied), **kept}

    def _family(self, arch: object) -> tuple[type[Tower], dict[str, Any]]:
        """The class and the variant's keyword arguments of `arch`."""
        if arch is None:
            raise UserInputError(f"config key '{self.section}.arch' is required")
        if not isinstance(arch, str):
            raise UserInputError(f"config key '{self.section}.arch' must be a string, got {arch!r}")
        if arch in self.families:
            return self.families[arch][0], {}
        for cls, variants in self.families.values():
            if arch in variants:
                return cls, variants[arch]
        raise UserInputError(
            f"unknown {self.section} arch {arch!r}{did_you_mean(arch, self.architectures())}; "
            f"choose one of {self.architectures()}"
        )


IMAGE_TOWERS = TowerRegistry(
    "vision",
    ImageTower,
    {"image_size": "the top-level 'image_size'"},
    stand_ins={"package": "weights"},
)
TEXT_TOWERS = TowerRegistry(
    "text",
    TextTower,
    {
        "vocab_size": "the tokenizer",
        "pad_id": "the tokenizer",
        "context_length": "the top-level 'context_length'",
    },
    stand_ins={"package": "path"},
)


def register_image_family(
    name: str, cls: type[ImageTower], variants: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Register an `ImageTower` subclass as `vision.arch` `name` (and its named variants)."""
    IMAGE_TOWERS.register(name, cls, variants)


def register_text_family(
    name: str, cls: type[TextTower], variants: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Register a `TextTower` subclass as `text.arch` `name` (and its named variants)."""
    TEXT_TOWERS.register(name, cls, variants)
