"""OpenBLAS's idle spin (minigraph.blas_threads): set before numpy loads, left alone otherwise."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import minigraph as mg
from minigraph import blas_threads

openblas = pytest.mark.skipif(mg.get_blas_thread_timeout() is None, reason="numpy's BLAS here is not OpenBLAS")
VARIABLE = blas_threads.ENVIRONMENT_VARIABLE


def test_the_variable_is_set_only_when_unset_and_numpy_not_loaded():
    environ: dict = {}
    assert blas_threads.set_default_before_numpy(environ, modules={})
    assert environ == {VARIABLE: "16"}
    user = {VARIABLE: "20"}
    assert not blas_threads.set_default_before_numpy(user, modules={})
    assert user == {VARIABLE: "20"}
    late: dict = {}
    assert not blas_threads.set_default_before_numpy(late, modules={"numpy": object()})
    assert late == {}


@pytest.mark.parametrize("raw, exponent", [(0, 28), (-3, 28), (2, 4), (16, 16), (28, 28), (40, 30)])
def test_the_effective_exponent_is_clamped_as_openblas_clamps_it(raw, exponent):
    assert blas_threads.effective_exponent(raw) == exponent


def run_fresh(code: str, value: str | None) -> list[str]:
    """``code`` in a fresh interpreter whose environment has ``OPENBLAS_THREAD_TIMEOUT=value``
    (None: unset); returns its printed words."""
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    if value is not None:
        env[VARIABLE] = value
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


REPORT = "import os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), mg.get_blas_thread_timeout())"


@openblas
def test_importing_minigraph_first_shortens_the_spin():
    assert run_fresh("import minigraph as mg; " + REPORT, None) == ["16", "16"]


@openblas
def test_numpy_loaded_first_keeps_openblas_default_and_the_environment():
    assert run_fresh("import numpy; import minigraph as mg; " + REPORT, None) == ["None", "28"]


@openblas
def test_a_value_in_the_environment_is_kept():
    assert run_fresh("import minigraph as mg; " + REPORT, "20") == ["20", "20"]
