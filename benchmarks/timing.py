"""Timing and memory measurement: min-of-N wall time per call, tracemalloc peak per call.

The minimum over repeats is the least noisy estimate of what the code itself costs on a machine
that other processes share (noise only ever adds time); functions compared with each other are
timed in alternation (:func:`best_times`). Calls shorter than ``min_repeat_s`` are
looped so that each repeat lasts at least that long, and the per-call time is reported.
"""
from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from minigraph import empty_cache


@dataclass(frozen=True)
class Settings:
    """How hard to measure. ``repeats``: timed repeats per measurement (the minimum is kept);
    ``min_repeat_s``: a repeat loops the call until it lasts this long; ``warmup``: untimed calls."""

    repeats: int = 25
    min_repeat_s: float = 0.01
    warmup: int = 2


FULL = Settings()
QUICK = Settings(repeats=7, min_repeat_s=0.01, warmup=1)
SMOKE = Settings(repeats=1, min_repeat_s=0.0, warmup=1)

SETTLE_S = 0.1
"""Pause before timing another library's call (see :func:`best_times`)."""


def best_times(fns: Mapping[str, Callable[[], object]], settings: Settings, settle_s: float = 0.0) -> dict[str, float]:
    """Minimum over ``settings.repeats`` rounds of the mean seconds per call of each function.

    The functions take turns within every round, so that when other processes load the machine
    for a while, every function is measured both in the quiet and in the busy moments. With
    ``settle_s > 0`` each turn starts with a pause and one untimed call: worker threads of the
    library that ran before (OpenBLAS, OpenMP) keep spinning for a while after a call and would
    otherwise steal the cores from the next library's threads.
    """
    numbers = {}
    best = {}
    for key, fn in fns.items():
        for _ in range(settings.warmup):
            fn()
        start = time.perf_counter()
        fn()
        best[key] = time.perf_counter() - start
        numbers[key] = max(1, int(settings.min_repeat_s / best[key]) if best[key] > 0 else 1)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection in the middle of a repeat is noise, not the code's cost
    try:
        for _ in range(settings.repeats):
            for key, fn in fns.items():
                if settle_s > 0:
                    time.sleep(settle_s)
                    fn()
                start = time.perf_counter()
                for _ in range(numbers[key]):
                    fn()
                best[key] = min(best[key], (time.perf_counter() - start) / numbers[key])
    finally:
        if gc_was_enabled:
            gc.enable()
    return best


def best_time(fn: Callable[[], object], settings: Settings) -> float:
    """Minimum over ``settings.repeats`` of the mean seconds per call of ``fn``."""
    return best_times({"fn": fn}, settings)["fn"]


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated (numpy arrays included: numpy reports to tracemalloc) while ``fn`` runs,
    above what was allocated before it; the result ``fn`` returns counts until it is dropped. The
    kernels' reused buffers count: they are released after the warm-up, so ``fn`` allocates them."""
    fn()  # warm-up: plans and compiled programs are cached, not temporary
    empty_cache()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
        del result
    finally:
        tracemalloc.stop()
    return peak
