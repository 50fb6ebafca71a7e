"""Ops that move elements without arithmetic: reshape, transpose, slice (and ``x[...]``), splice, cast.

All work on static axes only (the batch axis is implicit) and accept symbolic dims: sizes are
computed with Dim arithmetic at build time and checked again with concrete ints at run time.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..checks import check_int, check_ints, is_int
from ..graph import Node, as_node, normalize_dtype
from ..shapes import Dim, as_shape, dim, is_known, names_of, num_elements, shape_str, subs_shape
from .base import BUILDERS, Inferred, Op, ShapeError, cached, check_axis, export, make, register_op


def _check_no_inferred(shape, label: str) -> None:
    if any(is_known(d) and d < 0 for d in shape):
        raise ShapeError(f"{label}: input shape {shape_str(shape)} still has InferredDimension entries; "
                         f"only ops that can infer them (times, convolution) may consume such a parameter")


# reshape --------------------------------------------------------------------------------------
class ReshapeOp(Op):
    name = "Reshape"
    saves_inputs = saves_output = False
    returns_view = passes_gradient = True
    uses_bindings = True  # named target dims get their sizes from the run's bindings

    def infer(self, in_shapes, in_dtypes, attrs, label):
        shape = tuple(in_shapes[0])
        _check_no_inferred(shape, label)
        target = list(subs_shape(as_shape(attrs["shape"]), attrs.get("bindings", {})))
        total = num_elements(shape)
        wanted = f"cannot reshape {shape_str(shape)} ({total} elements) to {shape_str(target)}"
        if -1 in [d for d in target if is_known(d)]:
            at = [i for i, d in enumerate(target) if is_known(d) and d == -1][0]
            known = num_elements(target[:at] + target[at + 1:])
            missing = total // known
            if (is_known(total) and is_known(known) and total % known) or missing * known != total:
                raise ShapeError(f"{label}: {wanted}: {total} is not a multiple of {known}")
            target[at] = missing
        elif num_elements(target) != total:
            raise ShapeError(f"{label}: {wanted} ({num_elements(target)} elements); the number of elements "
                             f"must stay the same (use -1 for one dimension to have it computed)")
        return Inferred(tuple(target))

    def forward(self, step, xs, ctx):
        return xs[0].reshape((xs[0].shape[0], *step.out_shape)), None

    def vjp(self, step, g, xs, y, residual, needs):
        return [g.reshape(step.in_array_shapes[0])]


RESHAPE = register_op(ReshapeOp())


@export(builds=RESHAPE)
def reshape(x, shape, name: str = "") -> Node:
    """``x`` with static shape ``shape`` (same number of elements; the batch axis is kept).

    One entry may be -1 (computed). Entries may be names or expressions over the names in ``x``'s
    shape: ``(3, "H", "W") -> ("H*W", 3)``, and back ``("H*W", 3) -> (3, "H", "W")``.
    """
    x = as_node(x)
    target = [dim(d) for d in ((shape,) if isinstance(shape, (int, str, Dim)) else shape)]
    if sum(1 for d in target if is_known(d) and d == -1) > 1:
        raise ValueError(f"reshape: shape {shape_str(target)} has more than one -1")
    bad = [d for d in target if is_known(d) and (d < -1 or d == 0)]
    if bad:
        raise ValueError(f"reshape: shape {shape_str(target)} has invalid size {bad[0]}; sizes are positive (or -1)")
    attrs = {"shape": [d if is_known(d) else str(d) for d in target]}
    unknown = names_of(target) - names_of(x.shape)
    if unknown:
        raise ShapeError(f"reshape: shape {shape_str(target)} uses {', '.join(sorted(unknown))}, which "
                         f"{'does' if len(unknown) == 1 else 'do'} not occur in the input shape {shape_str(x.shape)}; "
                         f"use -1 for the one dimension to compute")
    return make(RESHAPE, [x], attrs, name)


# transpose -------------------------------------------------------------------------------------
class TransposeOp(Op):
    name = "Transpose"
    saves_inputs = saves_output = False
    returns_view = passes_gradient = True

    @staticmethod
    def _perm(rank, attrs, label):
        perm = [check_axis(p, rank, label) for p in attrs["perm"]]
        if sorted(perm) != list(range(rank)):
            raise ShapeError(f"{label}: perm {list(attrs['perm'])} is not a permutation of the {rank} static axes "
                             f"(expected an order of {list(range(rank))})")
        return perm

    def infer(self, in_shapes, in_dtypes, attrs, label):
        shape = tuple(in_shapes[0])
        return Inferred(tuple(shape[p] for p in self._perm(len(shape), attrs, label)))

    def _array_perms(self, step) -> tuple[tuple, tuple]:
        """The permutation of the arrays (batch axis first) and its inverse, once per shape."""
        def plan():
            perm = self._perm(len(step.in_shapes[0]), step.attrs, step.label)
            return (0, *(p + 1 for p in perm)), (0, *(int(i) + 1 for i in np.argsort(perm)))
        return cached(step, "perms", plan)

    def forward(self, step, xs, ctx):
        return np.transpose(xs[0], self._array_perms(step)[0]), None

    def vjp(self, step, g, xs, y, residual, needs):
        return [np.transpose(g, self._array_perms(step)[1])]


TRANSPOSE = register_op(TransposeOp())


@export(builds=TRANSPOSE)
def transpose(x, perm, name: str = "") -> Node:
    """Permute the static axes: output axis ``i`` is input axis ``perm[i]`` (as ``np.transpose``)."""
    if not isinstance(perm, (list, tuple)) or not all(is_int(p) for p in perm):
        raise TypeError(f"transpose: perm must be a sequence of ints, got {perm!r}")
    return make(TRANSPOSE, [x], {"perm": [int(p) for p in perm]}, name)


@export
def swapaxes(x, axis1: int = 0, axis2: int = 1, name: str = "") -> Node:
    """Exchange two static axes (a :func:`transpose`)."""
    x = as_node(x)
    rank = len(x.shape)
    label = f"swapaxes of {x.label}"
    a, b = check_axis(axis1, rank, label), check_axis(axis2, rank, label)
    perm = list(range(rank))
    perm[a], perm[b] = b, a
    return transpose(x, perm, name)


# slice and x[...] --------------------------------------------------------------------------------
class SliceOp(Op):
    """Per axis ``begin:end:stride``; ``squeeze_axes`` (from integer indices in ``x[...]``) are dropped."""

    name = "Slice"
    saves_inputs = saves_output = False
    returns_view = True

    @staticmethod
    def _ranges(shape, attrs, label):
        """``{axis: (begin, end, stride)}`` with negative indices resolved (``end <= 0`` counts from the end)."""
        ranges = {}
        for axis, b, e, s in zip(attrs["axis"], attrs["begin_index"], attrs["end_index"], attrs["strides"]):
            axis = check_axis(axis, len(shape), label)
            if axis in ranges:
                raise ValueError(f"{label}: axis {axis} is sliced twice")
            d = shape[axis]
            begin = d + b if b < 0 else b
            end = d + e if e <= 0 else e
            if is_known(d) and not 0 <= begin < end <= d:
                raise ShapeError(f"{label}: slice [{b}:{e}] of axis {axis} (size {d}) selects nothing or "
                                 f"goes out of range; valid: -{d} <= begin < end <= {d} (end <= 0 counts from the end)")
            ranges[axis] = (begin, end, s)
        return ranges

    def _sliced(self, shape, attrs, label):
        shape = list(shape)
        for axis, (b, e, s) in self._ranges(shape, attrs, label).items():
            shape[axis] = (e - b + s - 1) // s
        return shape

    def infer(self, in_shapes, in_dtypes, attrs, label):
        _check_no_inferred(in_shapes[0], label)
        shape = self._sliced(in_shapes[0], attrs, label)
        squeeze = set(attrs.get("squeeze_axes", ()))
        return Inferred(tuple(d for i, d in enumerate(shape) if i not in squeeze))

    def _index(self, step) -> tuple[tuple, tuple]:
        """The array index (batch axis whole) and the sliced static shape before squeezing, once per shape."""
        def plan():
            shape = step.in_shapes[0]
            ranges = self._ranges(shape, step.attrs, step.label)
            full = builtins.slice(None)
            index = (full,) + tuple(builtins.slice(*ranges[a]) if a in ranges else full for a in range(len(shape)))
            return index, tuple(self._sliced(shape, step.attrs, step.label))
        return cached(step, "index", plan)

    def forward(self, step, xs, ctx):
        y = xs[0][self._index(step)[0]]
        return y.reshape((y.shape[0], *step.out_shape)), None

    def vjp(self, step, g, xs, y, residual, needs):
        index, sliced = self._index(step)
        gx = np.zeros(step.in_array_shapes[0], g.dtype)
        gx[index] = g.reshape((g.shape[0], *sliced))
        return [gx]


SLICE = register_op(SliceOp())


@export
def slice(x, axis, begin_index, end_index, strides=1, name: str = "") -> Node:  # noqa: A001 - CNTK's name
    """Elements ``begin_index:end_index:strides`` along static ``axis`` (lists for several axes).

    As in CNTK, negative indices count from the end and ``end_index <= 0`` means ``size + end_index``,
    so ``end_index=0`` slices to the end: ``slice(x, 0, -2, 0)`` is ``x[-2:]``.
    """
    axes = list(check_ints(axis, "axis", "slice"))
    cols = [list(check_ints(v, n, "slice"))
            for v, n in ((begin_index, "begin_index"), (end_index, "end_index"), (strides, "strides"))]
    cols[2] = cols[2] * len(axes) if len(cols[2]) == 1 else cols[2]
    if any(len(c) != len(axes) for c in cols):
        raise ValueError(f"slice: axis {axes}, begin_index {cols[0]}, end_index {cols[1]} and strides {cols[2]} "
                         f"must have one entry per axis")
    if any(s <= 0 for s in cols[2]):
        raise ValueError(f"slice: strides {cols[2]} must be positive")
    begins, ends, steps = cols
    return _make_slice(x, axes, begins, ends, steps, [], name)


def _make_slice(x, axes, begins, ends, strides, squeeze, name) -> Node:
    attrs = {"axis": axes, "begin_index": begins, "end_index": ends, "strides": strides}
    if squeeze:
        attrs["squeeze_axes"] = squeeze
    return make(SLICE, [x], attrs, name)


def _saved_slice(x, axis, begin_index, end_index, strides, squeeze_axes=(), name: str = "") -> Node:
    """Rebuild a saved Slice node (see ``BUILDERS``): :func:`slice`'s checks, then the axes an ``x[...]``
    int index dropped, each one that the slice cuts to size 1 (ascending, no repeats)."""
    node = slice(x, axis, begin_index, end_index, strides, name)
    if not squeeze_axes:
        return node
    squeeze = list(check_ints(squeeze_axes, "squeeze_axes", "slice", minimum=0))
    axes = node.op_attributes["axis"]
    if squeeze != sorted(set(squeeze)) or any(a not in axes or node.shape[a] != 1 for a in squeeze):
        raise ValueError(f"slice: squeeze_axes {squeeze} must list, ascending, sliced axes of size 1 (axes {axes}, "
                         f"sliced shape {shape_str(node.shape)})")
    attrs = node.op_attributes
    return _make_slice(x, axes, attrs["begin_index"], attrs["end_index"], attrs["strides"], squeeze, name)


BUILDERS[SLICE.name] = _saved_slice


@export(operator="getitem")
def getitem(x, key) -> Node:
    """``x[key]`` with basic indexing of the static axes: ints, slices with positive steps, ``...``.

    An int index drops its axis (as numpy). Indices must lie inside the axis (no clamping).
    """
    x = as_node(x)
    keys = list(key) if isinstance(key, tuple) else [key]
    rank = len(x.shape)
    if sum(k is Ellipsis for k in keys) > 1:
        raise IndexError(f"{x.label}[...]: only one ellipsis is allowed")
    if Ellipsis in keys:
        at = keys.index(Ellipsis)
        keys[at:at + 1] = [builtins.slice(None)] * (rank - len(keys) + 1)
    if len(keys) > rank:
        raise IndexError(f"{x.label}[...]: {len(keys)} indices for a static shape of rank {rank} "
                         f"{shape_str(x.shape)} (the batch axis is not indexable)")
    cols: list[list[int]] = [[], [], [], []]  # axes, begins, ends, strides
    squeeze = []
    for axis, k in enumerate(keys):
        if is_int(k):
            if k == -1:
                entry = (axis, -1, 0, 1)
            else:
                entry = (axis, int(k), int(k) + 1, 1)
            squeeze.append(axis)
        elif isinstance(k, builtins.slice):
            start, stop, step = k.start or 0, k.stop, 1 if k.step is None else k.step
            if step <= 0 or stop == 0:
                raise IndexError(f"{x.label}[...]: slice {k} of axis {axis} is empty or has a non-positive step")
            if (start, stop, step) == (0, None, 1):
                continue
            entry = (axis, start, 0 if stop is None else stop, step)
        else:
            raise TypeError(f"{x.label}[...]: index {k!r} on axis {axis} is not supported; use ints, slices "
                            f"and ... (basic indexing of the static axes)")
        for col, v in zip(cols, entry):
            col.append(int(v))
    if not cols[0]:
        return x
    axes, begins, ends, steps = cols
    return _make_slice(x, axes, begins, ends, steps, squeeze, "")


# splice ----------------------------------------------------------------------------------------
class SpliceOp(Op):
    name = "Splice"
    saves_inputs = saves_output = False

    def infer(self, in_shapes, in_dtypes, attrs, label):
        shapes = [tuple(s) for s in in_shapes]
        rank = len(shapes[0])
        shown = ", ".join(shape_str(s) for s in shapes)
        if any(len(s) != rank for s in shapes):
            raise ShapeError(f"{label}: inputs {shown} have different ranks; splice needs equal ranks")
        axis = check_axis(attrs["axis"], rank, label)
        for s in shapes:
            _check_no_inferred(s, label)
            for i in range(rank):
                if i != axis and s[i] != shapes[0][i]:
                    raise ShapeError(f"{label}: cannot splice {shown} along axis {attrs['axis']}: axis {i} has "
                                     f"sizes {shapes[0][i]} and {s[i]}; every axis but the spliced one must match")
        out = list(shapes[0])
        out[axis] = sum((s[axis] for s in shapes[1:]), shapes[0][axis])
        return Inferred(tuple(out))

    @staticmethod
    def _plan(step) -> tuple[int, list]:
        """The array axis (after the batch axis) and where the inputs' parts start on it, once per shape."""
        def plan():
            axis = check_axis(step.attrs["axis"], len(step.out_shape), step.label)
            return axis + 1, np.cumsum([s[axis] for s in step.in_shapes])[:-1].tolist()
        return cached(step, "splice", plan)

    def forward(self, step, xs, ctx):
        batch = max(x.shape[0] for x in xs)
        return np.concatenate([np.broadcast_to(x, (batch, *x.shape[1:])) for x in xs], axis=self._plan(step)[0]), None

    def vjp(self, step, g, xs, y, residual, needs):
        axis, bounds = self._plan(step)
        parts = np.split(g, bounds, axis=axis)
        return [(p.sum(axis=0, keepdims=True) if shp[0] == 1 and p.shape[0] != 1 else p) if need else None
                for p, shp, need in zip(parts, step.in_array_shapes, needs)]


