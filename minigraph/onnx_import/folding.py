"""Size computations folded while importing (``Shape`` -> ``Gather`` -> ``Equal`` -> ``If``, the
integer arithmetic exporters emit for sizes): numbers known at import time, with the batch size
(:data:`~minigraph.onnx_import.core.BATCH`) and symbolic sizes as entries that arithmetic carries and
comparisons refuse."""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from .. import ops
from ..graph import constant
from ..shapes import Dim, is_known, make_dim, shape_str
from .core import BATCH, Ones, Value, Weight, check_elements, imports, plain_int, size_vector


@imports("Shape")
def _shape(node):
    raw = node.imp.lookup(node.inputs[0], node)
    if isinstance(raw, np.ndarray):
        dims = list(raw.shape)
    elif isinstance(raw, Weight):
        dims = list(raw.array.shape)
    else:
        dims = [BATCH, *raw.node.shape] if raw.batched else list(raw.node.shape)
    start, end = node.int("start", 0), node.int("end")
    dims = dims[start:end] if end is not None else dims[start:]
    return [size_vector(dims)]


@imports("Size")
def _size(node):
    dims = _shape(node)[0]
    if dims.dtype == object:
        raise node.error("the number of elements depends on the batch size")
    return [np.array(int(np.prod(dims)), np.int64)]


@imports("Gather")
def _gather(node):
    data = node.const(0, "Gather data")
    indices = node.const(1, "indices")
    axis = node.int("axis", 0)
    if indices.dtype.kind not in "iu":
        raise node.error(f"indices must be integers, got {indices.dtype}")
    if not -data.ndim <= axis < data.ndim:
        raise node.error(f"axis {axis} is out of range for rank {data.ndim}")
    size = data.shape[axis]
    if np.any(indices >= size) or np.any(indices < -size):
        raise node.error(f"indices {indices.tolist()} are out of range for an axis of size {size}")
    out = np.take(data, indices, axis=axis)
    if isinstance(out, np.ndarray):
        return [out]
    return [np.array(out, dtype=np.int64 if isinstance(out, (int, np.integer)) else object)]


def _known_ints(node, arr: np.ndarray, what: str) -> np.ndarray:
    """An integer array for a comparison: entries known only at run time cannot be compared."""
    if arr.dtype != object:
        return arr
    for v in arr.reshape(-1):
        if v is BATCH:
            raise node.error(f"{what} depends on the batch size, which is known only at run time; this "
                             f"sub-graph is not constant for minigraph's static shapes")
        if isinstance(v, Dim):
            raise node.error(f"{what} depends on the symbolic size {v}; give the input a fixed size with "
                             f"input_shapes to fold it")
    return arr.astype(np.int64)


