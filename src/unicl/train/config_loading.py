"""Typed loading of nested dataclasses from YAML mappings, and `--set key=value` overrides.

Every error names the dotted key that is wrong and says what is allowed, so a typo in a config
fails before any model or data is built.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal, TypeVar, Union

import yaml

from unicl.errors import UserInputError

T = TypeVar("T")


def build_dataclass(cls: type[T], values: Any, key: str) -> T:
    """Build dataclass `cls` from mapping `values`; `key` is its dotted place in the config.

    Unknown keys, missing required keys and values of the wrong type raise `UserInputError`.
    After construction the instance's `validate()` (if any) checks ranges and relations.
    """
    if not isinstance(values, dict):
        raise UserInputError(f"config key '{key}' must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        name = unknown[0]
        raise UserInputError(
            f"unknown config key '{_join(key, name)}'{did_you_mean(name, fields)}; "
            f"allowed keys under '{key}': {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, field in fields.items():
        if name in values:
            kwargs[name] = _convert(hints[name], values[name], _join(key, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise UserInputError(f"config key '{_join(key, name)}' is required")
    instance = cls(**kwargs)
    validate = getattr(instance, "validate", None)
    if validate is not None:
        validate()
    return instance


def did_you_mean(name: Any, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the choice closest to `name`, or '' when none is close."""
    hint = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" (did you mean '{hint[0]}'?)" if hint else ""


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one `dotted.key=value` to the raw config mapping in place.

    The value is parsed as YAML (`1e-3`, `true`, `[0.9, 0.98]`, `null`); integer parts of the key
    index lists (`data.sources.0.weight=2`).
    """
    if "=" not in assignment:
        raise UserInputError(f"--set expects key=value, got {assignment!r}")
    dotted, text = assignment.split("=", 1)
    parts = dotted.strip().split(".")
    if not all(parts):
        raise UserInputError(f"--set key {dotted!r} is not a dotted key such as optim.lr")
    value = yaml.safe_load(text)
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            node = node[_list_index(node, part, where)]
        else:
            node = node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            raise UserInputError(f"--set {dotted}: '{where}' is a value, not a section")
    if isinstance(node, list):
        node[_list_index(node, parts[-1], dotted)] = value
    else:
        node[parts[-1]] = value


def _list_index(node: list, part: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise UserInputError(f"--set {where}: index must be 0..{len(node) - 1}, got {part!r}")
    return int(part)


def _join(key: str, name: Any) -> str:
    return f"{key}.{name}" if key else str(name)


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, key)
    if value is None:
        raise UserInputError(f"config key '{key}' must not be empty (null)")
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise UserInputError(f"config key '{key}' is {value!r}; allowed values: {allowed}")
        return value
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserInputError(f"config key '{key}' must be a list, got {value!r}")
        if origin is tuple and args[-1] is not Ellipsis and len(value) != len(args):
            raise UserInputError(f"config key '{key}' must have {len(args)} items, got {value!r}")
        item = args[0]
        items = [_convert(item, v, f"{key}.{i}") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise UserInputError(f"config key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    return _convert_scalar(hint, value, key)


def _convert_scalar(hint: Any, value: Any, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is Any:
        return value
    raise UserInputError(f"config key '{key}' must be {hint.__name__}, got {value!r}")