SPLICE = register_op(SpliceOp())


@export(builds=SPLICE)
def splice(*inputs, axis: int = -1, name: str = "") -> Node:
    """Concatenate inputs of equal rank along static ``axis`` (CNTK's name for concatenate)."""
    if not inputs:
        raise ValueError("splice: needs at least one input")
    return make(SPLICE, inputs, {"axis": check_int(axis, "axis", "splice")}, name)


# cast ------------------------------------------------------------------------------------------
class CastOp(Op):
    name = "Cast"
    saves_inputs = saves_output = False
    returns_view = passes_gradient = True

    def infer(self, in_shapes, in_dtypes, attrs, label):
        return Inferred(tuple(in_shapes[0]), dtype=np.dtype(attrs["dtype"]))

    def forward(self, step, xs, ctx):
        return xs[0].astype(step.dtype, copy=False), None

    def vjp(self, step, g, xs, y, residual, needs):
        return [g.astype(step.node.inputs_direct[0].dtype, copy=False)]


CAST = register_op(CastOp())


@export(builds=CAST)
def cast(x, dtype, name: str = "") -> Node:
    """``x`` converted to ``dtype`` (float32 or float64): the explicit way to mix precisions."""
    if dtype is None:
        raise TypeError("cast: dtype is required (float32 or float64)")
    return make(CAST, [x], {"dtype": normalize_dtype(dtype).name}, name)
