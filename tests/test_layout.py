"""The package layout as a specification: imports flow one way, and every name has one meaning.

Layers, lowest first: `objective`; `data` and `models` (which never import each other);
`evaluate`; `train`; `cli`. A module may import its own package and lower layers only. The
top-level modules (`unicl.errors`, `unicl.files`, `unicl.templates`, ...) sit below everything and
import only each other; `unicl/__init__.py` and `unicl/__main__.py` are the facade.
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "unicl"
LAYERS = {"objective": 1, "data": 2, "models": 2, "evaluate": 3, "train": 4, "cli": 5}
FACADE = {"__init__", "__main__"}
SHARED_FILE_NAMES = {"__init__.py", "config.py"}  # each layer may keep its own
PROTOCOL_NAMES = {"register"}  # every command module of `unicl.cli` defines `register(subparsers)`


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _layer(module: str) -> tuple[str, int]:
    """(`package or top-level module name`, rank); top-level modules rank 0."""
    first = module.split(".")[1] if module.count(".") else module
    return first, LAYERS.get(first, 0)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every `unicl.*` module that `path` imports, anywhere in the file, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("unicl.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("unicl."):
                found.append((node.lineno, node.module))
            elif node.module == "unicl":
                found += [(node.lineno, f"unicl.{a.name}") for a in node.names]
    return found


def test_imports_flow_one_way():
    wrong = []
    for path in _modules():
        relative = path.relative_to(SRC)
        if relative.parent == Path(".") and relative.stem in FACADE:
            continue
        importer, importer_rank = _layer(".".join(("unicl", *relative.with_suffix("").parts)))
        for line, module in _imports(path):
            imported, imported_rank = _layer(module)
            if imported == importer and importer_rank:
                continue
            if imported_rank >= importer_rank and not (importer_rank == imported_rank == 0):
                wrong.append(f"{relative}:{line} imports {module}")
    assert wrong == []


def test_the_layering_check_catches_a_wrong_arrow(tmp_path):
    """The check itself can fail: `models` importing `data` is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from unicl.data import Batch\n")
    assert _imports(bad) == [(2, "unicl.data")]
    assert _layer("unicl.data")[1] >= _layer("unicl.models.model")[1]


def test_no_two_modules_outside_cli_share_a_file_name():
    names = defaultdict(list)
    for path in _modules():
        relative = path.relative_to(SRC)
        if relative.parts[0] != "cli" and path.name not in SHARED_FILE_NAMES:
            names[path.name].append(str(relative))
    assert {name: paths for name, paths in names.items() if len(paths) > 1} == {}


def test_no_public_function_or_class_is_defined_twice():
    definitions = defaultdict(list)
    for path in _modules():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            if not isinstance(node, kinds):
                continue
            if not node.name.startswith("_") and node.name not in PROTOCOL_NAMES:
                definitions[node.name].append(str(path.relative_to(SRC)))
    repeated = {name: paths for name, paths in definitions.items() if len(paths) > 1}
    assert repeated == {}


@pytest.mark.parametrize("first", ["unicl", *(f"unicl.{name}" for name in LAYERS)])
def test_no_name_is_exported_by_two_packages_with_different_values(first):
    exporter = importlib.import_module(first)
    for other in ["unicl", *(f"unicl.{name}" for name in LAYERS)]:
        module = importlib.import_module(other)
        shared = set(getattr(exporter, "__all__", ())) & set(getattr(module, "__all__", ()))
        for name in shared:
            assert getattr(exporter, name) is getattr(module, name), f"{first}.{name} != {other}"
