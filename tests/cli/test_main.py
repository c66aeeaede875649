"""The `unicl` command: command modules are registered in one table, only the one run is imported,
and errors are one line."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

from unicl.cli import main as cli_main
from unicl.errors import UserInputError

CLI = Path(cli_main.__file__).parent


def test_every_command_module_is_registered():
    defining = {
        path.stem
        for path in CLI.glob("*.py")
        if any(
            isinstance(node, ast.FunctionDef) and node.name == "register"
            for node in ast.parse(path.read_text(encoding="utf-8")).body
        )
    }
    assert defining == {module for module, _ in cli_main.COMMANDS.values()}


@pytest.fixture
def toy_command(monkeypatch):
    """A command module `unicl.cli.hello` added the documented way: one module, one list entry."""

    def run(args):
        if not args.name:
            raise UserInputError("give a name with --name")
        print(f"hello {args.name}")
        return 0

    def register(subparsers):
        parser = subparsers.add_parser("hello")
        parser.add_argument("--name", default="")
        parser.set_defaults(func=run)

    module = types.ModuleType("unicl.cli.hello")
    module.register = register
    monkeypatch.setitem(sys.modules, "unicl.cli.hello", module)
    monkeypatch.setitem(cli_main.COMMANDS, "hello", ("hello", "say hello"))


def test_a_new_command_is_one_module_and_one_name(toy_command, capsys):
    assert cli_main.main(["hello", "--name", "unicl"]) == 0
    assert capsys.readouterr().out == "hello unicl\n"
    assert cli_main.main(["hello"]) == 2
    assert capsys.readouterr().err == "unicl: error: give a name with --name\n"


def loaded_modules(*argv: str) -> set[str]:
    """The modules a fresh interpreter has imported after `unicl ARGV` (which may exit)."""
    code = (
        "import sys\nfrom unicl.cli.main import main\n"
        f"try:\n    main({list(argv)!r})\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split("\n")[-2].split())


def test_help_and_a_misspelt_command_import_no_command_module_and_no_torch():
    for argv in (["--help"], ["trian", "x.yaml"]):
        modules = loaded_modules(*argv)
        assert "torch" not in modules, argv
        assert not {name for name in modules if name.startswith("unicl.cli.")} - {
            "unicl.cli",
            "unicl.cli.main",
        }


def test_a_command_imports_its_own_module_only():
    modules = loaded_modules("info", "--help")
    assert "unicl.cli.info" in modules
    assert not {"unicl.cli.train", "unicl.train", "matplotlib", "unicl.cli.data"} & modules


def test_the_top_level_help_lists_every_command_with_its_summary(capsys):
    with pytest.raises(SystemExit):
        cli_main.main(["--help"])
    listing = capsys.readouterr().out
    for name, (_, summary) in cli_main.COMMANDS.items():
        assert f"{name}" in listing and summary.split()[0] in listing


def test_a_commands_own_help_starts_with_its_summary(capsys):
    with pytest.raises(SystemExit):
        cli_main.main(["info", "--help"])
    assert cli_main.COMMANDS["info"][1] in capsys.readouterr().out
