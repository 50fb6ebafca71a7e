"""Named arrays as a data source (:class:`ArraySource`), and the helpers every source shares:
explicit scaling of integer data to a float range, and the per-minibatch transform.

A *source* is anything with ``len(source)`` (the number of samples) and
``source.read(indices) -> {name: array}`` returning those samples, in that order, each array with a
leading sample axis. :class:`minigraph.data.MinibatchSource` draws minibatches from one.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from ..checks import is_number
from ..errors import DataError

Transform = Callable[[dict], dict]


def check_value_range(value_range, label: str) -> tuple[float, float]:
    """``(low, high)``: two finite numbers with low < high."""
    if not (isinstance(value_range, (tuple, list)) and len(value_range) == 2 and all(map(is_number, value_range))):
        raise TypeError(f"{label}: value_range must be a pair of numbers (low, high), got {value_range!r}")
    low, high = (float(v) for v in value_range)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise DataError(f"{label}: value_range must be finite with low < high, got {value_range!r}")
    return low, high


def scale_integers(values: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Integer data mapped linearly from its dtype's full range (uint8: 0..255) onto
    ``value_range``, as float32: the dtype's minimum becomes ``low``, its maximum ``high``."""
    info = np.iinfo(values.dtype)
    low, high = value_range
    step = np.float32((high - low) / (float(info.max) - float(info.min)))
    out = values.astype(np.float32)
    if info.min:
        out -= np.float32(info.min)
    out *= step
    out += np.float32(low)
    return out


def check_transform(transform, label: str) -> Transform | None:
    if transform is not None and not callable(transform):
        raise TypeError(f"{label}: transform must be a function batch_dict -> batch_dict or None, "
                        f"got {type(transform).__name__}")
    return transform


def apply_transform(transform: Transform | None, batch: dict, rows: int, label: str) -> dict:
    """``transform(batch)``, checked: a dict of arrays that all keep ``rows`` samples."""
    if transform is None:
        return batch
    out = transform(batch)
    if not isinstance(out, Mapping) or not out:
        raise DataError(f"{label}: transform must return a non-empty dict of arrays, got {type(out).__name__}")
    out = {k: np.asarray(v) for k, v in out.items()}
    wrong = {k: v.shape for k, v in out.items() if v.ndim == 0 or v.shape[0] != rows}
    if wrong:
        raise DataError(f"{label}: transform must keep the {rows} samples of the minibatch on the leading axis, "
                        f"got shapes {wrong}")
    return out


class ArraySource:
    """Named arrays (``{name: array}``, each with the samples on its leading axis) as a data source.

    Arrays may be in memory or memory maps (``np.load(path, mmap_mode="r")``): a minibatch reads
    only its own rows, so memory stays near one minibatch whatever the file's size.

    value_range: ``{name: (low, high)}`` for integer arrays (images stored as uint8) to scale
        explicitly to float32 (the dtype's full range maps onto ``(low, high)``). Integer arrays
        not named stay integers (labels): nothing is ever cast silently.
    transform: ``transform(batch_dict) -> batch_dict``, run on every minibatch after scaling.

    >>> src = ArraySource({"x": np.arange(6, dtype=np.uint8).reshape(3, 2)}, value_range={"x": (0, 255)})
    >>> len(src), src.read(np.array([2, 0]))["x"].tolist()
    (3, [[4.0, 5.0], [0.0, 1.0]])
    """

    label = "ArraySource"

    def __init__(self, arrays: Mapping, transform: Transform | None = None,
                 value_range: Mapping[str, tuple[float, float]] | None = None):
        if not isinstance(arrays, Mapping) or not arrays:
            raise DataError(f"{self.label}: arrays must be a non-empty dict of name -> array of samples, got "
                            f"{'an empty dict' if isinstance(arrays, Mapping) else type(arrays).__name__}")
        self.arrays: dict[str, np.ndarray] = {}
        for name, value in arrays.items():
            if not isinstance(name, str):
                raise TypeError(f"{self.label}: array names must be strings, got {name!r}")
            arr = value if isinstance(value, np.ndarray) else np.asarray(value)  # memory maps stay memory maps
            if arr.ndim == 0 or arr.dtype == object:
                raise DataError(f"{self.label}: '{name}' must be an array of samples (a leading sample axis), "
                                f"got {type(value).__name__} of shape {arr.shape} and dtype {arr.dtype}")
            self.arrays[name] = arr
        lengths = {name: len(a) for name, a in self.arrays.items()}
        if len(set(lengths.values())) != 1:
            listing = ", ".join(f"'{k}': {n}" for k, n in lengths.items())
            raise DataError(f"{self.label}: every array needs the same number of samples, got {listing}")
        if not next(iter(lengths.values())):
            raise DataError(f"{self.label}: the arrays have no samples; give at least one")
        self.value_range = self._checked_ranges(value_range or {})
        self.transform = check_transform(transform, self.label)

    def _checked_ranges(self, ranges: Mapping) -> dict[str, tuple[float, float]]:
        if not isinstance(ranges, Mapping):
            raise TypeError(f"{self.label}: value_range must be a dict of array name -> (low, high), got "
                            f"{type(ranges).__name__}")
        checked = {}
        for name, pair in ranges.items():
            if name not in self.arrays:
                raise DataError(f"{self.label}: value_range names '{name}', which is not one of the arrays "
                                f"{sorted(self.arrays)}")
            if not np.issubdtype(self.arrays[name].dtype, np.integer):
                raise DataError(f"{self.label}: value_range for '{name}': the array is {self.arrays[name].dtype}, "
                                f"not integers; scale float data yourself (or in a transform)")
            checked[name] = check_value_range(pair, f"{self.label} '{name}'")
        return checked

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.arrays)

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The samples at ``indices`` (in that order) of every array, scaled and transformed."""
        batch = {}
        for name, arr in self.arrays.items():
            rows = np.asarray(arr[indices])  # a memory map reads only these rows
            batch[name] = scale_integers(rows, self.value_range[name]) if name in self.value_range else rows
        return apply_transform(self.transform, batch, len(indices), self.label)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {a.shape[1:]} {a.dtype}" for k, a in self.arrays.items())
        return f"ArraySource({len(self)} samples; {shapes})"
