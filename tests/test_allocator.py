"""Host memory caching (minigraph.allocator): glibc's malloc keeps freed memory for reuse."""
from __future__ import annotations

import os
import resource
import subprocess
import sys

import numpy as np
import pytest

import minigraph as mg
from minigraph import allocator

glibc = pytest.mark.skipif(allocator._LIBC is None, reason="memory caching tunes glibc's malloc only")
SIZE = 64 << 20  # above glibc's largest on-the-fly mmap threshold (32 MiB): mapped afresh unless cached
FRESH = SIZE // (2 << 20)  # the fewest faults of fresh memory: one per page, or per 2 MiB huge page (THP)
REUSED = 8  # writing reused heap memory faults (almost) never


def faults_of_array() -> int:
    """Minor page faults taken by allocating and writing a 64 MiB array (freed again)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    array = np.ones(SIZE, np.uint8)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del array
    return faults


def reused_faults() -> int:
    """The fewest faults of three 64 MiB arrays after a first one: another allocation landing in the
    freed block between two of them can make one array take a few fresh pages."""
    faults_of_array()
    return min(faults_of_array() for _ in range(3))


@pytest.fixture
def restore_caching():
    was = mg.get_memory_caching()
    yield
    mg.set_memory_caching(was)


def check_caching_reuses_freed_pages() -> None:
    assert mg.set_memory_caching(True) is True
    assert reused_faults() < REUSED


def check_without_caching_a_fresh_array_faults_its_pages_in() -> None:
    assert mg.set_memory_caching(False) is False
    assert not mg.get_memory_caching()
    faults_of_array()
    assert faults_of_array() >= FRESH
    assert mg.set_memory_caching(True) is True
    assert reused_faults() < REUSED


def check_empty_cache_returns_free_memory_and_keeps_caching_on() -> None:
    mg.set_memory_caching(True)
    faults_of_array()
    mg.empty_cache()
    assert mg.get_memory_caching()
    assert faults_of_array() >= FRESH  # the freed heap went back to the system
    assert reused_faults() < REUSED


@glibc
@pytest.mark.parametrize("check", [check_caching_reuses_freed_pages,
                                   check_without_caching_a_fresh_array_faults_its_pages_in,
                                   check_empty_cache_returns_free_memory_and_keeps_caching_on],
                         ids=lambda check: check.__name__.removeprefix("check_"))
def test_page_reuse_in_a_fresh_interpreter(check):
    """Each check runs in a new interpreter: in a long-lived test process, blocks that earlier tests
    freed into the heap can serve a 64 MiB array whatever the thresholds, so it would not be fresh."""
    env = {k: v for k, v in os.environ.items() if k != "MINIGRAPH_MEMORY_CACHING"}
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
            f"import test_allocator; test_allocator.{check.__name__}()")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_set_memory_caching_takes_a_bool(restore_caching):
    with pytest.raises(TypeError, match="True or False, got 1"):
        mg.set_memory_caching(1)


def test_without_glibc_nothing_changes(restore_caching, monkeypatch):  # monkeypatch undone first
    monkeypatch.setattr(allocator, "_LIBC", None)
    assert mg.set_memory_caching(True) is False
    assert not mg.get_memory_caching()
    allocator.trim()  # a no-op


def run_import(value: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MINIGRAPH_MEMORY_CACHING": value}
    return subprocess.run([sys.executable, "-c", "import minigraph as mg; print(mg.get_memory_caching())"],
                          env=env, capture_output=True, text=True)


@glibc
def test_caching_is_on_at_import_unless_the_environment_variable_says_0():
    assert run_import("0").stdout.strip() == "False"
    assert run_import("1").stdout.strip() == "True"
    assert run_import("").stdout.strip() == "True"  # empty: as if unset


def test_a_bad_environment_value_is_a_clear_error():
    result = run_import("yes")
    assert result.returncode != 0
    assert "MINIGRAPH_MEMORY_CACHING='yes': expected 1" in result.stderr
