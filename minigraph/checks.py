"""Argument checks shared by the ops and the layers: one test and one wording per kind of argument.

Messages start with the caller's ``label`` (``"reduce_sum"``, ``"Convolution 'c'"``) and name the
argument: ``"times: output_rank must be an int >= 0, got -1"``. A value of the wrong type raises
:class:`~minigraph.errors.ArgumentTypeError` (a TypeError), a value out of range
:class:`~minigraph.errors.ArgumentError` (a ValueError): both are minigraph errors. Bools are refused
wherever a number is expected: Python counts them as ints, but ``groups=True`` is a mistake, not 1.
Each check returns the plain Python value (``int``, ``float``, ``bool``), which node attributes need
(they are written to model files).
"""
from __future__ import annotations

import math
from typing import Any, Literal, overload

import numpy as np

from .errors import ArgumentError, ArgumentTypeError

__all__ = ["is_int", "is_number", "check_int", "check_ints", "check_number", "check_bool", "check_seed",
           "check_dtype"]


def is_int(value) -> bool:
    """A Python or numpy integer, but not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A Python or numpy int or float, but not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _int_phrase(minimum: int | None, plural: bool = False) -> str:
    """``"an int"``, ``"a positive int"``, ``"an int >= 0"`` (or their plurals)."""
    if minimum == 1:
        return "positive ints" if plural else "a positive int"
    noun = "ints" if plural else "an int"
    return noun if minimum is None else f"{noun} >= {minimum}"


def check_int(value, arg: str, label: str, *, minimum: int | None = None) -> int:
    """One int (``>= minimum`` when given)."""
    if not is_int(value):
        raise ArgumentTypeError(f"{label}: {arg} must be {_int_phrase(minimum)}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ArgumentError(f"{label}: {arg} must be {_int_phrase(minimum)}, got {value!r}")
    return int(value)


@overload
def check_ints(values: Any, arg: str, label: str, *, minimum: int | None = None,
               optional: Literal[False] = False) -> tuple[int, ...]: ...


@overload
def check_ints(values: Any, arg: str, label: str, *, minimum: int | None = None,
               optional: bool) -> tuple[int, ...] | None: ...


def check_ints(values: Any, arg: str, label: str, *, minimum: int | None = None,
               optional: bool = False) -> tuple[int, ...] | None:
    """An int or a list/tuple of ints (``>= minimum`` when given), as a tuple: ``3`` -> ``(3,)``.
    ``optional``: None is allowed too (and returned)."""
    if values is None and optional:
        return None
    seq = tuple(values) if isinstance(values, (list, tuple)) else (values,)
    for v in seq:
        if not is_int(v) or (minimum is not None and v < minimum):
            what = f"{'None, ' if optional else ''}{_int_phrase(minimum)} or a sequence of {_int_phrase(minimum, True)}"
            raise (ArgumentError if is_int(v) else ArgumentTypeError)(f"{label}: {arg} must be {what}, got {values!r}")
    return tuple(int(v) for v in seq)


def check_number(value, arg: str, label: str, *, minimum: float | None = None,
                 maximum: float | None = None) -> float:
    """One int or float, not NaN, within ``[minimum, maximum]`` (either bound optional; infinities
    are numbers: an infinite time constant is meaningful)."""
    if minimum is not None and maximum is not None:
        what = f"a number in [{minimum}, {maximum}]"
    elif minimum is not None or maximum is not None:
        what = f"a number >= {minimum}" if minimum is not None else f"a number <= {maximum}"
    else:
        what = "a number"
    if not is_number(value):
        raise ArgumentTypeError(f"{label}: {arg} must be {what}, got {value!r}")
    if math.isnan(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ArgumentError(f"{label}: {arg} must be {what}, got {value!r}")
    return float(value)


def check_bool(value, arg: str, label: str) -> bool:
    """True or False (numpy bools too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{label}: {arg} must be a bool (True or False), got {value!r}")
    return bool(value)


def check_seed(seed, label: str, optional: bool = True, generator: bool = False):
    """A random seed: an int in ``[0, 2**128)`` (numpy's seeds are non-negative), ``None`` when
    ``optional``, a ``numpy.random.Generator`` when ``generator`` (used as is, as
    ``numpy.random.default_rng`` does)."""
    if (seed is None and optional) or (generator and isinstance(seed, np.random.Generator)):
        return seed
    what = " or ".join(["an int in [0, 2**128)"] + ["None"] * optional + ["a numpy.random.Generator"] * generator)
    if not is_int(seed):
        raise ArgumentTypeError(f"{label}: seed must be {what}, got {seed!r}")
    if not 0 <= seed < 2 ** 128:
        raise ArgumentError(f"{label}: seed must be {what}, got {seed!r}")
    return int(seed)


def check_dtype(dtype, label: str = "", optional: bool = False) -> np.dtype | None:
    """float32 or float64 (as a numpy dtype, type or name); ``None`` when ``optional``."""
    if dtype is None and optional:
        return None
    try:
        dt = np.dtype(dtype) if isinstance(dtype, (str, type, np.dtype)) else None
    except TypeError:
        dt = None
    if dt is None or dt not in (np.dtype(np.float32), np.dtype(np.float64)):  # (dtype('float64') == None)
        shown = repr(dtype) if dt is None else str(dt)
        prefix = f"{label}: " if label else ""
        raise ArgumentTypeError(f"{prefix}dtype {shown} is not supported: minigraph computes in float32 or float64 "
                                f"(give np.float32, np.float64 or their names)")
    return dt
