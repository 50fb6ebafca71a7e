"""What the ONNX importer's op modules share: the kinds of values (:class:`Value`, :class:`Weight`,
folded ``np.ndarray`` numbers, pending pads), typed attribute access (:class:`OnnxNode`), the
:class:`Importer` that walks a graph, the op table :data:`IMPORTERS`, and the broadcasting and axis
helpers the op importers use."""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..errors import ModelFileError
from ..graph import Node, constant, input_variable, name_scope, parameter
from ..shapes import Dim, dim, is_known, shape_str

MIN_OPSET = 11


class OnnxImportError(ModelFileError):
    """An ONNX model that minigraph cannot import: an unsupported op or attribute, a malformed graph
    (missing initializer, cycle, wrong attribute type), or a size computation that is not constant."""


class _BatchSize:
    """The batch size inside folded shape vectors: known only at run time."""

    def __repr__(self):
        return "batch"


BATCH = _BatchSize()
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
INT_MAX = 2**62  # ends at or above this mean "to the end" (exporters write INT64_MAX)


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


PENDING = (Ones, PendingPad, PendingAverage)


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
        return [plain_int(v, self, what) for v in arr.reshape(-1)]


MAX_ELEMENTS = 1 << 24
"""The most elements a tensor the importer makes itself may have (folded sizes, padding blocks,
upsampling masks): files asking for more are refused before anything is allocated."""


def check_elements(node: OnnxNode, shape, what: str) -> None:
    count = math.prod(int(d) for d in shape)
    if any(int(d) < 0 for d in shape) or count > MAX_ELEMENTS:
        raise node.error(f"{what} of shape {tuple(int(d) for d in shape)} ({count} elements) is refused: the "
                         f"importer makes tensors of at most {MAX_ELEMENTS} elements itself")


def plain_int(v, node: OnnxNode, what: str) -> int:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    raise node.error(f"{what} holds {v} (known only at run time); minigraph needs it constant when importing")


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
        if isinstance(v, PENDING):
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
        if not IDENTIFIER.fullmatch(text):
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
            if isinstance(d, str) and not IDENTIFIER.fullmatch(d):
                raise ValueError(f"import_onnx: input_shapes[{name!r}]: {d!r} is not a plain name")
    return {k: tuple(v) for k, v in out.items()}


def static_axis(node: OnnxNode, axis: int, rank: int, what: str = "axis") -> int:
    """An ONNX axis of a batched value of ONNX ``rank`` as a static axis (the batch axis is refused)."""
    if not -rank <= axis < rank:
        raise node.error(f"{what} {axis} is out of range for rank {rank}")
    axis %= rank
    if axis == 0:
        raise node.error(f"{what} 0 is the batch axis; minigraph ops work per sample (the batch axis is implicit)")
    return axis - 1


def axes_of(node: OnnxNode, v: Value, axes: Sequence[int], what: str = "axes") -> list[int]:
    """ONNX axes as minigraph axes of ``v`` (static axes when batched)."""
    if v.batched:
        return [static_axis(node, a, v.rank, what) for a in axes]
    return [a % v.rank if -v.rank <= a < v.rank else _out_of_range(node, a, v.rank) for a in axes]


def _out_of_range(node, a, rank):
    raise node.error(f"axis {a} is out of range for rank {rank}")


def reshaped(v: Value, static_shape) -> Value:
    if tuple(v.node.shape) == tuple(static_shape):
        return v
    return Value(ops.reshape(v.node, tuple(static_shape)), v.batched)


def against_batch(node: OnnxNode, v: Value, rank: int) -> Node:
    """An unbatched value ready to broadcast (right-aligned) against a batched value of ONNX ``rank``:
    a leading size-1 axis facing the batch axis is dropped."""
    if v.rank < rank:
        return v.node
    if v.rank == rank and v.node.shape[0] == 1:
        return ops.reshape(v.node, v.node.shape[1:])
    raise node.error(f"a constant of shape {shape_str(v.node.shape)} would broadcast over the batch axis of a "
                     f"rank-{rank} value; per-sample constants are not supported")


def broadcast_operands(node: OnnxNode, values: list[Value]) -> tuple[list[Node], bool]:
    """Nodes for an elementwise op (ONNX broadcasting) and whether the result is batched."""
    batched = [v for v in values if v.batched]
    if not batched:
        return [v.node for v in values], False
    rank = batched[0].rank
    if any(v.rank != rank for v in batched):
        raise node.error(f"inputs computed from the graph inputs have different ranks "
                         f"{[v.rank for v in batched]}; broadcasting against the batch axis is not supported")
    return [v.node if v.batched else against_batch(node, v, rank) for v in values], True


def with_dtype(imp: Importer, node: OnnxNode, i: int, like: Value) -> Value:
    """Input ``i`` as a node; a folded constant adopts ``like``'s dtype."""
    raw = imp.lookup(node.inputs[i], node)
    if isinstance(raw, np.ndarray):
        return Value(imp.const_node(raw, like.node.dtype or np.float32, node.inputs[i]), False)
    return node.value(i)


AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def per_axis_attr(node, key: str, rank: int, default: int, minimum: int = 1) -> tuple[int, ...]:
    values = node.ints(key)
    if values is None:
        return (default,) * rank
    if len(values) != rank or any(v < minimum for v in values):
        raise node.error(f"{key} {values} must have {rank} entries >= {minimum}")
    return tuple(values)


def elements(shape):
    total = 1
    for d in shape:
        total = total * d
    return total


def pad_axis(node, y: Node, axis: int, lo: int, hi: int, fill: float) -> Node:
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
        if count:
            check_elements(node, block, "padding")
        parts.append(constant(np.full(block, fill, y.dtype), dtype=y.dtype) if count else None)
    return ops.splice(*[p for p in (parts[0], y, parts[1]) if p is not None], axis=axis)


def size_vector(items) -> np.ndarray:
    if all(isinstance(v, (int, np.integer)) for v in items):
        return np.array(items, dtype=np.int64)
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


