"""The `unicl` command: command modules are registered in one list, and run with one-line errors."""

from __future__ import annotations

import ast
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
    assert defining == set(cli_main.COMMAND_MODULES)


@pytest.fixture
def toy_command(monkeypatch):
    """A command module `unicl.cli.hello` added the documented way: one module, one list entry."""

    def run(args):
        if not args.name:
            raise UserInputError("give a name with --name")
        print(f"hello {args.name}")
        return 0

    def register(subparsers):
        parser = subparsers.add_parser("hello", help="say hello")
        parser.add_argument("--name", default="")
        parser.set_defaults(func=run)

    module = types.ModuleType("unicl.cli.hello")
    module.register = register
    monkeypatch.setitem(sys.modules, "unicl.cli.hello", module)
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, "hello"))


def test_a_new_command_is_one_module_and_one_name(toy_command, capsys):
    assert cli_main.main(["hello", "--name", "unicl"]) == 0
    assert capsys.readouterr().out == "hello unicl\n"
    assert cli_main.main(["hello"]) == 2
    assert capsys.readouterr().err == "unicl: error: give a name with --name\n"
