"""Timing and memory measurement: min-of-N wall time per call, tracemalloc peak per call.

The minimum over repeats is the least noisy estimate of what the code itself costs on a machine
that other processes share (noise only ever adds time). Calls shorter than ``min_repeat_s`` are
looped so that each repeat lasts at least that long, and the per-call time is reported.
"""
from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """How hard to measure. ``repeats``: timed repeats per measurement (the minimum is kept);
    ``min_repeat_s``: a repeat loops the call until it lasts this long; ``warmup``: untimed calls."""

    repeats: int = 7
    min_repeat_s: float = 0.05
    warmup: int = 2


FULL = Settings()
QUICK = Settings(repeats=3, min_repeat_s=0.02, warmup=1)
SMOKE = Settings(repeats=1, min_repeat_s=0.0, warmup=1)


def best_time(fn: Callable[[], object], settings: Settings) -> float:
    """Minimum over ``settings.repeats`` of the mean seconds per call of ``fn``."""
    for _ in range(settings.warmup):
        fn()
    start = time.perf_counter()
    fn()
    single = time.perf_counter() - start
    number = max(1, int(settings.min_repeat_s / single) if single > 0 else 1)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection in the middle of a repeat is noise, not the code's cost
    try:
        best = single
        for _ in range(settings.repeats):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best = min(best, (time.perf_counter() - start) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return best


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated (numpy arrays included: numpy reports to tracemalloc) while ``fn`` runs,
    above what was allocated before it; the result ``fn`` returns counts until it is dropped."""
    fn()  # warm-up: plans and compiled programs are cached, not temporary
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
