"""Typed checking of config mappings: dataclasses, keyword arguments, types and bounds.

Every error is one `UserInputError` line that names the dotted key, the value and what is allowed,
so a typo or an absurd size in a config fails before any model or data is built. Bounds are part
of the type: `Annotated[int, Range(1, 16384)]` accepts integers from 1 to 16384 only.
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import difflib
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar, Union

from unicl.errors import UserInputError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds of a number, `low <= value <= high`; an open end excludes its bound."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        return f"{'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"


def require(condition: bool, key: str, value: Any, expected: str) -> None:
    """`UserInputError` naming config `key`, its `value` and what it must be, unless `condition`."""
    if not condition:
        raise UserInputError(f"config key '{key}' is {value!r}; it must be {expected}")


def describe_yaml_error(error: Exception) -> str:
    """A `yaml.YAMLError` on one line: what is wrong and where (`... at line L, column C`)."""
    problem = getattr(error, "problem", None) or getattr(error, "context", None) or "not YAML"
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `choices` to `name`, or an empty string."""
    hint = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" (did you mean '{hint[0]}'?)" if hint else ""


def build_dataclass(cls: type[T], values: Any, key: str) -> T:
    """Build dataclass `cls` from mapping `values`; `key` is its dotted place in the config.

    Unknown keys, missing required keys and values of the wrong type or out of their `Range`
    raise `UserInputError`. After construction the instance's `validate()` (if any) checks
    relations between values.
    """
    if not isinstance(values, dict):
        raise UserInputError(f"config key '{key}' must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    _refuse_unknown(values, list(fields), key)
    hints = typing.get_type_hints(cls, include_extras=True)
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


def check_arguments(
    func: Callable, values: Mapping[str, Any], key: str, supplied: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """`values` checked as keyword arguments of `func` (a function or a class), converted.

    Names `func` does not take are refused with a did-you-mean; required parameters must be
    given; each value must fit the parameter's annotation (types and `Range` bounds; parameters
    without one take anything). `supplied` maps the parameters that the caller passes itself to
    where they come from: they count as given and may not appear in `values`.
    """
    supplied = supplied or {}
    parameters = {
        name: parameter
        for name, parameter in inspect.signature(func).parameters.items()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }
    clashes = sorted(values.keys() & supplied.keys())
    if clashes:
        name = clashes[0]
        raise UserInputError(
            f"config key '{_join(key, name)}' cannot be set here: it comes from {supplied[name]}"
        )
    _refuse_unknown(values, [name for name in parameters if name not in supplied], key)
    for name, parameter in parameters.items():
        if parameter.default is parameter.empty and name not in values and name not in supplied:
            raise UserInputError(f"config key '{_join(key, name)}' is required")
    target = func.__init__ if inspect.isclass(func) else func
    hints = typing.get_type_hints(target, include_extras=True)
    return {name: _convert(hints.get(name, Any), v, _join(key, name)) for name, v in values.items()}


def _refuse_unknown(values: Mapping, allowed: list[str], key: str) -> None:
    unknown = sorted(str(name) for name in set(values) - set(allowed))
    if unknown:
        raise UserInputError(
            f"unknown config key '{_join(key, unknown[0])}'{did_you_mean(unknown[0], allowed)}; "
            f"allowed keys{f' under {key!r}' if key else ''}: {', '.join(allowed)}"
        )


def _join(key: str, name: Any) -> str:
    return f"{key}.{name}" if key else str(name)


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        return _convert_bounded(args[0], args[1:], value, key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options[:-1]:
            try:
                return _convert(option, value, key)
            except UserInputError:
                continue
        return _convert(options[-1], value, key)
    if value is None:
        raise UserInputError(f"config key '{key}' must not be empty (null)")
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise UserInputError(f"config key '{key}' is {value!r}; allowed values: {allowed}")
        return value
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, key)
    if origin in (list, tuple, collections.abc.Sequence):
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


def _convert_bounded(hint: Any, metadata: tuple, value: Any, key: str) -> Any:
    """A value of `hint` inside every `Range` in `metadata`; one message for type and range."""
    bounds = [m for m in metadata if isinstance(m, Range)]
    if not bounds:
        return _convert(hint, value, key)
    try:
        converted = _convert(hint, value, key)
        fits = all(converted in bound for bound in bounds)
    except UserInputError:
        fits = False
    if not fits:
        kind = "an integer" if hint is int else "a number"
        interval = " and ".join(str(bound) for bound in bounds)
        raise UserInputError(f"config key '{key}' is {value!r}; it must be {kind} in {interval}")
    return converted


def _convert_scalar(hint: Any, value: Any, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is not None:
            if not math.isfinite(number):
                raise UserInputError(f"config key '{key}' is {value!r}; it must be a finite number")
            return number
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is Any or (isinstance(hint, type) and isinstance(value, hint)):
        return value
    raise UserInputError(f"config key '{key}' must be {hint.__name__}, got {value!r}")
