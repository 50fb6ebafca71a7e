"""Import an ONNX model as a trainable minigraph graph: ``mg.import_onnx("gen.onnx")``.

The inverse of :mod:`minigraph.onnx_export`. Graph inputs become input variables (named as in the
file, in ONNX order); their first axis is minigraph's implicit batch axis, so it must be a
``dim_param`` (``input_shapes`` lifts that rule). Other ``dim_param`` dims become symbolic dims of the
same name. Float initializers that ops read as tensors become ``Parameter``s named after the
initializer (``Constant``s with ``trainable=False``); BatchNormalization's running mean and variance
become the op's running statistics (updated in training mode). Initializers read as settings (shapes,
axes, scales) stay numbers.

Values are tracked as in the exporter: a node's value carries the batch axis (``batched``: ONNX axis
``i + 1`` is static axis ``i``) or not (weights, constants). Sub-graphs that only compute sizes
(``Shape`` -> ``Gather`` -> ``Equal`` -> ``If``, as PyTorch emits around a dynamic batch) are folded
to numbers while importing; one that depends on the batch size, or on a symbolic size where the
answer differs by value, is an :class:`OnnxImportError` saying so.

Each ONNX op has one importer in :data:`IMPORTERS` (an explicit dict: nothing in the file chooses a
Python name). Attributes are type-checked, unknown or unsupported attributes refused, and any error
leaves nothing behind (the graph is built only from fresh nodes and returned at the end). Text from
the file meets no ``eval``: a ``dim_param`` must be a plain identifier.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy as sp

from . import ops
from .errors import ModelFileError
from .graph import Node, constant, input_variable, name_scope, parameter
from .onnx_export import BINARY, PLAIN_UNARY, REDUCE, OnnxNotInstalledError, require_onnx  # noqa: F401 (re-exported)
from .ops import conv_geometry as geo
from .ops.base import OPS, make
from .shapes import Dim, dim, is_known, make_dim, shape_str

MIN_OPSET = 11


class OnnxImportError(ModelFileError):
    """An ONNX model that minigraph cannot import: an unsupported op or attribute, a malformed graph
    (missing initializer, cycle, wrong attribute type), or a size computation that is not constant."""


class _BatchSize:
    """The batch size inside folded shape vectors: known only at run time."""

    def __repr__(self):
        return "batch"


BATCH = _BatchSize()
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_INT_MAX = 2**62  # ends at or above this mean "to the end" (exporters write INT64_MAX)


@dataclass(frozen=True)
class Value:
    """A tensor computed by minigraph nodes: ONNX shape ``(N, *node.shape)`` when ``batched``, else
    ``node.shape`` (weights, constants)."""

    node: Node
    batched: bool

    @property
    def rank(self) -> int:
        """The ONNX rank (batch axis included when batched)."""
        return len(self.node.shape) + self.batched


class Weight:
    """A float initializer: a Parameter (or Constant) once an op reads it as a tensor, a number when
    an op reads it as a setting. Each ONNX node that reads it as a tensor gets its own copy: exporters
    merge equal-valued tensors (PyTorch writes one initializer for every freshly zeroed bias and
    running mean), which must not tie them when training. The first keeps the initializer's name, the
    others get ``name_1``, ``name_2``..."""

    def __init__(self, name: str, array: np.ndarray):
        self.name, self.array = name, array
        self.nodes: dict[str, Node] = {}  # by the reading ONNX node's name


@dataclass(frozen=True)
class Ones:
    """``ConstantOfShape(Shape(x), 1)``: ones of a batched value's shape (the exporter's element count
    for averages over padded windows)."""

    static: tuple


@dataclass(frozen=True)
class PendingPad:
    """A Pad by amounts known only at run time (symbolic sizes), per static axis. Kept for the Conv or
    pool that reads it, which turns it into one of minigraph's padding modes (the exporter writes
    symbolic pads this way)."""

    source: object  # a batched Value, or Ones
    lower: tuple
    upper: tuple
    fill: float


@dataclass(frozen=True)
class PendingAverage:
    """``AveragePool`` of a :class:`PendingPad`: divided by the same pool of padded :class:`Ones`, it is
    minigraph's average pooling (padding not counted)."""

    source: object
    window: tuple
    strides: tuple
    modes: tuple


_PENDING = (Ones, PendingPad, PendingAverage)


# attributes -----------------------------------------------------------------------------------
class OnnxNode:
    """One ONNX node being imported: typed attribute access (every attribute must be read, so none
    is silently ignored) and its inputs."""

    def __init__(self, importer: Importer, proto):
        self.imp, self.proto = importer, proto
        self.op_type = proto.op_type
        self.name = proto.name or (proto.output[0] if proto.output else proto.op_type)
        self.label = f"ONNX node {self.op_type} '{self.name}'"
        self.opset = importer.opset
        self.inputs = list(proto.input)
        self.outputs = list(proto.output)
        self._attrs = {}
        for a in proto.attribute:
            if a.name in self._attrs:
                raise self.error(f"attribute {a.name!r} is given twice")
            self._attrs[a.name] = a
        self.read: set[str] = set()

    def error(self, message: str) -> OnnxImportError:
        return OnnxImportError(f"{self.label} (opset {self.opset}): {message}")

    def _get(self, key: str, kind: str):
        a = self._attrs.get(key)
        self.read.add(key)
        if a is None:
            return None
        onnx = self.imp.onnx
        expected = getattr(onnx.AttributeProto, kind)
        if a.type != expected:
            got = onnx.AttributeProto.AttributeType.Name(a.type)
            raise self.error(f"attribute {key!r} must be of type {kind}, got {got}")
        return a

    def int(self, key: str, default=None):
        a = self._get(key, "INT")
        return default if a is None else int(a.i)

    def float(self, key: str, default=None):
        """A FLOAT attribute as the decimal its writer meant: ONNX stores float32, so 0.9 arrives as
        0.899999976...; the shortest decimal that rounds to the same float32 is taken (``0.9``)."""
        a = self._get(key, "FLOAT")
        return default if a is None else float(str(np.float32(a.f)))

    def ints(self, key: str, default=None):
        a = self._get(key, "INTS")
        return default if a is None else [int(v) for v in a.ints]

    def floats(self, key: str, default=None):
        a = self._get(key, "FLOATS")
        return default if a is None else [float(v) for v in a.floats]

    def string(self, key: str, default=None, choices: Sequence[str] | None = None):
        a = self._get(key, "STRING")
        if a is None:
            return default
        try:
            text = a.s.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(f"attribute {key!r} is not UTF-8 text") from None
        if choices is not None and text not in choices:
            raise self.error(f"attribute {key}={text[:60]!r} is not supported; supported: {', '.join(choices)}")
        return text

    def tensor(self, key: str):
        a = self._get(key, "TENSOR")
        return None if a is None else self.imp.array_of(a.t, self)

    def graph(self, key: str):
        a = self._get(key, "GRAPH")
        if a is None:
            raise self.error(f"attribute {key!r} (a graph) is missing")
        return a.g

    def check_all_read(self) -> None:
        unread = sorted(set(self._attrs) - self.read)
        if unread:
            raise self.error(f"attribute(s) {', '.join(unread)} not supported for this op")

    # inputs -------------------------------------------------------------------------------------
    def has(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] != ""

    def value(self, i: int) -> Value:
        """Input ``i`` as minigraph nodes (weights become parameters, numbers constants)."""
        return self.imp.value_of(self.inputs[i], self)

    def batched(self, i: int) -> Value:
        v = self.value(i)
        if not v.batched:
            raise self.error(f"input {self.inputs[i]!r} must be computed from the graph inputs (it has no batch "
                             f"axis: a weight or constant of shape {shape_str(v.node.shape)})")
        return v

    def const(self, i: int, what: str) -> np.ndarray:
        """Input ``i`` as a number known at import time (a setting such as a shape or axes)."""
        return self.imp.const_of(self.inputs[i], self, what)

    def const_ints(self, i: int, what: str) -> list[int]:
        arr = self.const(i, what)
        if arr.dtype.kind not in "iu" and arr.dtype != object:
            raise self.error(f"{what} ({self.inputs[i]!r}) must be integers, got dtype {arr.dtype}")
        return [_plain_int(v, self, what) for v in arr.reshape(-1)]


