"""Pooling: max and average over windows of the trailing (spatial) axes, CNTK's ``pooling``.

Shapes (static, batch excluded): operand ``(*lead, *spatial)`` where ``spatial`` has one axis per
window entry (usually ``lead = (C,)``); output ``(*lead, *out_spatial)``. Sizes and pads follow
the convolution rules of :mod:`minigraph.ops.conv_geometry` (``pad=True``: ``ceil(n / s)`` outputs,
centred window; ``pad=False``: ``(n - k)//s + 1``) and are stored on the node as ``lower_pad`` /
``upper_pad``. Padded positions never win a max and are not counted by the average (CNTK's
``include_pad=False``). The kernels loop over window offsets only, never over pixels or samples.
"""
from __future__ import annotations

import builtins
import itertools

import numpy as np

from ..shapes import is_known, shape_str
from . import conv_geometry as geo
from .base import Inferred, Op, ShapeError, cached, export, make, register_op

MAX_POOLING = "max"
AVG_POOLING = "average"


class PoolingOp(Op):
    """The vjp reads only the window plan and, for max pooling, the winning offsets (the residual)."""

    name = "Pooling"
    saves_inputs = saves_output = False
    backward_temporaries = 2.0

    def infer(self, in_shapes, in_dtypes, attrs, label):
        shape = tuple(in_shapes[0])
        window = tuple(attrs["pooling_window_shape"])
        rank = len(window)
        if len(shape) < rank:
            raise ShapeError(f"{label}: operand of shape {shape_str(shape)} has rank {len(shape)}; a {rank}D window "
                             f"{window} needs at least {rank} (trailing, spatial) axes")
        lead, spatial = shape[:len(shape) - rank], shape[len(shape) - rank:]
        out, lower, upper = [], [], []
        for axis, (n, k, s, pad) in enumerate(zip(spatial, window, attrs["strides"], attrs["auto_padding"])):
            size, lo, hi = geo.conv_axis(n, k, s, 1, pad)
            if is_known(size) and size < 1:
                raise ShapeError(f"{label}: operand {shape_str(shape)} is too small on spatial axis {axis}: size {n} "
                                 f"with pads ({lo}, {hi}) is shorter than the window {k}; use auto_padding=True or "
                                 f"a smaller window")
            out.append(size), lower.append(lo), upper.append(hi)
        return Inferred(lead + tuple(out), {"lower_pad": tuple(lower), "upper_pad": tuple(upper)})

    @staticmethod
    def _windows(step):
        """Padded operand shape, where the operand sits in it, and one index per window offset.

        Only the offsets that reach the operand for some output are kept: the others read padding
        alone, which never wins a max and is not counted by the average. So work and the padded
        buffer scale with the operand, not the window (a window of 10**9 over 8 elements, padded
        to fit, takes as long as a window of 15). Negative pads (windows that stop before the end)
        need no padding: the windows just start later or leave trailing rows unused.
        """
        def plan():
            a = step.attrs
            window, strides = a["pooling_window_shape"], a["strides"]
            rank = len(window)
            in_shape, out_shape = step.in_shapes[0], step.out_shape
            lead = len(in_shape) - rank
            taps, pad_lo, pad_hi = [], [], []
            for n, k, s, m, lo in zip(in_shape[lead:], window, strides, out_shape[lead:], a["lower_pad"]):
                # output o, offset t reads operand element o*s - lo + t: keep t if it is in [0, n) for some o
                first, last = max(0, lo - s * (m - 1)), min(k - 1, lo + n - 1)
                taps.append(range(first, max(first, last) + 1))
                pad_lo.append(max(0, lo - first))
                pad_hi.append(max(0, max(first, last) - lo + s * (m - 1) - (n - 1)))
            base = [p - lo for p, lo in zip(pad_lo, a["lower_pad"])]
            sizes = out_shape[lead:]
            offsets = []
            for offset in itertools.product(*taps):
                spatial = tuple(builtins.slice(b + t, b + t + s * (n - 1) + 1, s)
                                for b, t, s, n in zip(base, offset, strides, sizes))
                offsets.append((builtins.slice(None),) * (lead + 1) + spatial)
            padded = tuple(in_shape[:lead]) + tuple(n + lo + hi for n, lo, hi in zip(in_shape[lead:], pad_lo, pad_hi))
            inside = (builtins.slice(None),) * (lead + 1) + tuple(
                builtins.slice(lo, lo + n) for lo, n in zip(pad_lo, in_shape[lead:]))
            return padded, inside, offsets
        return cached(step, "windows", plan)

    def _padded(self, step, x, fill):
        padded, inside, _ = self._windows(step)
        if tuple(padded) == tuple(step.in_shapes[0]):
            return x
        xp = np.full((x.shape[0], *padded), fill, x.dtype)
        xp[inside] = x
        return xp

    def _counts(self, step, dtype):
        """How many real (unpadded) elements each average window holds, ``(1, *out_shape)``."""
        key = ("counts", np.dtype(dtype).str)
        counts = step.cache.get(key)
        if counts is None:
            padded, inside, offsets = self._windows(step)
            mask = np.zeros((1, *padded), dtype)
            mask[inside] = 1
            counts = step.cache[key] = sum(mask[idx] for idx in offsets)
        return counts

    def forward(self, step, xs, ctx):
        x = xs[0]
        _, _, offsets = self._windows(step)
        if step.attrs["pooling_type"] == MAX_POOLING:
            xp = self._padded(step, x, -np.inf)
            best = xp[offsets[0]].copy()
            winner = np.zeros(best.shape, np.int32)
            for j, idx in enumerate(offsets[1:], start=1):
                candidate = xp[idx]
                better = candidate > best  # strict: the first offset wins ties, as the vjp assumes
                np.copyto(best, candidate, where=better)
                np.copyto(winner, j, where=better)
            return best, winner
        xp = self._padded(step, x, 0)
        total = xp[offsets[0]].copy()
        for idx in offsets[1:]:
            total += xp[idx]
        return total / self._counts(step, x.dtype), None

    def vjp(self, step, g, xs, y, residual, needs):
        padded, inside, offsets = self._windows(step)
        gp = np.zeros((g.shape[0], *padded), g.dtype)
        if step.attrs["pooling_type"] == MAX_POOLING:
            for j, idx in enumerate(offsets):
                gp[idx] += np.where(residual == j, g, 0)
        else:
            share = g / self._counts(step, g.dtype)
            for idx in offsets:
                gp[idx] += share
        return [gp[inside]]


