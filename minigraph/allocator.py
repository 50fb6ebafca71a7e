"""Freed host memory kept for reuse: glibc's ``malloc`` tuned as a caching allocator.

Every op returns fresh arrays. glibc maps an allocation above its mmap threshold straight from the
system and unmaps it when freed; the threshold starts at 128 KiB and glibc raises it to the size of
each mapped block freed, but never above 32 MiB, and it returns the heap's free top to the system
once more than twice the threshold is free there. A training step that frees several large arrays
at once (six 16 MiB activations, say) or handles arrays above 32 MiB therefore gets fresh pages
again on the next step, and the kernel faults them in and zeroes them before the first write: a
fresh 16 MiB float32 array costs about 3 ms of page faults, more than the ufunc pass that fills it
(measured on the project's machine).

With caching on (the default on glibc, at import), minigraph sets ``M_MMAP_THRESHOLD`` to 1 GiB
and ``M_TRIM_THRESHOLD`` to 2 GiB with ``mallopt``: freed blocks stay in malloc's heap and the next
arrays of a training step reuse their pages. This cut the system time of the 64x64 DCGAN training
step by about 60 % and its wall time by 7-9 % (``benchmarks/``). Threads other than the main one
allocate from glibc's per-thread arenas, whose heaps hold at most 64 MiB: larger arrays made there
are still mapped afresh. The cost is the one of every caching allocator (PyTorch's CUDA allocator
works the same way): the process keeps its peak footprint instead of returning memory between
steps. :func:`minigraph.empty_cache` hands the free memory back (``malloc_trim``, whatever the
setting). ``set_memory_caching(False)`` sets the thresholds glibc itself settles on once large
arrays have been freed (32 MiB and 64 MiB); glibc cannot return to its on-the-fly adjustment once a
threshold is set, so only ``MINIGRAPH_MEMORY_CACHING=0`` in the environment before import leaves
``malloc`` wholly untouched. The settings are process-wide: they apply to every library's
allocations in the process. Elsewhere than glibc (macOS, Windows, musl) nothing changes and
:func:`get_memory_caching` returns False.

This module is part of the foundation: it imports only the standard library.
"""
from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["set_memory_caching", "get_memory_caching", "trim"]

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
CACHING_MMAP_THRESHOLD = 1 << 30
"""Allocations above 1 GiB are still mapped from the system (and returned when freed)."""
CACHING_TRIM_THRESHOLD = (1 << 31) - 1
"""The free heap top is returned to the system only above 2 GiB (mallopt takes a C int)."""
SETTLED_MMAP_THRESHOLD, SETTLED_TRIM_THRESHOLD = 32 << 20, 64 << 20
"""glibc's own thresholds once it has raised them as far as it does (caching off)."""
ENVIRONMENT_VARIABLE = "MINIGRAPH_MEMORY_CACHING"


def _glibc():
    """The C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):  # only glibc has it; musl's mallopt does nothing
            return None
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()
_enabled = False


def set_memory_caching(enabled: bool) -> bool:
    """Keep freed host memory for reuse (True) or let glibc return it to the system at once (False).

    Returns whether caching is now in effect: always False where the C library is not glibc.
    """
    global _enabled
    if not isinstance(enabled, bool):
        raise TypeError(f"set_memory_caching: enabled must be True or False, got {enabled!r}")
    if _LIBC is None:
        _enabled = False
        return False
    mmap, trim_at = ((CACHING_MMAP_THRESHOLD, CACHING_TRIM_THRESHOLD) if enabled
                     else (SETTLED_MMAP_THRESHOLD, SETTLED_TRIM_THRESHOLD))
    done = _LIBC.mallopt(M_MMAP_THRESHOLD, mmap) == 1
    if done and _LIBC.mallopt(M_TRIM_THRESHOLD, trim_at) != 1:  # never half of the setting
        _LIBC.mallopt(M_MMAP_THRESHOLD, SETTLED_MMAP_THRESHOLD)
        done = False
    _enabled = enabled and done
    if not enabled:
        trim()
    return _enabled


def get_memory_caching() -> bool:
    """Whether freed host memory is kept for reuse (see :func:`set_memory_caching`)."""
    return _enabled


def trim() -> None:
    """Return malloc's free memory to the system (``malloc_trim(0)``; nothing elsewhere than glibc)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _from_environment() -> bool:
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip() or "1"  # unset or empty: the default
    if value not in ("0", "1"):
        raise ValueError(f"environment variable {ENVIRONMENT_VARIABLE}={value!r}: expected 1 (keep freed memory "
                         f"for reuse, the default) or 0 (leave malloc's settings alone)")
    return value == "1"


if _from_environment():
    set_memory_caching(True)
