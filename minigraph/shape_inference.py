"""The run-time shape pass: binding fed arrays to a graph built with symbolic shapes.

Build-time shape inference is part of node construction (:class:`~minigraph.graph.Function`
runs its op's ``infer`` when it is created). Before execution, :func:`feed_arrays` checks and
converts the feed, :func:`bind_feed` binds every named dim from the fed arrays, and :func:`bind`
re-runs the same rules over the whole graph with concrete sizes, so checks that depend on a
symbolic size happen as soon as the size is known.
"""
from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from .errors import GraphError, ShapeError
from .graph import Function, Node, Parameter, Variable
from .limits import check_memory, get_memory_limit
from .shapes import Dim, names_of, shape_str, subs_shape


def settle_dtypes(order: Sequence[Node]) -> None:
    """Before running: nodes still without a dtype (computed from parameters or scalars alone)
    become float32, from the root down so that their inputs follow."""
    for node in reversed(order):
        if node.dtype is None:
            node.adopt_dtype(np.float32)


@dataclass
class Bound:
    """Concrete view of a graph for one feed signature."""

    bindings: dict[str, int]                # name -> int
    shapes: dict[Node, tuple[int, ...]]     # node -> concrete static shape
    attrs: dict[Node, dict[str, Any]]       # function node -> concrete attributes (user + resolved)
    batch: int                # N, the batch size of the fed arrays (1 when nothing is fed)


def feed_arrays(root: Node, feed: Mapping[Any, Any],
                arguments: Sequence[Variable] | None = None) -> dict[Variable, np.ndarray]:
    """Map feed keys (variables or names) to the arguments (default: the root's), every argument
    fed once, each value converted to an array of its variable's dtype with the right rank.

    With a memory limit (:func:`minigraph.set_memory_limit`), a feed whose arrays would take more
    bytes than the limit raises :class:`~minigraph.errors.ResourceError` before anything is converted."""
    if not isinstance(feed, Mapping):
        raise GraphError(f"the feed for {root.label} must be a dict of input -> array (inputs by node or by "
                         f"name), got {type(feed).__name__}")
    arguments = root.arguments if arguments is None else arguments
    resolved = {}
    limited, total = get_memory_limit() is not None, 0
    for key, value in feed.items():
        if isinstance(key, str):
            by_name: dict[str, list] = {}
            for v in arguments:
                by_name.setdefault(v.name, []).append(v)
            matches = by_name.get(key, [])
            if len(matches) != 1:
                problem = "no input" if not matches else f"{len(matches)} inputs"
                raise GraphError(f"feed key {key!r}: {problem} of that name in the graph of {root.label}; "
                                 f"inputs: {[v.name or v.label for v in arguments]}")
            key = matches[0]
        if not isinstance(key, Variable):
            raise GraphError(f"feed key {key!r} is not an input variable; feed inputs by node or by name")
        if key not in arguments:
            raise GraphError(f"feed key {key.label} is not an input of {root.label}; "
                             f"inputs: {[v.label for v in arguments]}")
        if key in resolved:
            raise GraphError(f"feed for {key.label}: given twice (by node and by name {key.name!r}); give one value "
                             f"per input")
        if limited:
            total += _feed_nbytes(key, value)
            check_memory(total, f"the feed of {root.label}", hint="feed fewer samples at a time (smaller minibatches)")
        resolved[key] = _as_feed_array(key, value)
    if len(resolved) != len(arguments):
        missing = [v.label for v in arguments if v not in resolved]
        raise GraphError(f"{root.label} needs a value for {', '.join(missing)} (no feed given for it)")
    return resolved


def _feed_nbytes(var: Variable, value: Any) -> int:
    """Bytes ``value`` takes as an array of ``var``'s dtype, from its shape alone (nested lists are
    measured along their first elements; ragged ones are refused later), so nothing is allocated."""
    shape = getattr(value, "shape", None)
    if not isinstance(shape, tuple):
        shape, item = [], value
        while isinstance(item, (list, tuple)) and len(shape) <= len(var.shape):
            shape.append(len(item))
            item = item[0] if item else None
    if not all(isinstance(d, (int, np.integer)) for d in shape):
        return 0  # not array-like: refused by the conversion
    return math.prod(int(d) for d in shape) * np.dtype(var.dtype).itemsize


