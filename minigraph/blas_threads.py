"""How long OpenBLAS's idle threads spin after a GEMM before they sleep.

After each multi-threaded GEMM, OpenBLAS keeps its worker threads busy-waiting for the next one:
``2**28`` CPU cycles by default, about 0.1 s. The kernels run their copy passes (im2col, col2im,
batch transpositions) on threads of their own (:mod:`minigraph.threads`) right after their GEMMs,
so on a machine with few cores those copies share a core with a spinning BLAS thread and run at
half speed. On the project's 2-core machine (2 BLAS threads, 2 copy threads) col2im after a GEMM
took 14.7 ms instead of 6.5 ms, and a spin of ``2**16`` cycles (about 25 us) made the DCGAN
layers' forwards 10-27 % faster (dcgan4 39 -> 28 ms), conv1d 2.8 -> 2.3 ms, and the 64x64 DCGAN
training step 6-9 % faster. Spins from ``2**4`` to ``2**16`` cycles measured the same; ``2**16``
still bridges GEMMs that follow each other at once.

OpenBLAS reads the spin, as a power of two, from the environment variable
``OPENBLAS_THREAD_TIMEOUT`` once, when numpy loads it. So minigraph sets that variable to
:data:`IDLE_SPIN_EXPONENT` at import when numpy is not loaded yet and the variable is unset: import
minigraph before numpy (or set ``OPENBLAS_THREAD_TIMEOUT=16`` in the environment yourself) to get
it. A value already in the environment is left alone (OpenBLAS's own default is 28). Child
processes inherit the variable. Other BLAS libraries (MKL, Accelerate) ignore it.
:func:`get_blas_thread_timeout` tells what the loaded OpenBLAS uses.

This module is part of the foundation: it imports only the standard library, and nothing that
loads numpy (``minigraph/__init__`` imports it first).
"""
from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["get_blas_thread_timeout", "IDLE_SPIN_EXPONENT", "ENVIRONMENT_VARIABLE"]

ENVIRONMENT_VARIABLE = "OPENBLAS_THREAD_TIMEOUT"
IDLE_SPIN_EXPONENT = 16
"""Idle BLAS threads spin ``2**16`` cycles (tens of microseconds) after a GEMM, then sleep."""
OPENBLAS_DEFAULT_EXPONENT, OPENBLAS_RANGE = 28, (4, 30)
"""OpenBLAS's spin when the variable is unset (or 0), and the range it clamps a value to."""


def set_default_before_numpy(environ=os.environ, modules=sys.modules) -> bool:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` to :data:`IDLE_SPIN_EXPONENT` when it is unset and numpy is
    not loaded yet (afterwards OpenBLAS would not read it); returns whether it was set."""
    if ENVIRONMENT_VARIABLE in environ or "numpy" in modules:
        return False
    environ[ENVIRONMENT_VARIABLE] = str(IDLE_SPIN_EXPONENT)
    return True


def _loaded_openblas() -> ctypes.CDLL | None:
    """The OpenBLAS library numpy loaded, found in ``/proc/self/maps`` (one in numpy's own folders
    first, else the first other one mapped); None elsewhere than Linux or when no OpenBLAS is loaded."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split(maxsplit=5)[-1].strip() for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted((p for p in paths if p.startswith("/") and ".so" in p), key=lambda p: ("numpy" not in p, p)):
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same handle, nothing runs again
        except OSError:
            continue
        if hasattr(lib, "openblas_thread_timeout"):
            return lib
    return None


def effective_exponent(raw: int) -> int:
    """The spin exponent OpenBLAS applies for the raw value it read (0: unset, its default)."""
    low, high = OPENBLAS_RANGE
    return OPENBLAS_DEFAULT_EXPONENT if raw <= 0 else min(max(raw, low), high)


def get_blas_thread_timeout() -> int | None:
    """The idle spin numpy's OpenBLAS was started with, as a power of two (``16``: ``2**16`` cycles;
    OpenBLAS's default is 28), or None when numpy's BLAS is not OpenBLAS (or not found). OpenBLAS
    builds on OpenMP threads ignore the setting (their spin is OpenMP's)."""
    lib = _loaded_openblas()
    if lib is None:
        return None
    lib.openblas_thread_timeout.restype = ctypes.c_int
    lib.openblas_thread_timeout.argtypes = []
    return effective_exponent(lib.openblas_thread_timeout())


set_default_before_numpy()