def _plain_int(v, node: OnnxNode, what: str) -> int:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    raise node.error(f"{what} holds {v} (known only at run time); minigraph needs it constant when importing")


# the importer ---------------------------------------------------------------------------------
Importer_ = Callable[[OnnxNode], list]
IMPORTERS: dict[str, Importer_] = {}
"""ONNX op type -> ``fn(node) -> [output values]`` (a :class:`Value` or a folded ``np.ndarray``)."""


def imports(*op_types: str):
    def deco(fn):
        for t in op_types:
            IMPORTERS[t] = fn
        return fn
    return deco


class Importer:
    """Walks one ONNX graph in order, keeping each value's minigraph form by name."""

    def __init__(self, onnx, model, input_shapes, trainable: bool, graph_name: str | None):
        self.onnx = onnx
        self.model = model
        self.trainable = trainable
        self.graph_name = graph_name
        opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
        if "ai.onnx" not in opsets:
            raise OnnxImportError(f"ONNX model imports no default-domain opset (has {sorted(opsets)})")
        self.opset = int(opsets["ai.onnx"])
        newest = onnx.defs.onnx_opset_version()
        if not MIN_OPSET <= self.opset <= newest:
            raise OnnxImportError(f"ONNX model uses opset {self.opset}; supported: {MIN_OPSET}..{newest}")
        self.env: dict[str, object] = {}
        self.input_shapes = input_shapes
        self.file_batch: int | None = None  # a fixed batch size written in the file (with input_shapes)
        self.consts: dict[int, Node] = {}

    # tensors -------------------------------------------------------------------------------------
    def array_of(self, tensor, where) -> np.ndarray:
        if tensor.data_location == self.onnx.TensorProto.EXTERNAL:
            raise OnnxImportError(f"{_where(where)}: tensor {tensor.name!r} is stored in an external file; "
                                  f"load the model with onnx.load(path) (external data) and pass the ModelProto")
        try:
            arr = self.onnx.numpy_helper.to_array(tensor)
        except Exception as exc:  # malformed raw data: wrong byte count, unknown type
            raise OnnxImportError(f"{_where(where)}: tensor {tensor.name!r} cannot be read ({exc})") from None
        if arr.dtype.kind not in "biuf":
            raise OnnxImportError(f"{_where(where)}: tensor {tensor.name!r} has dtype {arr.dtype}; only numbers "
                                  f"are supported")
        return np.array(arr)

    def define(self, name: str, value, where) -> None:
        if not name:
            return
        if name in self.env:
            raise OnnxImportError(f"{_where(where)}: value {name!r} is defined twice (ONNX graphs are in SSA form)")
        self.env[name] = value

    def lookup(self, name: str, node: OnnxNode):
        if name not in self.env:
            later = name in self.produced_later
            why = ("it is computed by a later node: the graph has a cycle or is not topologically sorted"
                   if later else "no graph input, initializer or earlier node defines it (missing initializer?)")
            raise node.error(f"input {name!r} is undefined: {why}")
        return self.env[name]

    def value_of(self, name: str, node: OnnxNode, role: str = "parameter") -> Value:
        v = self.lookup(name, node)
        if isinstance(v, Value):
            return v
        if isinstance(v, _PENDING):
            raise node.error(f"input {name!r} is a padding by sizes known only at run time ({type(v).__name__}); "
                             f"minigraph supports it only directly before Conv, MaxPool or AveragePool, where it "
                             f"becomes a padding mode")
        if isinstance(v, Weight):
            key = f"{node.name}/{role}"  # a node reading it twice in one role (Mul(w, w)) shares one copy
            if key not in v.nodes:
                label = v.name if not v.nodes else f"{v.name}_{len(v.nodes)}"
                make_param = self.trainable and role == "parameter"
                v.nodes[key] = (parameter(init=v.array, name=label) if make_param
                                else constant(v.array, dtype=v.array.dtype, name=label))
            return Value(v.nodes[key], False)
        return Value(self.const_node(v, np.float32, name), False)

    def const_node(self, arr: np.ndarray, dtype, name: str = "") -> Node:
        if arr.dtype == object:
            raise OnnxImportError(f"value {name!r} = {arr.tolist()} depends on sizes known only at run time; "
                                  f"it cannot be used as a tensor")
        dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(dtype)
        return constant(arr.astype(dtype), dtype=dtype, name=name)

    def const_of(self, name: str, node: OnnxNode, what: str) -> np.ndarray:
        v = self.lookup(name, node)
        if isinstance(v, Weight):
            return v.array
        if isinstance(v, Value):
            raise node.error(f"{what} ({name!r}) must be known when importing (a constant or initializer), but it "
                             f"is computed from the graph inputs")
        return v

    # the graph -----------------------------------------------------------------------------------
    def add_inputs(self, graph) -> list:
        initializer_names = {t.name for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in initializer_names]
        shapes = _input_shapes(self.input_shapes, [i.name for i in inputs])
        arguments = []
        for info in inputs:
            var = self._input_variable(info, shapes.get(info.name))
            self.define(info.name, Value(var, True), "graph inputs")
            arguments.append(var)
        return arguments

    def _input_variable(self, info, given):
        onnx = self.onnx
        where = f"graph input {info.name!r}"
        if not info.type.HasField("tensor_type"):
            raise OnnxImportError(f"{where}: only tensor inputs are supported")
        tt = info.type.tensor_type
        if tt.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
            raise OnnxImportError(f"{where}: element type {onnx.TensorProto.DataType.Name(tt.elem_type)} is not "
                                  f"supported (float or double)")
        dtype = np.float32 if tt.elem_type == onnx.TensorProto.FLOAT else np.float64
        if not tt.HasField("shape"):
            if given is None:
                raise OnnxImportError(f"{where} has no shape; pass input_shapes={{{info.name!r}: (...)}}")
            return input_variable(given, dtype, name=info.name)
        dims = list(tt.shape.dim)
        if not dims:
            raise OnnxImportError(f"{where} is a scalar; its first axis must be the batch axis")
        file_dims = [None, *(_file_dim(d, where) for d in dims[1:])]  # the batch axis's name is never parsed
        if dims[0].HasField("dim_value"):
            file_dims[0] = _file_dim(dims[0], where)
        if given is not None:
            if len(given) != len(dims) - 1:
                raise OnnxImportError(f"{where}: input_shapes gives {tuple(given)} ({len(given)} axes) but the file's "
                                      f"input has {len(dims)} axes, the first being the batch axis")
            for axis, (g, f) in enumerate(zip(given, file_dims[1:])):
                if is_known(f) and is_known(dim(g)) and f != dim(g):
                    raise OnnxImportError(f"{where}: input_shapes gives size {g} on axis {axis + 1}, the file {f}")
            if is_known(file_dims[0]):
                self.file_batch = file_dims[0]
            return input_variable(tuple(given), dtype, name=info.name)
        first = dims[0]
        if not first.HasField("dim_param"):
            size = first.dim_value if first.HasField("dim_value") else "unknown"
            raise OnnxImportError(f"{where}: its first axis (size {size}) is not a batch axis (a named dim_param "
                                  f"such as 'N'); minigraph's batch axis is implicit. Export with a dynamic batch "
                                  f"axis, or pass input_shapes={{{info.name!r}: (static shape without batch)}}")
        rest = file_dims[1:]
        if any(d is None for d in rest):
            raise OnnxImportError(f"{where}: axis {rest.index(None) + 1} has no size or name; pass input_shapes")
        if any(isinstance(d, Dim) and str(d) == first.dim_param for d in rest):
            raise OnnxImportError(f"{where}: the batch dim {first.dim_param!r} also names another axis")
        return input_variable(tuple(rest), dtype, name=info.name)

    def run(self, graph, where: str) -> None:
        """Import the nodes of ``graph`` (the main graph or an ``If`` branch) into :attr:`env`."""
        for t in graph.initializer:
            arr = self.array_of(t, where)
            self.define(t.name, Weight(t.name, arr) if arr.dtype.kind == "f" else arr, where)
        if len(graph.sparse_initializer):
            raise OnnxImportError(f"{where}: sparse initializers are not supported")
        outer = getattr(self, "produced_later", set())
        self.produced_later = {o for n in graph.node for o in n.output} | outer
        for proto in graph.node:
            self.import_node(proto)

    def import_node(self, proto) -> None:
        node = OnnxNode(self, proto)
        if proto.domain not in ("", "ai.onnx"):
            raise node.error(f"domain {proto.domain!r} is not supported (only the default ONNX domain)")
        fn = IMPORTERS.get(node.op_type)
        if fn is None:
            raise node.error(f"op type {node.op_type!r} is not supported; supported ops: "
                             f"{', '.join(sorted(IMPORTERS))}")
        try:
            with name_scope(node.name, node.op_type):  # summary and plot show each ONNX node with its pads
                results = fn(node)
        except OnnxImportError:
            raise
        except (ValueError, TypeError, IndexError) as exc:  # minigraph's own checks (ShapeError is a ValueError)
            raise type(exc)(f"{node.label} (opset {node.opset}): {exc}") from exc
        node.check_all_read()
        used = [o for o in node.outputs if o]
        if len(results) < len(used) and any(o for o in node.outputs[len(results):]):
            extra = [o for o in node.outputs[len(results):] if o]
            if any(o in self.consumed for o in extra):
                raise node.error(f"output(s) {extra} are not supported (only the first {len(results)})")
        for out, value in zip(node.outputs, results):
            if isinstance(value, Value) and not value.node.name and value.node.uid >= self.first_uid:
                value.node.name = node.name
            self.define(out, value, node.label)


