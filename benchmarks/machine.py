"""The machine a run is measured on: CPU, BLAS library, thread counts, the float32 GEMM peak.

Thread counts are pinned for every framework (numpy's BLAS via threadpoolctl, PyTorch via
``torch.set_num_threads``, ONNX Runtime via its session options) so that ratios compare like
with like.
"""
from __future__ import annotations

import importlib
import os
import platform
import time
from collections.abc import Mapping

import numpy as np

import minigraph as mg

from .peers import installed
from .timing import Settings, best_time

SLOW_BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
"""OpenBLAS reads these when numpy is imported; a forced core type or cache size can halve GEMM speed."""

PEER_PACKAGES = ("torch", "onnx", "onnxruntime")

REPRODUCE = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python -m benchmarks"


def blas_environment_warnings(environ: Mapping[str, str] = os.environ) -> list[str]:
    """One warning per BLAS-tuning variable set in ``environ`` (this process's environment)."""
    return [f"{name}={environ[name]} is set: OpenBLAS may run far below this machine's speed; "
            f"rerun as `{REPRODUCE}` (or `make bench`)" for name in SLOW_BLAS_VARIABLES if name in environ]


def limit_threads(threads: int):
    """Pin numpy's BLAS (and any OpenMP pool) to ``threads``; returns the threadpoolctl limiter,
    which must stay referenced for the limit to hold."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=threads)


def blas_info() -> list[dict]:
    """numpy's BLAS libraries as threadpoolctl sees them (kernel, version, architecture, threads)."""
    from threadpoolctl import threadpool_info
    keys = ("user_api", "internal_api", "prefix", "version", "architecture", "threading_layer", "num_threads")
    return [{k: lib.get(k) for k in keys} for lib in threadpool_info()]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(threads: int) -> dict:
    """Everything needed to interpret a result file."""
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for module in PEER_PACKAGES:
        if installed(module):
            versions[module] = importlib.import_module(module).__version__
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "threads": threads,
        "torch_threads": importlib.import_module("torch").get_num_threads() if installed("torch") else None,
        "versions": versions,
        "blas": blas_info(),
        "blas_thread_timeout": mg.get_blas_thread_timeout(),
        "env_warnings": blas_environment_warnings(),
    }


def gemm_peak(settings: Settings, n: int = 2048, warmup_s: float = 0.5) -> dict:
    """Measured float32 GEMM throughput (``np.matmul`` of two ``n x n`` matrices), in GFLOP/s.

    The CPU first runs GEMMs for ``warmup_s``: the first wide-vector work after a pause runs at a
    fraction of full speed for a while (clock and power-state transitions), which would understate the peak.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    start = time.perf_counter()
    while time.perf_counter() - start < warmup_s:
        np.matmul(a, b, out=out)
    seconds = best_time(lambda: np.matmul(a, b, out=out), settings)
    return {"n": n, "seconds": seconds, "gflops": 2 * n ** 3 / seconds / 1e9}
