"""`--set key=value` overrides of a raw training config mapping.

The typed checking of the mapping itself (`build_dataclass`) is in `unicl.config_checks`, which
the model config shares.
"""

from __future__ import annotations

from typing import Any

import yaml

from unicl.errors import UserInputError


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
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise UserInputError(
            f"--set {dotted}: the value {text!r} is {problem}; quote strings that hold YAML "
            "symbols, e.g. --set 'key=\"[a\"'"
        ) from None
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
