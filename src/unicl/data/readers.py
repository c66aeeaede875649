"""Source kinds: each reader registers itself here; `parse_source` and `open_source` look it up.

A reader is a callable `SourceSpec -> Source` (usually the `Source` subclass itself) registered
under a kind with `register_reader(kind, reader, detect)`. `detect(location) -> bool` says
whether an unprefixed location string is of this kind; kinds are tried in registration order,
`fallback` ones (the folder reader, which takes any directory) after all others. A `KIND:` prefix
skips detection. Adding a data format is one new module that calls `register_reader` and one
import of it in `unicl/data/__init__.py`.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from unicl.data.source import Source
from unicl.data.spec import SourceSpec
from unicl.data.subset import select_samples
from unicl.errors import UserInputError


@dataclass(frozen=True)
class _Reader:
    open: Callable[[SourceSpec], Source]
    detect: Callable[[str], bool]
    fallback: bool


_READERS: dict[str, _Reader] = {}


def register_reader(
    kind: str,
    reader: Callable[[SourceSpec], Source],
    detect: Callable[[str], bool],
    *,
    fallback: bool = False,
) -> None:
    """Make `kind` openable by `reader` and detectable by `detect` (see the module docstring)."""
    if kind in _READERS:
        raise ValueError(f"source kind {kind!r} is registered already")
    _READERS[kind] = _Reader(reader, detect, fallback)


def unregister_reader(kind: str) -> None:
    """Remove a registered kind (for tests and plug-ins that registered one)."""
    del _READERS[kind]


def source_kinds() -> tuple[str, ...]:
    """Every registered kind, in detection order."""
    return tuple(sorted(_READERS, key=lambda kind: _READERS[kind].fallback))


def parse_source(source: str | Mapping | SourceSpec) -> SourceSpec:
    """A `SourceSpec` from a source string, a config mapping (SourceSpec fields) or a spec.

    A string is `[KIND:]LOCATION[?KEY=VALUE&...][#SPLIT]`; `?KEY=VALUE` sets any other field
    where only a string fits (the command line), e.g. `photos.csv?text_column=desc`.
    """
    if isinstance(source, SourceSpec):
        return _checked(source)
    if isinstance(source, Mapping):
        fields = {field.name for field in dataclasses.fields(SourceSpec)}
        unknown = sorted(set(source) - fields)
        if unknown or "location" not in source:
            raise UserInputError(
                f"source {dict(source)!r}: needs 'location' and only the keys {sorted(fields)}"
                + (f"; unknown: {unknown}" if unknown else "")
            )
        parsed = parse_source(str(source["location"]))
        extra = {k: v for k, v in source.items() if k != "location"}
        return _checked(dataclasses.replace(parsed, **extra))
    text = str(source).strip()
    if not text:
        raise UserInputError("empty source string; give a path, manifest or shard pattern")
    kind, split = None, None
    prefix, colon, rest = text.partition(":")
    if colon and prefix in _READERS:
        kind, text = prefix, rest
    if "#" in text:
        text, split = text.rsplit("#", 1)
        split, after, late_query = split.partition("?")  # `PATH#SPLIT?OPTIONS` reads the same
        if after:
            text = f"{text}{'&' if '?' in text else '?'}{late_query}"
    text, question, query = text.partition("?")
    spec = SourceSpec(location=text, kind=kind, split=split)
    return _checked(_with_options(spec, query) if question else spec)


def _checked(spec: SourceSpec) -> SourceSpec:
    if spec.kind is not None and spec.kind not in _READERS:
        raise UserInputError(
            f"source kind {spec.kind!r} is unknown; use one of {', '.join(source_kinds())}"
        )
    return spec


def _with_options(spec: SourceSpec, query: str) -> SourceSpec:
    """`spec` with the `KEY=VALUE&...` options of a source string applied."""
    settable = {f.name for f in dataclasses.fields(SourceSpec)} - {"location", "kind", "split"}
    options: dict[str, object] = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if key not in settable:
            raise UserInputError(
                f"source option {key!r} in {spec.location!r} is unknown; use {sorted(settable)}"
            )
        options[key] = value
    if "weight" in options:
        try:
            options["weight"] = float(options["weight"])
        except ValueError:
            raise UserInputError(f"source weight {options['weight']!r} is not a number") from None
    return dataclasses.replace(spec, **options)


def detect_kind(spec: SourceSpec) -> str:
    """The spec's kind: forced, or the first registered kind whose `detect` accepts it."""
    if spec.kind is not None:
        return spec.kind
    for kind in source_kinds():
        if _READERS[kind].detect(spec.location):
            return kind
    raise UserInputError(
        f"source {spec.location!r} does not exist or its kind cannot be told from its name; check "
        f"the path or prefix it with one of {', '.join(k + ':' for k in source_kinds())}"
    )


def open_source(source: str | Mapping | SourceSpec) -> Source:
    """Open a source of any registered kind.

    Raises `UserInputError` naming the source when it is missing, empty or malformed.
    """
    spec = parse_source(source)
    return select_samples(_READERS[detect_kind(spec)].open(spec))
