"""Threads for the memory-bound passes of the kernels: im2col, col2im and batch transpositions.

numpy's BLAS runs every GEMM on its own threads, but the copies around the GEMMs (gathering
kernel taps, adding them back, transposing the batch axis) run on one core unless they are split.
numpy releases the GIL inside copies and ufunc loops, so slices of one array copied from several
Python threads run in parallel. :func:`parallel` splits such a pass into contiguous ranges of one
axis (the channels) and runs them on a small pool; every split gives the same values, since each
element is written by exactly one range.

Elementwise chains over large arrays (multi-pass activations, gradients of activations laid out
otherwise than their output gradient, batch normalization's statistics, normalization and input
gradient, the learners' update rules) run through :func:`map_chunks`: a
chunk of :data:`CHUNK_BYTES` at a time, so that a chain's second and later passes read it from the
core's cache instead of memory, and the chunks are shared among the same threads. The values are
the same bits for every thread count. In the 64x64 DCGAN training step this cut 3-4 % of the time
(1036-1049 ms -> 1001-1010 ms, 2 threads, same process).

``set_num_threads(n)`` / ``get_num_threads()`` (PyTorch's names) set how many threads these passes
use; the default is ``OMP_NUM_THREADS`` when set, else the CPUs this process may run on. numpy's
BLAS threads are set apart from this (``OPENBLAS_NUM_THREADS`` or threadpoolctl). A pass smaller
than :data:`MIN_PART_BYTES` per thread runs on the calling thread, and a pass started inside
another one's range runs there too (no nesting, no deadlock). Any number of user threads may call
in at once; the pool is rebuilt in a forked child. This module is part of the foundation: it
imports numpy and the argument checks only.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .checks import check_int

__all__ = ["set_num_threads", "get_num_threads", "parallel", "map_chunks", "chunked", "worth_chunks", "outer_axis",
           "same_layout", "empty_as", "is_broadcast", "MIN_PART_BYTES", "CHUNK_BYTES"]

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


def _run_range(fn: Callable[[int, int], None], lo: int, hi: int, errors: Mapping[str, Any] | None = None) -> None:
    """``fn(lo, hi)`` marked as inside a pass; ``errors``: the caller's ``np.geterr()``, which a pool
    thread does not inherit (numpy keeps it per thread), so that an ``np.errstate`` around a pass
    raises on every thread count alike."""
    _inside.active = True
    try:
        if errors is None:
            fn(lo, hi)
        else:
            with np.errstate(**errors):
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
    errors = dict(np.geterr())
    futures: list[Future] = [pool.submit(_run_range, fn, lo, hi, errors) for lo, hi in zip(bounds[1:-1], bounds[2:])]
    try:
        _run_range(fn, bounds[0], bounds[1])
    finally:
        for future in futures:
            future.exception()  # wait for every range before anything is raised or returned
    for future in futures:
        future.result()


CHUNK_BYTES = 256 << 10
"""The bytes of output an elementwise chain computes at a time (:func:`map_chunks`): its operands and
temporaries then stay in the core's L2 cache between the chain's passes."""


def worth_chunks(a: np.ndarray, chunk_bytes: int | None = None) -> bool:
    """Whether :func:`map_chunks` splits ``a`` (at least two chunks of ``chunk_bytes``, default
    :data:`CHUNK_BYTES`); callers on hot paths of small arrays ask first and skip building the
    chain's closure."""
    return a.ndim > 0 and a.nbytes >= 2 * (chunk_bytes or CHUNK_BYTES)


def _axis_order(a: np.ndarray) -> tuple:
    """``a``'s axes from outermost to innermost in memory; axes of length 1 (whose strides mean
    nothing) count as innermost, so the outermost axis is one that can be cut."""
    return tuple(sorted(range(a.ndim), key=lambda axis: (a.shape[axis] == 1, -abs(a.strides[axis]))))


def is_broadcast(a: np.ndarray) -> bool:
    """Whether ``a`` repeats values along an axis (stride 0 on an axis longer than 1, as
    ``np.broadcast_to`` makes): numpy lays out results of such operands in C order."""
    return any(stride == 0 and n > 1 for stride, n in zip(a.strides, a.shape))