def _where(where) -> str:
    return where.label if isinstance(where, OnnxNode) else str(where)


def _file_dim(d, where: str):
    """An ONNX dim: an int, a symbolic :class:`Dim` (names only: no expression text is parsed), or None."""
    if d.HasField("dim_value"):
        if d.dim_value <= 0:
            raise OnnxImportError(f"{where}: size {d.dim_value} is not positive")
        return int(d.dim_value)
    if d.HasField("dim_param"):
        text = d.dim_param
        if not _IDENTIFIER.fullmatch(text):
            raise OnnxImportError(f"{where}: dim_param {text[:60]!r} is not a plain name (letters, digits, _); "
                                  f"pass input_shapes to give this input's shape")
        return dim(text)
    return None


def _input_shapes(given, names: list[str]) -> dict:
    if given is None:
        return {}
    if isinstance(given, Mapping):
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"import_onnx: input_shapes names {unknown}, which are not graph inputs ({names})")
        out = dict(given)
    elif isinstance(given, (list, tuple)) and len(given) == len(names) and all(
            isinstance(s, (list, tuple)) for s in given):
        out = dict(zip(names, given))
    else:
        raise TypeError(f"import_onnx: input_shapes must be a dict {{input name: static shape (no batch axis)}} or "
                        f"a list with one shape per graph input ({names}), got {given!r}")
    for name, shape in out.items():
        if not isinstance(shape, (list, tuple)):
            raise TypeError(f"import_onnx: input_shapes[{name!r}] must be a tuple of sizes, got {shape!r}")
        for d in shape:
            if isinstance(d, str) and not _IDENTIFIER.fullmatch(d):
                raise ValueError(f"import_onnx: input_shapes[{name!r}]: {d!r} is not a plain name")
    return {k: tuple(v) for k, v in out.items()}


# helpers shared by the op importers -------------------------------------------------------------
def _static_axis(node: OnnxNode, axis: int, rank: int, what: str = "axis") -> int:
    """An ONNX axis of a batched value of ONNX ``rank`` as a static axis (the batch axis is refused)."""
    if not -rank <= axis < rank:
        raise node.error(f"{what} {axis} is out of range for rank {rank}")
    axis %= rank
    if axis == 0:
        raise node.error(f"{what} 0 is the batch axis; minigraph ops work per sample (the batch axis is implicit)")
    return axis - 1


def _axes_of(node: OnnxNode, v: Value, axes: Sequence[int], what: str = "axes") -> list[int]:
    """ONNX axes as minigraph axes of ``v`` (static axes when batched)."""
    if v.batched:
        return [_static_axis(node, a, v.rank, what) for a in axes]
    return [a % v.rank if -v.rank <= a < v.rank else _out_of_range(node, a, v.rank) for a in axes]


def _out_of_range(node, a, rank):
    raise node.error(f"axis {a} is out of range for rank {rank}")


def _reshaped(v: Value, static_shape) -> Value:
    if tuple(v.node.shape) == tuple(static_shape):
        return v
    return Value(ops.reshape(v.node, tuple(static_shape)), v.batched)


def _against(node: OnnxNode, v: Value, rank: int) -> Node:
    """An unbatched value ready to broadcast (right-aligned) against a batched value of ONNX ``rank``:
    a leading size-1 axis facing the batch axis is dropped."""
    if v.rank < rank:
        return v.node
    if v.rank == rank and v.node.shape[0] == 1:
        return ops.reshape(v.node, v.node.shape[1:])
    raise node.error(f"a constant of shape {shape_str(v.node.shape)} would broadcast over the batch axis of a "
                     f"rank-{rank} value; per-sample constants are not supported")


def _operands(node: OnnxNode, values: list[Value]) -> tuple[list[Node], bool]:
    """Nodes for an elementwise op (ONNX broadcasting) and whether the result is batched."""
    batched = [v for v in values if v.batched]
    if not batched:
        return [v.node for v in values], False
    rank = batched[0].rank
    if any(v.rank != rank for v in batched):
        raise node.error(f"inputs computed from the graph inputs have different ranks "
                         f"{[v.rank for v in batched]}; broadcasting against the batch axis is not supported")
    return [v.node if v.batched else _against(node, v, rank) for v in values], True


def _with_dtype(imp: Importer, node: OnnxNode, i: int, like: Value) -> Value:
    """Input ``i`` as a node; a folded constant adopts ``like``'s dtype."""
    raw = imp.lookup(node.inputs[i], node)
    if isinstance(raw, np.ndarray):
        return Value(imp.const_node(raw, like.node.dtype or np.float32, node.inputs[i]), False)
    return node.value(i)


# elementwise --------------------------------------------------------------------------------------
_UNARY = {onnx_op: mg_op for mg_op, onnx_op in PLAIN_UNARY.items() if onnx_op != "Identity"}
_UNARY["Softplus"] = "Softplus"
_BINARY = {onnx_op: mg_op for mg_op, onnx_op in BINARY.items()}


@imports(*_UNARY)
def _unary(node: OnnxNode):
    v = node.value(0)
    return [Value(make(OPS[_UNARY[node.op_type]], [v.node]), v.batched)]


@imports(*_BINARY)
def _binary(node: OnnxNode):
    values = [node.imp.lookup(n, node) for n in node.inputs[:2]]
    if all(isinstance(v, np.ndarray) for v in values):
        return [_fold_arith(node, *values)]
    if node.op_type == "Div" and all(isinstance(v, PendingAverage) for v in values):
        return [_average_of_pending(node, *values)]
    like = next(node.value(i) for i, v in enumerate(values) if not isinstance(v, np.ndarray))
    nodes, batched = _operands(node, [_with_dtype(node.imp, node, i, like) for i in range(2)])
    return [Value(make(OPS[_BINARY[node.op_type]], nodes), batched)]


@imports("LeakyRelu")
def _leaky_relu(node):
    v = node.value(0)
    return [Value(ops.leaky_relu(v.node, node.float("alpha", 0.01)), v.batched)]


@imports("Elu")
def _elu(node):
    """``relu(x) + alpha * (exp(-relu(-x)) - 1)``: ``alpha * (exp(x) - 1)`` for negative x, without overflow."""
    v = node.value(0)
    alpha = node.float("alpha", 1.0)
    x = v.node
    return [Value(ops.relu(x) + alpha * (ops.exp(-ops.relu(-x)) - 1.0), v.batched)]


@imports("Clip")
def _clip(node):
    v = node.value(0)
    low, high = node.float("min", -np.inf), node.float("max", np.inf)  # the attribute form (opsets < 11)
    for i, what in ((1, "min"), (2, "max")):
        if node.has(i):
            arr = node.const(i, f"Clip {what}")
            if arr.size != 1:
                raise node.error(f"Clip {what} must be a scalar, got shape {arr.shape}")
            if what == "min":
                low = float(arr.reshape(()))
            else:
                high = float(arr.reshape(()))
    return [Value(ops.clip(v.node, low, high), v.batched)]