POOLING = register_op(PoolingOp())


@export(builds=POOLING)
def pooling(operand, pooling_type: str, pooling_window_shape, strides=1, auto_padding=False, name: str = ""):
    """Max or average pooling of the trailing ``len(pooling_window_shape)`` axes (CNTK's ``pooling``).

    ``pooling_type``: ``"max"`` or ``"average"`` (:data:`MAX_POOLING`, :data:`AVG_POOLING`).
    ``strides``, ``auto_padding`` (bools, or ``"valid"``/``"same_upper"``/``"same_lower"``): a scalar
    for every axis or one entry per window axis. E.g. operand ``(16, 8, 8)``, window ``(2, 2)``,
    strides 2 -> ``(16, 4, 4)``; with ``auto_padding=True`` and window 3, stride 1 -> ``(16, 8, 8)``.
    """
    label = f"pooling '{name}'" if name else "pooling"
    if pooling_type not in (MAX_POOLING, AVG_POOLING):
        raise ValueError(f"{label}: pooling_type must be {MAX_POOLING!r} or {AVG_POOLING!r}, got {pooling_type!r}")
    window = tuple(pooling_window_shape) if isinstance(pooling_window_shape, (list, tuple)) else (pooling_window_shape,)
    if not window:
        raise ValueError(f"{label}: pooling_window_shape must have at least one axis")
    rank = len(window)
    window = geo.per_axis_ints(window, "pooling_window_shape", rank, window, label, 1)
    strides = geo.per_axis_ints(strides, "strides", rank, window, label, 1)
    modes = geo.per_axis_pad_modes(auto_padding, rank, window, label)
    attrs = {"pooling_type": pooling_type, "pooling_window_shape": list(window), "strides": list(strides),
             "auto_padding": list(modes)}
    return make(POOLING, [operand], attrs, name)


@export
def max_pooling(operand, pooling_window_shape, strides=1, auto_padding=False, name: str = ""):
    """``pooling(operand, "max", ...)``."""
    return pooling(operand, MAX_POOLING, pooling_window_shape, strides, auto_padding, name)


@export
def average_pooling(operand, pooling_window_shape, strides=1, auto_padding=False, name: str = ""):
    """``pooling(operand, "average", ...)``; windows average only their unpadded elements."""
    return pooling(operand, AVG_POOLING, pooling_window_shape, strides, auto_padding, name)

