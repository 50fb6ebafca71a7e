"""Threads for the memory-bound passes of the kernels: im2col, col2im and batch transpositions.

numpy's BLAS runs every GEMM on its own threads, but the copies around the GEMMs (gathering
kernel taps, adding them back, transposing the batch axis) run on one core unless they are split.
numpy releases the GIL inside copies and ufunc loops, so slices of one array copied from several
Python threads run in parallel. :func:`parallel` splits such a pass into contiguous ranges of one
axis (the channels) and runs them on a small pool; every split gives the same values, since each
element is written by exactly one range.

``set_num_threads(n)`` / ``get_num_threads()`` (PyTorch's names) set how many threads these passes
use; the default is ``OMP_NUM_THREADS`` when set, else the CPUs this process may run on. numpy's
BLAS threads are set apart from this (``OPENBLAS_NUM_THREADS`` or threadpoolctl). A pass smaller
than :data:`MIN_PART_BYTES` per thread runs on the calling thread, and a pass started inside
another one's range runs there too (no nesting, no deadlock). Any number of user threads may call
in at once; the pool is rebuilt in a forked child. This module is part of the foundation: it
imports nothing but the argument checks.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from .checks import check_int

__all__ = ["set_num_threads", "get_num_threads", "parallel", "MIN_PART_BYTES"]

MIN_PART_BYTES = 1 << 20
"""The least bytes a thread's range must move: a hand-off to the pool costs some 20-50 us, the
time of copying about 0.5 MiB."""

_lock = threading.Lock()
_state: dict = {"threads": None, "pool": None}
_inside = threading.local()  # set while this thread runs a range of a pass


def _default_threads() -> int:
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.strip().isdigit() and int(value) > 0:
        return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """How many threads the kernels' copy passes use (:func:`set_num_threads`, else the default)."""
    if _state["threads"] is None:
        _state["threads"] = _default_threads()
    return int(_state["threads"])


def set_num_threads(n: int) -> None:
    """Use ``n >= 1`` threads for the kernels' copy passes (1: all on the calling thread)."""
    n = check_int(n, "n", "set_num_threads", minimum=1)
    with _lock:
        if n != _state["threads"] and _state["pool"] is not None:
            _state["pool"].shutdown(wait=False)
            _state["pool"] = None
        _state["threads"] = n


def _pool(workers: int) -> ThreadPoolExecutor:
    with _lock:
        if _state["pool"] is None:
            _state["pool"] = ThreadPoolExecutor(workers, thread_name_prefix="minigraph")
        return _state["pool"]


def _reset_after_fork() -> None:  # the parent's pool threads do not exist in the child
    _state["pool"] = None


os.register_at_fork(after_in_child=_reset_after_fork)


def _run_range(fn: Callable[[int, int], None], lo: int, hi: int) -> None:
    _inside.active = True
    try:
        fn(lo, hi)
    finally:
        _inside.active = False


def parallel(fn: Callable[[int, int], None], count: int, nbytes: int) -> None:
    """Run ``fn(lo, hi)`` over ``[0, count)`` split into contiguous ranges, one per thread, for a pass
    that moves ``nbytes`` in all; the calling thread takes the first range. Exceptions of any range
    are raised here once every range has finished."""
    parts = min(get_num_threads(), count, max(nbytes // MIN_PART_BYTES, 1))
    if parts <= 1 or getattr(_inside, "active", False):
        fn(0, count)
        return
    bounds = [count * i // parts for i in range(parts + 1)]
    pool = _pool(get_num_threads() - 1)
    futures: list[Future] = [pool.submit(_run_range, fn, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:])]
    try:
        _run_range(fn, bounds[0], bounds[1])
    finally:
        for future in futures:
            future.exception()  # wait for every range before anything is raised or returned
    for future in futures:
        future.result()
