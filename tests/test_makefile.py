"""The Makefile's install steps, read with ``make -n`` (nothing runs): the demo never installs PyTorch,
the test and benchmark targets do."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _commands(target: str) -> str:
    """What ``make TARGET`` would run on a fresh clone (``-B``: every stamp out of date)."""
    return subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_demo_installs_the_package_and_its_extra_without_torch():
    commands = _commands("demo")
    assert '-e ".[examples]"' in commands and "examples/gan_digits.py" in commands
    assert "torch" not in commands.lower()


@pytest.mark.parametrize("target", ["test", "bench"])
def test_tests_and_benchmarks_install_torch_and_every_extra(target):
    commands = _commands(target)
    assert "torch==" in commands and "test," in commands


def test_lint_and_typecheck_run_ruff_and_mypy():
    assert "ruff check" in _commands("lint") and "mypy" in _commands("typecheck")