# linear algebra ------------------------------------------------------------------------------------
@imports("MatMul")
def _matmul(node):
    a, b = node.value(0), node.value(1)
    if a.batched and b.batched and a.rank == b.rank == 3:  # one matrix product per sample
        return [Value(ops.times(a.node, b.node), True)]
    if not a.batched or b.batched:
        raise node.error("supported forms: a value computed from the graph inputs times a weight matrix, or two "
                         "such values of shape (N, m, k) and (N, k, p)")
    if b.rank not in (1, 2) or a.rank < 2:
        raise node.error(f"weight of shape {shape_str(b.node.shape)}: MatMul needs a matrix (or vector) weight and "
                         f"an operand of rank >= 2")
    return [Value(ops.times(a.node, b.node, output_rank=b.rank - 1), True)]


@imports("Gemm")
def _gemm(node):
    a, b = node.value(0), node.value(1)
    alpha, beta = node.float("alpha", 1.0), node.float("beta", 1.0)
    trans_a, trans_b = node.int("transA", 0), node.int("transB", 0)
    if not a.batched or b.batched or trans_a or a.rank != 2 or b.rank != 2:
        raise node.error("supported form: Gemm(A, B[, C]) with A (N, K) computed from the graph inputs, transA=0, "
                         "and B a weight matrix")
    w = ops.transpose(b.node, (1, 0)) if trans_b else b.node
    y = ops.times(a.node, w)
    if alpha != 1.0:
        y = y * alpha
    if node.has(2) and beta != 0.0:
        c = _with_dtype(node.imp, node, 2, a)
        c_node = _against(node, c, 2) if not c.batched else c.node
        y = y + (c_node * beta if beta != 1.0 else c_node)
    return [Value(y, True)]


# convolutions ------------------------------------------------------------------------------------
_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _conv_common(node, x: Value, w: Value):
    if not x.batched or w.batched:
        raise node.error("the operand must be computed from the graph inputs and the kernel must be a weight")
    rank = w.rank - 2
    if rank < 1 or x.rank != rank + 2:
        raise node.error(f"operand of ONNX rank {x.rank} and kernel of shape {shape_str(w.node.shape)}: expected "
                         f"(N, C, *spatial) and (M, C/group, *kernel) with the same number of spatial axes")
    kernel = tuple(w.node.shape[2:])
    given = node.ints("kernel_shape")
    if given is not None and tuple(given) != kernel:
        raise node.error(f"kernel_shape {tuple(given)} does not match the kernel's shape {shape_str(w.node.shape)}")
    strides = _per_axis(node, "strides", rank, 1)
    dilations = _per_axis(node, "dilations", rank, 1)
    group = node.int("group", 1)
    if group < 1:
        raise node.error(f"group={group} must be positive")
    auto_pad = node.string("auto_pad", "NOTSET", _AUTO_PADS)
    pads = node.ints("pads")
    if pads is not None and len(pads) != 2 * rank:
        raise node.error(f"pads {pads} must have {2 * rank} entries (begins then ends of {rank} spatial axes)")
    return rank, kernel, strides, dilations, group, auto_pad, pads


def _per_axis(node, key: str, rank: int, default: int, minimum: int = 1) -> tuple[int, ...]:
    values = node.ints(key)
    if values is None:
        return (default,) * rank
    if len(values) != rank or any(v < minimum for v in values):
        raise node.error(f"{key} {values} must have {rank} entries >= {minimum}")
    return tuple(values)


def _bias(node, y: Node, rank: int, like: Value) -> Node:
    if not node.has(2):
        return y
    b = _with_dtype(node.imp, node, 2, like)
    if b.rank != 1:
        raise node.error(f"bias of shape {shape_str(b.node.shape)} must be 1-D (one value per output channel)")
    return y + ops.reshape(b.node, (b.node.shape[0],) + (1,) * rank)


