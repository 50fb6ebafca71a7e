"""The random generators minigraph draws from: parameter initialisation and random ops (dropout).

``set_seed(s)`` makes both reproducible; initializers with their own ``seed`` and runs given a
``seed=`` argument do not touch the global generators.
"""
from __future__ import annotations

import numpy as np

from .checks import check_seed

_state = {"ops": np.random.default_rng(), "init": np.random.default_rng()}


def set_seed(seed: int) -> None:
    """Seed the global generators of initializers (without a seed) and random ops (an int >= 0)."""
    seed = check_seed(seed, "set_seed", optional=False)
    _state["ops"] = np.random.default_rng(seed)
    _state["init"] = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])


def ops_rng() -> np.random.Generator:
    """The generator random ops use when a run is given no seed."""
    return _state["ops"]


def init_rng() -> np.random.Generator:
    """The generator initializers without a seed draw from."""
    return _state["init"]


def get_state() -> dict:
    """Both generators' states (for checkpoints)."""
    return {k: g.bit_generator.state for k, g in _state.items()}


def set_state(state: dict) -> None:
    for k, s in state.items():
        g = np.random.default_rng()
        g.bit_generator.state = s
        _state[k] = g
