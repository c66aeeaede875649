"""`import unicl` is cheap and its public names resolve on first use (PEP 562)."""

import subprocess
import sys

import pytest

import unicl


def test_every_public_name_resolves_to_its_home_module():
    assert set(unicl.__all__) == set(unicl._HOMES)
    for name in unicl.__all__:
        assert getattr(unicl, name).__module__.startswith(unicl._HOMES[name])
        assert name in dir(unicl)


def test_importing_the_package_imports_no_torch():
    code = "import sys, unicl, unicl.errors, unicl.cli.main; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        unicl.no_such_name  # noqa: B018