@imports("Conv")
def _conv(node):
    pending = node.imp.lookup(node.inputs[0], node)
    if isinstance(pending, PendingPad):
        return _conv_after_pad(node, pending)
    x, w = node.value(0), node.value(1)
    rank, kernel, strides, dilations, group, auto_pad, pads = _conv_common(node, x, w)
    spatial = x.node.shape[1:]
    if auto_pad == "NOTSET":
        lower, upper = (list(pads[:rank]), list(pads[rank:])) if pads else ([0] * rank, [0] * rank)
        if any(p < 0 for p in lower + upper):
            raise node.error(f"pads {pads} must be non-negative")
        options = {"lower_pad": tuple(lower), "upper_pad": tuple(upper)}
    elif auto_pad == "VALID":
        options = {"auto_padding": False}
    elif all(is_known(n) for n in spatial):  # SAME: resolve to explicit pads (ONNX clamps them at 0)
        lower, upper = [], []
        for n, k, s, d in zip(spatial, kernel, strides, dilations):
            out = -(-n // s)
            total = max((out - 1) * s + geo.effective_kernel(k, d) - n, 0)
            lo = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            lower.append(lo), upper.append(total - lo)
        options = {"lower_pad": tuple(lower), "upper_pad": tuple(upper)}
    else:  # symbolic sizes: minigraph's own SAME modes compute the same pads at run time
        options = {"auto_padding": auto_pad.lower()}
    y = ops.convolution(w.node, x.node, strides=strides, dilation=dilations, groups=group, **options)
    return [Value(_bias(node, y, rank, x), True)]


def _mode_of(node, n, k: int, s: int, d: int, lo, hi, axis: int):
    """The minigraph padding mode whose pads on this axis are ``(lo, hi)`` (expressions compared as
    such: they must agree for every value of the symbolic sizes)."""
    for mode in (True, "same_upper", "same_lower", False):
        _, mlo, mhi = geo.conv_axis(n, k, s, d, mode)
        if mlo == lo and mhi == hi:
            return mode
    raise node.error(f"pads ({lo}, {hi}) on spatial axis {axis} (size {n}, kernel {k}, stride {s}, dilation {d}) "
                     f"depend on the input size in a way none of minigraph's padding modes (centred, SAME, none) "
                     f"does")


def _pending_modes(node, pending: PendingPad, kernel, strides, dilations, fill: float) -> list:
    x = pending.source
    if not isinstance(x, Value) or not x.batched:
        raise node.error("a run-time Pad must pad a value computed from the graph inputs")
    if not (pending.fill == fill or np.isnan(fill) and np.isnan(pending.fill)):
        raise node.error(f"the Pad before it fills with {pending.fill}; expected {fill}")
    if pending.lower[0] != 0 or pending.upper[0] != 0:
        raise node.error("the Pad before it pads the channel axis")
    if node.ints("pads") and any(node.ints("pads")) or node.string("auto_pad", "NOTSET", _AUTO_PADS) != "NOTSET":
        raise node.error("padding both in a Pad node and in the op is not supported when the sizes are symbolic")
    spatial = x.node.shape[1:]
    return [_mode_of(node, n, k, s, d, lo, hi, axis) for axis, (n, k, s, d, lo, hi) in
            enumerate(zip(spatial, kernel, strides, dilations, pending.lower[1:], pending.upper[1:]))]


def _conv_after_pad(node, pending: PendingPad):
    x, w = pending.source, node.value(1)
    if not isinstance(x, Value):
        raise node.error("a run-time Pad must pad a value computed from the graph inputs")
    rank, kernel, strides, dilations, group, _, _ = _conv_common(node, x, w)
    modes = _pending_modes(node, pending, kernel, strides, dilations, 0.0)
    y = ops.convolution(w.node, x.node, strides=strides, dilation=dilations, groups=group, auto_padding=modes)
    return [Value(_bias(node, y, rank, x), True)]


def transpose_pads(node, n, k: int, s: int, d: int, extra: int, lo, hi, out):
    """ONNX's resolved ConvTranspose geometry on one axis (input ``n``, pads ``lo``/``hi``, output_padding
    ``extra``, output ``out``) as minigraph's ``(lower_pad, upper_pad, output_shape)``: a negative upper
    pad (ONNX extends the output past the last contribution) becomes ``upper_pad=0`` with
    ``output_shape`` (the op resolves it to the negative upper pad and re-checks it); the fourth value
    counts zero rows to append beyond that (ONNX allows ``max(stride, dilation) - 1`` in all)."""
    keff = geo.effective_kernel(k, d)
    upper = (n - 1) * s + keff - lo - out
    if not is_known(lo) or lo < 0:
        raise node.error(f"a negative begin pad ({lo}) is not supported")
    if not is_known(upper):
        raise node.error(f"the output size {out} depends on a symbolic input size ({n}) through output_shape; "
                         f"give the input a fixed size with input_shapes")
    if upper >= 0:
        return lo, upper, None, 0
    if -upper > max(s, d) - 1:
        raise node.error(f"output {out} extends {-upper} rows past the last contribution (input {n}, kernel {k}, "
                         f"stride {s}, dilation {d}, pads ({lo}, {hi}), output_padding {extra}); ONNX allows at "
                         f"most max(stride, dilation) - 1 = {max(s, d) - 1}")
    if not is_known(out):
        raise node.error(f"output_padding {extra} with a symbolic input size ({n}) is not supported")
    # up to stride - 1 rows are the op's own (output_shape); rows beyond are zeros added after it
    rows = min(-upper, s - 1)
    return lo, 0, (out + upper + rows if rows else None), -upper - rows


@imports("ConvTranspose")
def _conv_transpose(node):
    x, w = node.value(0), node.value(1)
    rank, kernel, strides, dilations, group, auto_pad, pads = _conv_common(node, x, w)
    extras = _per_axis(node, "output_padding", rank, 0, minimum=0)
    output_shape = node.ints("output_shape")
    if output_shape is not None:
        if len(output_shape) == rank + 2:
            output_shape = output_shape[2:]
        if len(output_shape) != rank or any(v < 1 for v in output_shape):
            raise node.error(f"output_shape {output_shape} must hold {rank} positive spatial sizes")
    spatial = x.node.shape[1:]
    lower, upper, sizes, zero_rows = [], [], [], []
    for axis, (n, k, s, d, extra) in enumerate(zip(spatial, kernel, strides, dilations, extras)):
        keff = geo.effective_kernel(k, d)
        explicit = auto_pad == "NOTSET" and pads is not None
        if output_shape is not None and not explicit or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = output_shape[axis] if output_shape is not None else n * s
            total = s * (n - 1) + extra + keff - out  # an int for SAME without output_shape
            if not is_known(total):
                raise node.error(f"output_shape with a symbolic input size ({n}) is not supported")
            lo = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            hi = total - lo
        else:
            lo, hi = (pads[axis], pads[axis + rank]) if explicit else (0, 0)
            if lo < 0 or hi < 0:
                raise node.error(f"pads {pads} must be non-negative")
            out = output_shape[axis] if output_shape is not None else s * (n - 1) + extra + keff - lo - hi
        lo, up, size, rows = transpose_pads(node, n, k, s, d, extra, lo, hi, out)
        lower.append(lo), upper.append(up), sizes.append(size), zero_rows.append(rows)
    options = {}
    if any(size is not None for size in sizes):
        options["output_shape"] = tuple(
            size if size is not None else (n - 1) * s + geo.effective_kernel(k, d) - lo - up
            for size, n, k, s, d, lo, up in zip(sizes, spatial, kernel, strides, dilations, lower, upper))
        if not all(is_known(v) for v in options["output_shape"]):
            raise node.error("output sizes depend on a symbolic input size; pass input_shapes")
    y = ops.convolution_transpose(w.node, x.node, strides=strides, dilation=dilations, groups=group,
                                  lower_pad=tuple(lower), upper_pad=tuple(upper), **options)
    for axis, rows in enumerate(zero_rows):
        if rows:
            y = _pad_axis(node, y, axis + 1, 0, rows, 0.0)
    return [Value(_bias(node, y, rank, x), True)]


# pooling -------------------------------------------------------------------------------------------
def _pool_modes(node, spatial, kernel, strides, auto_pad, pads, rank):
    """ONNX pool padding as one minigraph pad mode per axis (minigraph pools take modes only)."""
    modes = []
    for axis, (n, k, s) in enumerate(zip(spatial, kernel, strides)):
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            modes.append(auto_pad.lower())
            continue
        lo, hi = (pads[axis], pads[axis + rank]) if auto_pad == "NOTSET" and pads else (0, 0)
        for mode in (False, True, "same_upper", "same_lower"):
            size, mlo, mhi = geo.conv_axis(n, k, s, 1, mode)
            exact = mlo == lo and mhi == hi
            # a window that stops before the end (negative pad) equals a zero pad with the same outputs
            clipped = is_known(size) and is_known(mhi) and mlo == lo and max(mhi, 0) == hi and \
                (n + lo + hi - k) // s + 1 == size
            if exact or clipped:
                modes.append(mode)
                break
        else:
            raise node.error(f"pads ({lo}, {hi}) on spatial axis {axis} (size {n}, window {k}, stride {s}) are not "
                             f"one of minigraph's pooling paddings (none, centred, SAME)")
    return modes


@imports("MaxPool", "AveragePool")
def _pool(node):
    pending = node.imp.lookup(node.inputs[0], node)
    if isinstance(pending, PendingPad):
        return _pool_after_pad(node, pending)
    x = node.batched(0)
    kernel = node.ints("kernel_shape")
    if not kernel:
        raise node.error("kernel_shape is required")
    rank = len(kernel)
    if x.rank != rank + 2:
        raise node.error(f"operand of rank {x.rank} with a {rank}-D window: expected (N, C, *spatial)")
    strides = _per_axis(node, "strides", rank, 1)
    if _per_axis(node, "dilations", rank, 1) != (1,) * rank:
        raise node.error("dilations other than 1 are not supported for pooling")
    auto_pad = node.string("auto_pad", "NOTSET", _AUTO_PADS)
    pads = node.ints("pads")
    if node.int("ceil_mode", 0):
        raise node.error("ceil_mode=1 is not supported")
    if node.op_type == "MaxPool" and node.int("storage_order", 0):
        raise node.error("storage_order=1 is not supported")
    if node.op_type == "AveragePool" and node.int("count_include_pad", 0) and any(pads or ()):
        raise node.error("count_include_pad=1 with padding is not supported (minigraph averages real elements)")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise node.error("the Indices output is not supported")
    modes = _pool_modes(node, x.node.shape[1:], kernel, strides, auto_pad, pads, rank)
    kind = "max" if node.op_type == "MaxPool" else "average"
    return [Value(ops.pooling(x.node, kind, tuple(kernel), strides=strides, auto_padding=modes), True)]


def _pool_after_pad(node, pending: PendingPad):
    kernel = tuple(node.ints("kernel_shape") or ())
    rank = len(kernel)
    strides = _per_axis(node, "strides", rank, 1)
    node.int("ceil_mode", 0), node.int("count_include_pad", 0), node.int("storage_order", 0)
    if _per_axis(node, "dilations", rank, 1) != (1,) * rank:
        raise node.error("dilations other than 1 are not supported for pooling")
    if node.op_type == "MaxPool":
        modes = _pending_modes(node, pending, kernel, strides, (1,) * rank, -np.inf)
        return [Value(ops.pooling(pending.source.node, "max", kernel, strides=strides, auto_padding=modes), True)]
    source = pending.source
    static = source.static if isinstance(source, Ones) else source.node.shape
    probe = PendingPad(Value(constant(np.zeros((1,) * len(static), np.float32)), True), pending.lower,
                       pending.upper, pending.fill)
    spatial = static[len(static) - rank:]
    modes = tuple(_mode_of(node, n, k, s, 1, lo, hi, axis) for axis, (n, k, s, lo, hi) in enumerate(
        zip(spatial, kernel, strides, probe.lower[-rank:], probe.upper[-rank:])))
    return [PendingAverage(source, kernel, strides, modes)]


def _average_of_pending(node, num: PendingAverage, den: PendingAverage) -> Value:
    """``AveragePool(Pad(x)) / AveragePool(Pad(ones))``: minigraph's average pooling of ``x``."""
    if not isinstance(den.source, Ones) or isinstance(num.source, Ones) or (num.window, num.strides, num.modes) != (
            den.window, den.strides, den.modes) or den.source.static != tuple(num.source.node.shape):
        raise node.error("only AveragePool(Pad(x)) / AveragePool(Pad(ones of x's shape)) with the same window, "
                         "strides and pads is supported when pads are symbolic")
    return Value(ops.pooling(num.source.node, "average", num.window, strides=num.strides, auto_padding=num.modes),
                 True)


@imports("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(node):
    x = node.batched(0)
    axes = list(range(1, x.rank - 1))
    reduce = ops.reduce_mean if node.op_type == "GlobalAveragePool" else ops.reduce_max
    return [Value(reduce(x.node, axis=axes, keepdims=True), True)]


# normalization ---------------------------------------------------------------------------------------
@imports("BatchNormalization")
def _batch_norm(node):
    x = node.batched(0)
    eps = node.float("epsilon", 1e-5)
    momentum = node.float("momentum", 0.9)
    if node.int("training_mode", 0):
        raise node.error("training_mode=1 is not supported (minigraph chooses the mode per run: "
                         "eval(..., training=True))")
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise node.error("the running statistics outputs (training mode) are not supported")
    scale, bias = node.value(1), node.value(2)
    mean, var = (node.imp.value_of(node.inputs[i], node, role="statistic") for i in (3, 4))
    # ONNX: running = momentum * running + (1 - momentum) * batch statistic; minigraph's momentum is the latter
    y = ops.batch_normalization(x.node, scale.node, bias.node, mean.node, var.node, spatial=True, epsilon=eps,
                                momentum=1.0 - momentum)
    return [Value(y, True)]


@imports("InstanceNormalization")
def _instance_norm(node):
    x = node.batched(0)
    eps = node.float("epsilon", 1e-5)
    scale, bias = node.value(1), node.value(2)
    rank = x.rank - 2
    axes = list(range(1, rank + 1))
    mean = ops.reduce_mean(x.node, axis=axes)
    centered = x.node - mean
    var = ops.reduce_mean(ops.square(centered), axis=axes)
    per_channel = (scale.node.shape[0],) + (1,) * rank
    y = centered / ops.sqrt(var + eps) * ops.reshape(scale.node, per_channel) + ops.reshape(bias.node, per_channel)
    return [Value(y, True)]


@imports("LayerNormalization")
def _layer_norm(node):
    x = node.batched(0)
    axis = _static_axis(node, node.int("axis", -1), x.rank)
    eps = node.float("epsilon", 1e-5)
    node.int("stash_type", 1)
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise node.error("the Mean and InvStdDev outputs are not supported")
    scale = node.value(1)
    bias = node.value(2) if node.has(2) else Value(constant(0.0, dtype=x.node.dtype), False)
    if axis == 0:
        return [Value(ops.layer_normalization(x.node, scale.node, bias.node, epsilon=eps), True)]
    axes = list(range(axis, x.rank - 1))
    mean = ops.reduce_mean(x.node, axis=axes)
    centered = x.node - mean
    var = ops.reduce_mean(ops.square(centered), axis=axes)
    return [Value(centered / ops.sqrt(var + eps) * scale.node + bias.node, True)]


# softmax, reductions, dropout ----------------------------------------------------------------------------
@imports("Softmax", "LogSoftmax")
def _softmax(node):
    x = node.batched(0)
    fn = ops.softmax if node.op_type == "Softmax" else ops.log_softmax
    axis = _static_axis(node, node.int("axis", -1 if node.opset >= 13 else 1), x.rank)
    static = x.node.shape
    if node.opset >= 13 or axis == len(static) - 1:
        return [Value(fn(x.node, axis=axis), True)]
    # opsets < 13: softmax over all axes from ``axis`` on, flattened
    flat = ops.reshape(x.node, (*static[:axis], -1))
    return [Value(ops.reshape(fn(flat, axis=-1), static), True)]


_REDUCERS = {onnx_op: mg_op for mg_op, onnx_op in REDUCE.items()}


@imports(*_REDUCERS)
def _reduce(node):
    x = node.batched(0)
    keepdims = bool(node.int("keepdims", 1))
    axes_as_input = node.op_type == "ReduceSum" and node.opset >= 13 or node.opset >= 18
    if axes_as_input:
        axes = node.const_ints(1, "axes") if node.has(1) else None
        if node.int("noop_with_empty_axes", 0) and not axes:
            return [x]
    else:
        axes = node.ints("axes")
    if not axes:
        raise node.error("reducing every axis (the batch axis too) is not supported; give axes without 0")
    static = _axes_of(node, x, axes)
    fn = {"ReduceSum": ops.reduce_sum, "ReduceMean": ops.reduce_mean, "ReduceMax": ops.reduce_max}
    return [Value(fn[_REDUCERS[node.op_type]](x.node, axis=static, keepdims=keepdims), True)]


@imports("Dropout")
def _dropout(node):
    """Dropout stays a dropout (active in training mode, the identity in eval): fine-tuning drops as
    the original model did."""
    x = node.value(0)
    rate = 0.5
    if node.has(1):
        rate = float(node.const(1, "ratio").reshape(()))
    if node.has(2) and bool(node.const(2, "training_mode").reshape(())):
        raise node.error("training_mode=True in the file is not supported (minigraph chooses the mode per run)")
    node.int("seed")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise node.error("the mask output is not supported")
    return [x if rate == 0 else Value(ops.dropout(x.node, rate), x.batched)]


# shapes --------------------------------------------------------------------------------------------------
def _target_shape(node, x: Value, shape: list, allow_zero: bool) -> tuple:
    """An ONNX Reshape target (0 copies, -1 computes) as a static shape for the batched ``x``."""
    dims = [BATCH, *x.node.shape]
    out = []
    for i, s in enumerate(shape):
        if isinstance(s, (int, np.integer)) and s == 0 and not allow_zero:
            if i >= len(dims):
                raise node.error(f"shape {shape}: 0 at position {i} copies an axis the input (rank {len(dims)}) "
                                 f"does not have")
            out.append(dims[i])
        else:
            out.append(s if s is BATCH or isinstance(s, Dim) else int(s))
    file_batch = node.imp.file_batch
    if out and (out[0] is BATCH or (file_batch is not None and out[0] == file_batch)):
        rest = out[1:]
    elif out and out[0] == -1 and all(not (is_known(v) and v == -1) for v in out[1:]):
        rest = out[1:]
        total, kept = _elements(x.node.shape), _elements(rest)
        if not total == kept:
            raise node.error(f"shape {shape} would change the batch axis: the input's samples have {total} "
                             f"elements, the target's {kept}")
    else:
        raise node.error(f"shape {shape}: its first entry must keep the batch axis (0, -1 or the batch size read "
                         f"with Shape)")
    if any(v is BATCH for v in rest):
        raise node.error(f"shape {shape} moves the batch size to another axis")
    return tuple(rest)


def _elements(shape):
    total = 1
    for d in shape:
        total = total * d
    return total


@imports("Reshape")
def _reshape(node):
    shape = node.const(1, "shape").reshape(-1).tolist()
    allow_zero = bool(node.int("allowzero", 0))
    raw = node.imp.lookup(node.inputs[0], node)
    if isinstance(raw, np.ndarray):
        return [raw.reshape([raw.shape[i] if v == 0 and not allow_zero else v for i, v in enumerate(shape)])]
    x = node.value(0)
    if not x.batched:
        target = [x.node.shape[i] if v == 0 and not allow_zero else int(v) for i, v in enumerate(shape)]
        return [Value(ops.reshape(x.node, tuple(target)), False)]
    return [_reshaped(x, _target_shape(node, x, shape, allow_zero))]


@imports("Flatten")
def _flatten(node):
    x = node.batched(0)
    axis = node.int("axis", 1)
    if axis % x.rank != 1 if x.rank > 1 else True:
        raise node.error(f"axis={axis}: only axis 1 (flatten each sample) keeps the batch axis")
    return [_reshaped(x, (_elements(x.node.shape),))]


@imports("Transpose")
def _transpose(node):
    raw = node.imp.lookup(node.inputs[0], node)
    perm = node.ints("perm")
    if isinstance(raw, np.ndarray):
        return [np.transpose(raw, perm)]
    x = node.value(0)
    perm = list(range(x.rank))[::-1] if perm is None else perm
    if sorted(perm) != list(range(x.rank)):
        raise node.error(f"perm {perm} is not a permutation of {x.rank} axes")
    if not x.batched:
        return [Value(ops.transpose(x.node, perm), False)]
    if perm[0] != 0:
        raise node.error(f"perm {perm} moves the batch axis")
    static = [p - 1 for p in perm[1:]]
    return [x if static == sorted(static) else Value(ops.transpose(x.node, static), True)]


@imports("Squeeze", "Unsqueeze")
def _squeeze(node):
    if node.opset >= 13:
        axes = node.const_ints(1, "axes") if node.has(1) else None
    else:
        axes = node.ints("axes")
    raw = node.imp.lookup(node.inputs[0], node)
    if isinstance(raw, np.ndarray):
        return [_fold_squeeze(node, raw, axes)]
    x = node.value(0)
    full = [BATCH, *x.node.shape] if x.batched else list(x.node.shape)
    if node.op_type == "Squeeze":
        if axes is None:
            keep = [d for d in full if not (is_known(d) and d == 1)]
        else:
            drop = {a % len(full) for a in axes}
            if any(not (is_known(full[a]) and full[a] == 1) for a in drop):
                raise node.error(f"axes {axes} of shape {full} are not all of size 1")
            keep = [d for i, d in enumerate(full) if i not in drop]
    else:
        if axes is None:
            raise node.error("axes are required")
        rank = len(full) + len(axes)
        added = {a % rank for a in axes}
        it = iter(full)
        keep = [1 if i in added else next(it) for i in range(rank)]
    if x.batched and (not keep or keep[0] is not BATCH):
        raise node.error(f"axes {axes} touch the batch axis")
    return [_reshaped(x, keep[1:] if x.batched else keep)]


@imports("Concat")
def _concat(node):
    raw = [node.imp.lookup(n, node) for n in node.inputs]
    axis = node.int("axis")
    if axis is None:
        raise node.error("attribute 'axis' is required")
    if all(isinstance(r, np.ndarray) for r in raw):
        return [_fold_concat(node, raw, axis)]
    values = [node.value(i) for i in range(len(node.inputs))]
    batched = [v for v in values if v.batched]
    like = batched[0] if batched else values[0]
    values = [_with_dtype(node.imp, node, i, like) for i in range(len(values))]
    if not batched:
        return [Value(ops.splice(*[v.node for v in values], axis=axis % like.rank), False)]
    static = _static_axis(node, axis, like.rank)
    nodes, _ = _operands(node, values)
    if any(len(n.shape) != len(like.node.shape) for n in nodes):
        raise node.error("inputs of different ranks")
    return [Value(ops.splice(*nodes, axis=static), True)]


@imports("Slice")
def _slice(node):
    starts, ends = node.const_ints(1, "starts"), node.const_ints(2, "ends")
    axes = node.const_ints(3, "axes") if node.has(3) else list(range(len(starts)))
    steps = node.const_ints(4, "steps") if node.has(4) else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise node.error(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} must have equal lengths")
    raw = node.imp.lookup(node.inputs[0], node)
    if isinstance(raw, np.ndarray):
        index = [slice(None)] * raw.ndim
        for b, e, a, s in zip(starts, ends, axes, steps):
            index[a] = slice(b, e, s)
        return [raw[tuple(index)]]
    x = node.value(0)
    cols = [[], [], [], []]
    full = [BATCH, *x.node.shape] if x.batched else list(x.node.shape)
    for b, e, a, s in zip(starts, ends, axes, steps):
        a %= len(full)
        if s <= 0:
            raise node.error(f"steps {steps}: only positive steps are supported")
        if x.batched and a == 0:
            if b == 0 and e >= _INT_MAX:
                continue
            raise node.error("slicing the batch axis is not supported")
        size = full[a]
        if is_known(size):
            b, e, _ = slice(b, e, s).indices(size)
            if e <= b:
                raise node.error(f"the slice {b}:{e} of axis {a} (size {size}) is empty")
            e = 0 if e == size else e
        elif e >= _INT_MAX:
            e = 0
        elif e <= 0 or b < 0 and b < -_INT_MAX:
            raise node.error(f"slice {b}:{e} of the symbolic axis {a} (size {size}) is not supported")
        cols[0].append(a - x.batched), cols[1].append(b), cols[2].append(e), cols[3].append(s)
    if not cols[0]:
        return [x]
    return [Value(ops.slice(x.node, *cols), x.batched)]


@imports("Pad")
def _pad(node):
    mode = node.string("mode", "constant", ("constant",))
    del mode
    fill = 0.0
    if node.has(2):
        fill = float(node.const(2, "constant_value").reshape(()))
    raw = node.const(1, "pads").reshape(-1)
    if raw.dtype == object and not node.has(3):
        return [_pending_pad(node, raw, fill)]
    x = node.value(0)
    pads = node.const_ints(1, "pads")
    axes = node.const_ints(3, "axes") if node.has(3) else list(range(x.rank))
    if len(pads) != 2 * len(axes):
        raise node.error(f"pads {pads} must have two entries per axis ({len(axes)} axes)")
    y = x.node
    for i, a in enumerate(axes):
        lo, hi = pads[i], pads[i + len(axes)]
        if not lo and not hi:
            continue
        static = _axes_of(node, x, [a])[0]
        y = _pad_axis(node, y, static, lo, hi, fill)
    return [Value(y, x.batched)]


def _pending_pad(node, pads: np.ndarray, fill: float) -> PendingPad:
    source = node.imp.lookup(node.inputs[0], node)
    if not isinstance(source, Ones):
        source = node.batched(0)
    rank = len(pads) // 2
    lower, upper = list(pads[:rank]), list(pads[rank:])
    if any(v is BATCH for v in lower + upper):
        raise node.error("pads depend on the batch size")
    if lower[0] != 0 or upper[0] != 0:
        raise node.error("padding the batch axis is not supported")
    return PendingPad(source, tuple(lower[1:]), tuple(upper[1:]), fill)


def _pad_axis(node, y: Node, axis: int, lo: int, hi: int, fill: float) -> Node:
    """``y`` with ``lo``/``hi`` elements of ``fill`` added (negative: removed) on static ``axis``."""
    if lo < 0 or hi < 0:
        size = y.shape[axis]
        begin, end = max(-lo, 0), min(hi, 0)  # end <= 0 counts from the end (0: to the end)
        if is_known(size) and begin - end >= size:
            raise node.error(f"pads ({lo}, {hi}) remove every element of an axis of size {size}")
        y = ops.slice(y, axis, begin, end)
        lo, hi = max(lo, 0), max(hi, 0)
    if not lo and not hi:
        return y
    if not all(is_known(d) for d in y.shape):
        raise node.error(f"padding a value of symbolic shape {shape_str(y.shape)} is not supported")
    parts = []
    for count in (lo, hi):
        block = list(y.shape)
        block[axis] = count
        parts.append(constant(np.full(block, fill, y.dtype), dtype=y.dtype) if count else None)
    return ops.splice(*[p for p in (parts[0], y, parts[1]) if p is not None], axis=axis)


@imports("Upsample", "Resize")
def _resize(node):
    x = node.batched(0)
    mode = node.string("mode", "nearest", ("nearest",))
    del mode
    if node.op_type == "Upsample":
        scales = node.const(1, "scales").reshape(-1).tolist()
    else:
        transform = node.string("coordinate_transformation_mode", "half_pixel",
                                ("half_pixel", "pytorch_half_pixel", "asymmetric"))
        nearest = node.string("nearest_mode", "round_prefer_floor",
                              ("round_prefer_floor", "round_prefer_ceil", "floor"))
        if (transform == "asymmetric") != (nearest == "floor"):
            raise node.error(f"coordinate_transformation_mode={transform!r} with nearest_mode={nearest!r} does not "
                             f"repeat pixels; supported: asymmetric+floor or half_pixel+round_prefer_*")
        for key in ("cubic_coeff_a", "extrapolation_value"):
            node.float(key)
        node.int("exclude_outside", 0)
        node.string("keep_aspect_ratio_policy")
        if node.has(3):
            sizes = node.const_ints(3, "sizes")
            full = [None, *x.node.shape]
            if len(sizes) != x.rank or not all(is_known(d) for d in full[1:]):
                raise node.error(f"sizes {sizes} need a known input shape of rank {x.rank}")
            scales = [1.0] + [s / d for s, d in zip(sizes[1:], full[1:])]
        elif node.has(2):
            scales = node.const(2, "scales").reshape(-1).tolist()
        else:
            raise node.error("needs scales or sizes")
    if len(scales) != x.rank or any(s != int(s) or s < 1 for s in scales) or scales[0] != 1:
        raise node.error(f"scales {scales}: only positive integer scales, with 1 on the batch axis, are supported")
    factors = [int(s) for s in scales[1:]]
    shape = x.node.shape
    split = [d for size, f in zip(shape, factors) for d in (size, 1)]
    ones = constant(np.ones([d for f in factors for d in (1, f)], x.node.dtype), dtype=x.node.dtype)
    spread = ops.reshape(x.node, tuple(split)) * ones
    return [Value(ops.reshape(spread, tuple(size * f for size, f in zip(shape, factors))), True)]


@imports("Cast")
def _cast(node):
    to = node.int("to")
    node.int("saturate")
    onnx = node.imp.onnx
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(to))
    except Exception:
        raise node.error(f"unknown target type {to}") from None
    raw = node.imp.lookup(node.inputs[0], node)
    if isinstance(raw, np.ndarray):
        return [raw if raw.dtype == object else raw.astype(dtype)]
    x = node.value(0)
    if dtype not in (np.float32, np.float64):
        raise node.error(f"casting a tensor to {dtype} is not supported (minigraph computes in float32/float64)")
    return [x if x.node.dtype == dtype else Value(ops.cast(x.node, dtype), x.batched)]


@imports("Identity")
def _identity(node):
    return [node.imp.lookup(node.inputs[0], node)]  # an alias: a weight stays the initializer it names


@imports("Constant")
def _constant(node):
    found = []
    for key, kind in (("value", "tensor"), ("value_float", "float"), ("value_floats", "floats"), ("value_int", "int"),
                      ("value_ints", "ints")):
        v = getattr(node, kind)(key)
        if v is not None:
            found.append((key, v))
    for key in ("sparse_value", "value_string", "value_strings"):
        if key in node._attrs:
            raise node.error(f"attribute {key!r} is not supported (numeric constants only)")
    if len(found) != 1:
        raise node.error(f"exactly one value attribute is required, got {[k for k, _ in found]}")
    key, v = found[0]
    dtype = np.float32 if "float" in key else np.int64 if "int" in key else None
    return [np.array(v, dtype=dtype)]


# size computations folded at import ----------------------------------------------------------------------
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
    return [_vector(dims)]


def _vector(items) -> np.ndarray:
    if all(isinstance(v, (int, np.integer)) for v in items):
        return np.array(items, dtype=np.int64)
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


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
def _where(node):
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
    if math.prod(shape) > 1 << 26:
        raise node.error(f"shape {shape} is too large for a folded constant")
    return [np.full(shape, fill[0], fill.dtype)]


@imports("Range")
def _range(node):
    start, limit, delta = (node.const(i, "Range input").reshape(()) for i in range(3))
    if delta == 0:
        raise node.error("delta is 0")
    return [np.arange(start, limit, delta).astype(np.result_type(start, limit, delta))]


@imports("Expand")
def _expand(node):
    """Broadcasting to a shape; a weight expanded over the batch size (as the exporter does before
    a Concat) stays one sample that minigraph repeats over the batch where it meets batched values."""
    target = node.const(1, "shape").reshape(-1)
    raw = node.imp.lookup(node.inputs[0], node)
    if target.dtype == object and target.size and target[0] is BATCH and not isinstance(raw, np.ndarray):
        x = node.value(0)
        rest = [_plain_int(v, node, "shape") for v in target[1:]]
        if x.batched or x.rank != len(target) or x.node.shape[0] != 1:
            raise node.error(f"expanding shape {shape_str(x.node.shape)} over the batch is not supported")
        y = ops.reshape(x.node, x.node.shape[1:])
        if tuple(rest) != tuple(y.shape) and any(r != 1 for r in rest):
            y = y * constant(np.ones(rest, y.dtype), dtype=y.dtype)
        return [Value(y, True)]
    shape = node.const_ints(1, "shape")
    if isinstance(raw, np.ndarray):
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


def _fold_arith(node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype == object or b.dtype == object:
        if any(v is BATCH for arr in (a, b) for v in arr.reshape(-1)):
            raise node.error("this size computation uses the batch size, which is known only at run time")
        x, y = np.broadcast_arrays(a, b)
        return _vector([_int_op(node.op_type, int(p) if isinstance(p, np.integer) else p,
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
    return [_fold_arith(node, node.const(0, "input"), node.const(1, "input"))]


def _fold_squeeze(node, arr: np.ndarray, axes):
    if node.op_type == "Squeeze":
        return np.squeeze(arr, axis=None if axes is None else tuple(axes))
    if axes is None:
        raise node.error("axes are required")
    out = arr
    for a in sorted(a % (arr.ndim + len(axes)) for a in axes):
        out = np.expand_dims(out, a)
    return out


def _fold_concat(node, arrays: list[np.ndarray], axis: int) -> np.ndarray:
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


# the public function --------------------------------------------------------------------------------------
def import_onnx(model, input_shapes=None, trainable: bool = True, name: str | None = None):
    """Read an ONNX model (a path or an ``onnx.ModelProto``) as a minigraph graph; returns its output node.

    ``input_shapes``: ``{input name: static shape}`` (no batch axis; or a list, one per input) for inputs
    whose file shape has no batch ``dim_param`` or no shape; the first file axis is then taken as the
    batch axis whatever it says. ``trainable``: initializers become ``Parameter``s (else ``Constant``s).
    ``name``: the output node's name (default: the ONNX output's name).

    A model with several outputs returns a dict ``{output name: node}`` in the file's order (each node
    has its own ``arguments``, ``eval``...). Unsupported ops or attributes, malformed graphs and size
    computations that are not constant raise :class:`OnnxImportError`; a missing ``onnx`` package raises
    :class:`OnnxNotInstalledError`.

    >>> import minigraph as mg
    >>> x = mg.input_variable((3, 8, 8), name="x")
    >>> y = mg.layers.ConvolutionTranspose2D(4, 2, strides=2, lower_pad=1, upper_pad=1, name="up")(x)
    >>> back = mg.import_onnx(y.export_onnx())  # doctest: +SKIP
    """
    onnx = require_onnx("import_onnx")
    if isinstance(trainable, bool) is False:
        raise TypeError(f"import_onnx: trainable must be a bool, got {trainable!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"import_onnx: name must be a str, got {name!r}")
    if isinstance(model, (str, Path)):
        path = Path(model)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise OnnxImportError(f"cannot read ONNX model {str(path)!r}: {exc.strerror}") from None
        proto = onnx.ModelProto()
        try:
            proto.ParseFromString(data)
        except Exception:
            raise OnnxImportError(f"{str(path)!r} is not an ONNX model (protobuf parse failed)") from None
        if not proto.HasField("graph"):
            raise OnnxImportError(f"{str(path)!r} is not an ONNX model (no graph)")
    elif isinstance(model, onnx.ModelProto):
        proto = model
    else:
        raise TypeError(f"import_onnx: model must be a path or an onnx.ModelProto, got {type(model).__name__}")
    from .graph import _uids  # nodes created from here on belong to this import (they take its node names)
    imp = Importer(onnx, proto, input_shapes, trainable, name)
    imp.first_uid = next(_uids)
    graph = proto.graph
    imp.consumed = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    arguments = imp.add_inputs(graph)
    imp.run(graph, f"graph {graph.name!r}")
    outputs = {}
    for out in graph.output:
        value = imp.lookup(out.name, _OutputSite(out.name))
        if not isinstance(value, Value) or not value.batched:
            raise OnnxImportError(f"graph output {out.name!r} does not depend on the graph inputs; minigraph "
                                  f"outputs carry the batch axis")
        outputs[out.name] = value.node
    if not outputs:
        raise OnnxImportError("the ONNX graph has no outputs")
    for out_name, node in outputs.items():
        if node not in arguments:
            node.name = name if name is not None and len(outputs) == 1 else out_name
    return next(iter(outputs.values())) if len(outputs) == 1 else outputs


class _OutputSite:
    """Stands for the graph's output list in undefined-name errors."""

    def __init__(self, name: str):
        self.label = f"graph output {name!r}"
        self.opset = "-"

    def error(self, message: str) -> OnnxImportError:
        return OnnxImportError(f"{self.label}: {message}")
