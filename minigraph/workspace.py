"""Scratch memory the kernels reuse from call to call: the im2col/GEMM column buffers and col2im's
phase buffers, the largest temporaries of a convolution (up to ``prod(kernel)`` times its input).

A fresh array of tens of MiB costs more than the copy that fills it: its pages are faulted in and
zeroed by the kernel (the DCGAN 64x64 training step spent about 15 % of its time there), and by
default glibc hands allocations above 32 MiB straight back to the system when they are freed
(:mod:`minigraph.allocator` keeps them in the heap instead; these buffers do not depend on it). Each thread that
runs a kernel keeps one buffer per role, grown to the largest request so far and never shrunk;
:func:`empty_cache` (PyTorch's name) releases them all. A buffer is only valid inside the kernel
call that asked for it: the next request for the same role on the same thread reuses the memory.
The memory model counts these buffers in every run's peak, as if they were allocated afresh
(``Estimate.workspace_bytes``). This module is part of the foundation: it imports only numpy and
:mod:`minigraph.allocator`.
"""
from __future__ import annotations

import threading
import weakref
from math import prod

import numpy as np

from . import allocator

__all__ = ["workspace", "empty_cache", "cached_bytes"]


class _Buffers:
    """One thread's buffers: role -> flat byte array (weak-referenced by :data:`_ALL`, so a thread's
    buffers go when the thread does)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}


class _Local(threading.local):
    def __init__(self) -> None:
        self.buffers = _Buffers()
        with _LOCK:
            _ALL.add(self.buffers)


_LOCK = threading.Lock()
_ALL: weakref.WeakSet[_Buffers] = weakref.WeakSet()
_LOCAL = _Local()


def workspace(role: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype`` in this thread's buffer for
    ``role``; valid until this thread's next request for the same role."""
    dtype = np.dtype(dtype)
    nbytes = prod(shape) * dtype.itemsize
    arrays = _LOCAL.buffers.arrays
    held = arrays.get(role)
    if held is None or held.nbytes < nbytes:
        held = None
        arrays.pop(role, None)  # the old buffer goes before the larger one is allocated
        held = arrays[role] = np.empty(max(nbytes, 1), np.uint8)
    return held[:nbytes].view(dtype).reshape(shape)


def cached_bytes() -> int:
    """Bytes the kernels' buffers hold now, over every thread."""
    with _LOCK:
        return sum(a.nbytes for buffers in _ALL for a in buffers.arrays.values())


def empty_cache() -> None:
    """Release every thread's kernel buffers (a kernel running now keeps its own until it returns), and
    return the free memory malloc keeps for reuse to the system (:mod:`minigraph.allocator`)."""
    with _LOCK:
        for buffers in _ALL:
            buffers.arrays.clear()
    allocator.trim()