def _as_feed_array(var: Variable, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise GraphError(f"feed for {var.label}: cannot convert {type(value).__name__} to an array ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise GraphError(f"feed for {var.label}: dtype {arr.dtype} is not numeric")
    if arr.ndim != len(var.shape) + 1:
        raise ShapeError(f"feed for {var.label}: array of shape {arr.shape} does not match static shape "
                         f"{shape_str(var.shape)}; expected (batch, {', '.join(str(d) for d in var.shape)}) "
                         f"with a leading batch axis")
    return arr.astype(var.dtype, copy=False)


def bind_feed(arrays: Mapping[Variable, np.ndarray]) -> tuple[dict[str, int], int]:
    """Check fed arrays (from :func:`feed_arrays`) against their variables and bind named dims.

    Returns (bindings name -> int, batch size). Two inputs that disagree on a name, or on the
    batch size, raise :class:`ShapeError` naming both.
    """
    bindings: dict[str, int] = {}
    source: dict[str, str] = {}
    batch, batch_src = None, None
    for var, arr in arrays.items():
        if batch is None:
            batch, batch_src = arr.shape[0], var.label
        elif arr.shape[0] != batch:
            raise ShapeError(f"batch sizes differ: {batch_src} has {batch} samples, {var.label} has {arr.shape[0]}")
        for axis, (d, n) in enumerate(zip(var.shape, arr.shape[1:])):
            if isinstance(d, Dim) and len(d.names) == 1 and d.expr.is_Symbol:
                name = d.names[0]
                if name in bindings and bindings[name] != n:
                    raise ShapeError(f"dimension {name} is bound to {bindings[name]} by {source[name]} but to {n} by "
                                     f"{var.label} (axis {axis + 1} of an array of shape {arr.shape})")
                bindings[name], source[name] = n, f"{var.label} (axis {axis + 1} of an array of shape {arr.shape})"
    for var, arr in arrays.items():
        expected = subs_shape(var.shape, bindings)
        for axis, (d, n) in enumerate(zip(expected, arr.shape[1:])):
            if isinstance(d, Dim):
                raise ShapeError(f"feed for {var.label}: dimension {d} cannot be bound from data; name plain "
                                 f"dims (such as 'H') in some input so that they can be bound")
            if d != n:
                raise ShapeError(f"feed for {var.label}: array of shape {arr.shape} does not match static shape "
                                 f"{shape_str(var.shape)} (axis {axis + 1}: expected {d}, got {n})")
    return bindings, batch if batch is not None else 1


def bind(order: Sequence[Node], bindings: Mapping[str, int], batch: int, given: Collection[Node] = ()) -> Bound:
    """Re-run every shape rule with concrete sizes (see module docstring). Nodes in ``given`` (values
    supplied to the run) are leaves: their shapes are substituted, their rules do not run."""
    shapes: dict[Node, tuple[int, ...]] = {}
    attrs: dict[Node, dict[str, Any]] = {}
    for node in order:
        if not isinstance(node, Function) or node in given:
            shape = subs_shape(node.shape, bindings)
            if isinstance(node, Parameter) and not node.is_initialized:
                raise GraphError(f"{node.label}: shape {shape_str(node.shape)} was never inferred")
            shapes[node] = cast(tuple[int, ...], shape)  # bind_feed bound every name of the fed inputs
            continue
        in_shapes = [shapes[x] for x in node.inputs_direct]
        rule_attrs = {**node.op_attributes, "bindings": dict(bindings)} if node.op.uses_bindings else node.op_attributes
        try:
            result = node.op.infer(in_shapes, [x.dtype for x in node.inputs_direct], rule_attrs, node.label)
        except ShapeError as exc:
            raise _bound_failure(node, bindings, exc) from None
        expected = subs_shape(node.shape, bindings)
        if tuple(result.shape) != tuple(expected):
            raise ShapeError(f"{node.label}: with {_show(bindings)} the output shape is {shape_str(result.shape)}, "
                             f"but the graph was built for {shape_str(node.shape)}")
        shapes[node] = tuple(result.shape)
        attrs[node] = {**node.op_attributes, **result.attrs}
    return Bound(dict(bindings), shapes, attrs, batch)


def _bound_failure(node: Function, bindings: Mapping[str, int], exc: ShapeError) -> ShapeError:
    """A shape rule rejected the bound sizes of a node built on symbolic ones: the rule's message, and
    the condition the graph puts on its names (``H >= 3``) when an output size became non-positive."""
    names = names_of(node.shape).union(*(names_of(x.shape) for x in node.inputs_direct))
    if not names:
        return exc
    conditions = []
    for d in node.shape:
        value = d.subs(bindings) if isinstance(d, Dim) else None
        if isinstance(d, Dim) and isinstance(value, int) and value < 1:
            conditions.append(_condition(d, bindings))
    bound = _show({k: bindings[k] for k in sorted(names) if k in bindings})
    built = f"built on symbolic {', '.join(sorted(names))}, output {shape_str(node.shape)}"
    needs = f"; the graph needs {' and '.join(conditions)}" if conditions else ""
    return ShapeError(f"{exc}\n  With {bound} ({built}){needs}")


def _condition(d: Dim, bindings: Mapping[str, int]) -> str:
    """``"H >= 3"`` for a size ``d`` over one name (the smallest value making ``d >= 1``, sizes grow
    with their names), else ``"2*H - W >= 1"``."""
    if len(d.names) != 1:
        return f"{d} >= 1"
    name = d.names[0]

    def valid(value: int) -> bool:
        return d.subs({name: value}) >= 1

    low, high = bindings.get(name, 1), max(bindings.get(name, 1), 1) * 2
    while not valid(high):
        if high > 2 ** 62:
            return f"{d} >= 1"
        low, high = high, high * 2
    while high - low > 1:  # low invalid, high valid
        mid = (low + high) // 2
        low, high = (low, mid) if valid(mid) else (mid, high)
    return f"{name} >= {high} (size {d} >= 1)"


def _show(bindings: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(bindings.items())) or "no bindings"

