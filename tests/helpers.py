"""Seeded test data shared by the op and layer tests (float64 unless asked otherwise).

``seed`` is an int or a ``numpy.random.Generator`` (a test that draws from one stream passes it).
"""
from __future__ import annotations

import numpy as np


def normal(shape, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Standard normal values of ``shape``."""
    return np.random.default_rng(seed).standard_normal(shape)


def uniform(shape, low: float = -1.0, high: float = 1.0, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Values drawn uniformly from ``[low, high)``."""
    return np.random.default_rng(seed).uniform(low, high, shape)


__all__ = ["normal", "uniform"]