_COMPARE = {"Equal": np.equal, "Greater": np.greater, "Less": np.less, "GreaterOrEqual": np.greater_equal,
            "LessOrEqual": np.less_equal, "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor}


@imports(*_COMPARE)
def _compare(node):
    a, b = (_known_ints(node, node.const(i, f"{node.op_type} input"), f"{node.op_type} input") for i in (0, 1))
    return [_COMPARE[node.op_type](a, b)]


@imports("Not")
def _not(node):
    return [np.logical_not(node.const(0, "Not input"))]


@imports("Where")
def _where_op(node):
    cond = _known_ints(node, node.const(0, "condition"), "condition").astype(bool)
    a, b = node.const(1, "Where input"), node.const(2, "Where input")
    return [np.where(cond, a, b)]


@imports("ConstantOfShape")
def _constant_of_shape(node):
    value = node.tensor("value")
    fill = np.zeros(1, np.float32) if value is None else value.reshape(-1)
    raw = node.const(0, "shape").reshape(-1)
    if raw.dtype == object and raw.size and raw[0] is BATCH and fill[0] == 1:
        return [Ones(tuple(raw[1:]))]
    shape = node.const_ints(0, "shape")
    check_elements(node, shape, "ConstantOfShape")
    return [np.full(shape, fill[0], fill.dtype)]


@imports("Range")
def _range(node):
    start, limit, delta = (node.const(i, "Range input").reshape(()) for i in range(3))
    if delta == 0:
        raise node.error("delta is 0")
    check_elements(node, [max(math.ceil((float(limit) - float(start)) / float(delta)), 0)], "Range")
    return [np.arange(start, limit, delta).astype(np.result_type(start, limit, delta))]


@imports("Expand")
def _expand(node):
    """Broadcasting to a shape; a weight expanded over the batch size (as the exporter does before
    a Concat) stays one sample that minigraph repeats over the batch where it meets batched values."""
    target = node.const(1, "shape").reshape(-1)
    raw = node.imp.lookup(node.inputs[0], node)
    if target.dtype == object and target.size and target[0] is BATCH and not isinstance(raw, np.ndarray):
        x = node.value(0)
        rest = [plain_int(v, node, "shape") for v in target[1:]]
        if x.batched or x.rank != len(target) or x.node.shape[0] != 1:
            raise node.error(f"expanding shape {shape_str(x.node.shape)} over the batch is not supported")
        y = ops.reshape(x.node, x.node.shape[1:])
        if tuple(rest) != tuple(y.shape) and any(r != 1 for r in rest):
            y = y * constant(np.ones(rest, y.dtype), dtype=y.dtype)
        return [Value(y, True)]
    shape = node.const_ints(1, "shape")
    if isinstance(raw, np.ndarray):
        check_elements(node, np.broadcast_shapes(raw.shape, tuple(shape)), "Expand")
        return [raw * np.ones(shape, raw.dtype)]
    x = node.value(0)
    full = [BATCH, *x.node.shape] if x.batched else list(x.node.shape)
    if len(shape) < len(full) or any(s != 1 and is_known(d) and s != d for s, d in zip(shape[::-1], full[::-1])):
        raise node.error(f"expanding shape {full} to {shape} is not supported")
    return [x]  # broadcasting consumers stretch size-1 axes themselves


def _int_op(name: str, a, b):
    """One integer size operation on ints or symbolic dims (ONNX integer Div truncates)."""
    if name == "Add":
        return a + b
    if name == "Sub":
        return a - b
    if name == "Mul":
        return a * b
    if name == "Div":
        if is_known(a) and is_known(b):
            return abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
        return a // b
    if name == "Mod":
        return a % b if is_known(a) and is_known(b) else a - (a // b) * b
    expr = (sp.Max if name == "Max" else sp.Min)(*(v.expr if isinstance(v, Dim) else v for v in (a, b)))
    return make_dim(expr)


_ARITH = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


def fold_arith(node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype == object or b.dtype == object:
        if any(v is BATCH for arr in (a, b) for v in arr.reshape(-1)):
            raise node.error("this size computation uses the batch size, which is known only at run time")
        x, y = np.broadcast_arrays(a, b)
        return size_vector([_int_op(node.op_type, int(p) if isinstance(p, np.integer) else p,
                                int(q) if isinstance(q, np.integer) else q)
                        for p, q in zip(x.reshape(-1), y.reshape(-1))]).reshape(x.shape)
    if node.op_type == "Div" and a.dtype.kind in "iu" and b.dtype.kind in "iu":
        if np.any(b == 0):
            raise node.error("integer division by zero")
        return (np.abs(a) // np.abs(b) * np.sign(a) * np.sign(b)).astype(np.result_type(a, b))
    if node.op_type in ("Mod", "Max", "Min"):
        return {"Mod": np.mod, "Max": np.maximum, "Min": np.minimum}[node.op_type](a, b)
    return _ARITH[node.op_type](a, b).astype(np.result_type(a, b))


@imports("Mod", "Max", "Min")
def _int_arith(node):
    if node.op_type == "Mod":
        if node.int("fmod", 0):
            raise node.error("fmod=1 is not supported")
    if len(node.inputs) != 2:
        raise node.error("exactly two inputs are supported")
    return [fold_arith(node, node.const(0, "input"), node.const(1, "input"))]


def fold_squeeze(node, arr: np.ndarray, axes):
    if node.op_type == "Squeeze":
        return np.squeeze(arr, axis=None if axes is None else tuple(axes))
    if axes is None:
        raise node.error("axes are required")
    out = arr
    for a in sorted(a % (arr.ndim + len(axes)) for a in axes):
        out = np.expand_dims(out, a)
    return out


def fold_concat(node, arrays: list[np.ndarray], axis: int) -> np.ndarray:
    if any(a.ndim == 0 for a in arrays):
        raise node.error("Concat of scalars")
    if any(a.dtype == object for a in arrays):
        return np.concatenate([a.astype(object) for a in arrays], axis=axis)
    return np.concatenate(arrays, axis=axis)


@imports("If")
def _if(node):
    cond = _known_ints(node, node.const(0, "the If condition"), "the If condition").reshape(-1)
    if cond.size != 1:
        raise node.error(f"the condition must be one value, got {cond.size}")
    taken = node.graph("then_branch" if bool(cond[0]) else "else_branch")
    node.graph("else_branch" if bool(cond[0]) else "then_branch")
    imp = node.imp
    saved = imp.produced_later
    imp.run(taken, f"{node.label} branch {taken.name!r}")
    imp.produced_later = saved
    if len(taken.output) != len(node.outputs):
        raise node.error(f"the branch has {len(taken.output)} outputs, the node {len(node.outputs)}")
    return [imp.lookup(o.name, node) for o in taken.output]


