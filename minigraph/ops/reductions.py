"""Reductions over static axes (reduce_sum, reduce_mean, reduce_max) and softmax / log_softmax.

CNTK defaults: an explicit ``axis`` keeps the reduced axes with size 1 (``keepdims=True``);
``axis=None`` reduces every static axis to a scalar per sample (static shape ``()``, run-time
``(N,)``). The batch axis is never reduced: use the loss's per-sample values for that.
"""
from __future__ import annotations

import math

import numpy as np

from ..checks import check_bool, check_int, check_ints
from .base import Inferred, Op, cached, check_axis, export, make, normalize_axes, register_op


def _kept_shape(shape, axes) -> tuple:
    """``shape`` with the reduced ``axes`` set to 1."""
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


class ReduceOp(Op):
    """``attrs``: ``axis`` (list of ints, or None for all) and ``keepdims``."""

    def __init__(self, name: str, kind: str):
        self.name, self.kind = name, kind
        self.saves_inputs = self.saves_output = kind == "max"

    @staticmethod
    def _axes(shape, attrs, label) -> tuple:
        return normalize_axes(attrs["axis"], len(shape), label)

    def infer(self, in_shapes, in_dtypes, attrs, label):
        shape = tuple(in_shapes[0])
        axes = self._axes(shape, attrs, label)
        if attrs["axis"] is None:
            return Inferred(())
        if attrs["keepdims"]:
            return Inferred(_kept_shape(shape, axes))
        return Inferred(tuple(d for i, d in enumerate(shape) if i not in axes))

    def _plan(self, step) -> tuple[tuple, tuple, int]:
        """Reduced array axes (after the batch axis), the static shape with them kept as 1, and how
        many elements each result sums (once per shape)."""
        def plan():
            shape = step.in_shapes[0]
            axes = self._axes(shape, step.attrs, step.label)
            return tuple(a + 1 for a in axes), _kept_shape(shape, axes), math.prod(shape[a] for a in axes)
        return cached(step, "reduction", plan)

    def forward(self, step, xs, ctx):
        x = xs[0]
        axes, _, count = self._plan(step)
        if self.kind == "max":
            y = np.max(x, axis=axes, keepdims=True)
        else:
            y = np.sum(x, axis=axes, keepdims=True)
            if self.kind == "mean":
                y /= count
        return y.reshape((x.shape[0], *step.out_shape)), None

    def vjp(self, step, g, xs, y, residual, needs):
        axes, kept, count = self._plan(step)
        g = g.reshape((g.shape[0], *kept))
        if self.kind == "sum":
            return [np.broadcast_to(g, step.in_array_shapes[0])]
        if self.kind == "mean":
            return [np.broadcast_to(g / count, step.in_array_shapes[0])]
        # max: the gradient goes to the maximal entries, shared equally between ties
        mask = xs[0] == y.reshape(g.shape)
        return [mask * (g / mask.sum(axis=axes, keepdims=True, dtype=g.dtype))]


REDUCE = {kind: register_op(ReduceOp(f"Reduce{kind.capitalize()}", kind)) for kind in ("sum", "mean", "max")}


def _reduce(kind: str, x, axis, keepdims, name):
    fn = f"reduce_{kind}"
    axes = check_ints(axis, "axis", fn, optional=True)
    attrs = {"axis": None if axes is None else list(axes), "keepdims": check_bool(keepdims, "keepdims", fn)}
    return make(REDUCE[kind], [x], attrs, name)


@export(builds=REDUCE["sum"])
def reduce_sum(x, axis=None, keepdims: bool = True, name: str = ""):
    """Sum over static ``axis`` (int or list; size 1 kept unless ``keepdims=False``); ``axis=None``
    sums every static axis: shape ``()`` per sample."""
    return _reduce("sum", x, axis, keepdims, name)


@export(builds=REDUCE["mean"])
def reduce_mean(x, axis=None, keepdims: bool = True, name: str = ""):
    """Mean over static ``axis``; shapes as :func:`reduce_sum`."""
    return _reduce("mean", x, axis, keepdims, name)


@export(builds=REDUCE["max"])
def reduce_max(x, axis=None, keepdims: bool = True, name: str = ""):
    """Maximum over static ``axis``; shapes as :func:`reduce_sum`. Ties share the gradient equally."""
    return _reduce("max", x, axis, keepdims, name)


def stable_softmax(x: np.ndarray, axis: int, log: bool = False) -> np.ndarray:
    """softmax (or log_softmax) of an array along ``axis``: shifted by the maximum so that exp never
    overflows, and never subtracting two large numbers (keeps float32 precise for large inputs)."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    total = np.sum(e, axis=axis, keepdims=True)
    return shifted - np.log(total) if log else e / total


class SoftmaxOp(Op):
    """``softmax`` or ``log_softmax`` along one static axis; the vjp only reads the output."""

    saves_inputs = False
    forward_temporaries = backward_temporaries = 2.0

    def __init__(self, name: str, log: bool):
        self.name, self.log = name, log

    def infer(self, in_shapes, in_dtypes, attrs, label):
        check_axis(attrs["axis"], len(in_shapes[0]), label)
        return Inferred(tuple(in_shapes[0]))

    @staticmethod
    def _axis(step) -> int:
        """The array axis (after the batch axis), once per shape."""
        return cached(step, "axis", lambda: check_axis(step.attrs["axis"], len(step.out_shape), step.label) + 1)

    def forward(self, step, xs, ctx):
        return stable_softmax(xs[0], self._axis(step), self.log), None

    def vjp(self, step, g, xs, y, residual, needs):
        axis = self._axis(step)
        if self.log:
            return [g - np.exp(y) * np.sum(g, axis=axis, keepdims=True)]
        return [y * (g - np.sum(g * y, axis=axis, keepdims=True))]


SOFTMAX = register_op(SoftmaxOp("Softmax", log=False))
LOG_SOFTMAX = register_op(SoftmaxOp("LogSoftmax", log=True))


def _softmax_node(op, x, axis, name):
    return make(op, [x], {"axis": check_int(axis, "axis", op.name)}, name)


@export(builds=SOFTMAX)
def softmax(x, axis: int = -1, name: str = ""):
    """``exp(x) / sum(exp(x))`` along static ``axis`` (computed stably); same shape as ``x``."""
    return _softmax_node(SOFTMAX, x, axis, name)


@export(builds=LOG_SOFTMAX)
def log_softmax(x, axis: int = -1, name: str = ""):
    """``x - log(sum(exp(x)))`` along static ``axis`` (computed stably); same shape as ``x``."""
    return _softmax_node(LOG_SOFTMAX, x, axis, name)