def empty_as(a: np.ndarray, dtype=None) -> np.ndarray:
    """An empty array shaped as ``a``, laid out as ``a`` in memory (a batch-last activation gives a
    batch-last result), or in C order when ``a`` is a broadcast view."""
    return np.empty(a.shape, dtype or a.dtype) if is_broadcast(a) else np.empty_like(a, dtype=dtype)


def same_layout(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` (one shape) run through memory in the same axis order (both batch-first,
    say): numpy's whole-array passes then read both in order, and chunks gain little over them."""
    return a.shape == b.shape and _axis_order(a) == _axis_order(b)


def outer_axis(a: np.ndarray) -> int:
    """The axis :func:`map_chunks` cuts ``a`` along: the outermost in memory (the largest stride)."""
    return _axis_order(a)[0]


def map_chunks(fn: Callable[..., None], out: np.ndarray, *operands, chunk_bytes: int | None = None) -> None:
    """``fn(out[s], *(operand[s] ...))`` for slices ``s`` that cover ``out``, ``chunk_bytes`` of
    ``out`` (default :data:`CHUNK_BYTES`) at a time, the chunks shared among the threads (:func:`parallel`).

    For elementwise chains (several numpy passes writing into ``out[s]`` or chunk-sized
    temporaries): every element gets the same formula whatever the split, so every thread count and
    chunk size gives the same bits, and the passes after the first read the chunk from cache. The
    chunks run along ``out``'s outermost axis in memory (the channels of a batch-last activation, the
    batch of a batch-first one), so each is one contiguous block when ``out`` is dense; the operands
    are seen through the same axis order. An array operand with as many axes as ``out`` (after
    numpy's broadcasting prepends any missing ones) and the same length along that axis is sliced;
    broadcast statistics of length 1, scalars and None are passed whole, to every chunk at once, so
    ``fn`` must only read them (and ``out`` must not overlap an operand it reads elsewhere). A chunk
    is at least one slice of the outer axis, even when that is larger than ``chunk_bytes``. An ``out``
    smaller than two chunks is computed in one call on the calling thread.
    """
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    if not worth_chunks(out, chunk_bytes):
        fn(out, *operands)
        return
    order = _axis_order(out)
    view = out.transpose(order)  # order[0] is outer_axis(out)
    parts = [a.reshape((1,) * (out.ndim - a.ndim) + a.shape).transpose(order)
             if isinstance(a, np.ndarray) and a.ndim <= out.ndim else a for a in operands]
    count = view.shape[0]
    sliced = [isinstance(a, np.ndarray) and a.ndim == view.ndim and a.shape[0] == count > 1 for a in parts]
    rows = max(1, chunk_bytes // max(out.nbytes // max(count, 1), 1))  # rows of the outer axis per chunk

    def run(lo: int, hi: int) -> None:
        for r0 in range(lo, hi, rows):
            s = slice(r0, min(r0 + rows, hi))
            fn(view[s], *(a[s] if cut else a for a, cut in zip(parts, sliced)))

    parallel(run, count, out.nbytes)


def chunked(f: Callable[..., np.ndarray], *operands, chunk_bytes: int | None = None) -> np.ndarray:
    """``f(*operands)`` for an elementwise chain ``f`` whose result has the shape of the first operand:
    when that is at least two chunks large, computed by :func:`map_chunks` into a new array laid out
    as the first operand in memory (:func:`empty_as`, as numpy lays out a unary ufunc's result), else
    by one call. The values are the same bits either way."""
    first = operands[0]
    if not worth_chunks(first, chunk_bytes):
        return f(*operands)
    probe = [a[:0] if isinstance(a, np.ndarray) and a.ndim == first.ndim and a.shape[0] == first.shape[0] else a
             for a in operands]
    out = empty_as(first, f(*probe).dtype)
    map_chunks(lambda o, *parts: np.copyto(o, f(*parts)), out, *operands, chunk_bytes=chunk_bytes)
    return out
