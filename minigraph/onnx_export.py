"""Export a model to ONNX: ``export_onnx(model, "gen.onnx")`` or ``model.export_onnx("gen.onnx")``.

The exported graph computes what ``model.eval(feed)`` computes (inference: dropout is the
identity, batch normalization uses its running statistics). Every argument of the model becomes a
graph input of shape ``[batch_dim, *static shape]`` (symbolic dims become ONNX ``dim_param`` with
the same names, so one file serves every size); parameters and constants become initializers with
their current values, under stable unique names built from the layer scopes (``up1/W``).

Layout: every ONNX value computed from the graph carries minigraph's leading batch axis (size N,
or 1 for values that depend only on parameters), so static axis ``i`` is ONNX axis ``i + 1``.
Initializers keep their static shape (no batch axis): they broadcast right-aligned exactly as
minigraph broadcasts them, and weights go to Conv/MatMul as they are.

Each op has one converter in :data:`CONVERTERS` (op name -> ``fn(builder, node, inputs, out)``),
which emits the ONNX nodes that compute the node's value into the name ``out``. ``onnx`` is an
optional dependency (``pip install onnx``); nothing here imports it at module level.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .errors import MinigraphError
from .files import write_atomically
from .graph import Function, Node, Variable
from .ops.base import normalize_axes
from .shapes import Dim, DimLike, is_known

MIN_OPSET = 17  # LayerNormalization, Shape(start, end), axes as inputs of Squeeze/Unsqueeze/ReduceSum


class ExportError(MinigraphError, ValueError):
    """A model (or an option) that cannot be written as ONNX: an op without converter, per-sample weights..."""


class OnnxNotInstalledError(MinigraphError, ImportError):
    """The optional ``onnx`` package is missing."""


def require_onnx(caller: str = "export_onnx"):
    """The onnx module, or OnnxNotInstalledError naming the extra to install (``caller`` needs it)."""
    try:
        import onnx
    except ImportError:
        raise OnnxNotInstalledError(f"{caller} needs the onnx package: pip install 'minigraph[onnx]' (or pip "
                                    f"install onnx, and onnxruntime to run the files)") from None
    return onnx


@dataclass(frozen=True)
class Value:
    """A minigraph node's value in the ONNX graph: its name, and whether it has the batch axis
    (graph inputs and computed values do; initializers hold the static shape only)."""

    name: str
    batched: bool
    node: Node

    @property
    def rank(self) -> int:
        """Static rank (batch axis excluded)."""
        return len(self.node.shape)


class Builder:
    """Collects ONNX nodes and initializers; helpers that converters share (batch axis, shapes)."""

    def __init__(self, onnx, opset: int, arguments: dict[Variable, str], varies: set[Node], reserved: set[str]):
        self.onnx, self.opset = onnx, opset
        self.nodes: list = []
        self.initializers: list = []
        self.taken: set[str] = set(reserved)
        self.prefix = "graph"  # intermediate values are named after the node being converted
        self.arguments = arguments
        self.varies = varies  # nodes whose value depends on a fed input (the others have batch size 1)
        self._memo: dict = {}

    # names, nodes, constants ------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.taken:
            name, i = f"{base}_{i}", i + 1
        self.taken.add(name)
        return name

    def add(self, op_type: str, inputs: Sequence[str], out: str | None = None, **attrs) -> str:
        """Append one ONNX node; returns its output name (``out``, or a fresh name after ``op_type``)."""
        out = out or self.fresh(f"{self.prefix}/{op_type}")
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def initializer(self, array: np.ndarray, base: str) -> str:
        """An initializer named ``base`` (made unique)."""
        name = self.fresh(base)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, array, base: str = "const") -> str:
        """A constant tensor (shared between uses of the same value)."""
        array = np.asarray(array)
        key = ("const", array.dtype.str, array.shape, array.tobytes())
        return self._memoized(key, lambda: self.initializer(array, base))

    def ints(self, values) -> str:
        return self.const(np.asarray(list(values), np.int64), "ints")

    def scalar(self, value: float, dtype) -> str:
        return self.const(np.asarray(value, dtype), "scalar")

    def _memoized(self, key, make: Callable[[], str]) -> str:
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    # the batch axis ---------------------------------------------------------------------------
    def batched(self, v: Value) -> str:
        """``v`` with the leading batch axis (size 1 added to an initializer)."""
        if v.batched:
            return v.name
        return self._memoized(("batched", v.name), lambda: self.add("Unsqueeze", [v.name, self.ints([0])]))

    def aligned(self, v: Value, rank: int) -> str:
        """``v`` ready for right-aligned broadcasting against a ``(B, *rank static axes)`` value:
        batched values of lower static rank get size-1 axes after the batch axis (minigraph's ``align``)."""
        if not v.batched or v.rank >= rank:
            return v.name
        axes = list(range(1, 1 + rank - v.rank))
        return self._memoized(("aligned", v.name, rank), lambda: self.add("Unsqueeze", [v.name, self.ints(axes)]))

    def static(self, v: Value, node: Function, what: str) -> str:
        """``v`` without the batch axis, for weights: only values that do not depend on a fed input."""
        if not v.batched:
            return v.name
        if v.node in self.varies:
            raise ExportError(f"{node.label}: its {what} depends on a fed input ({v.node.label}); per-sample "
                              f"weights cannot be exported (ONNX takes one weight tensor for the whole batch)")
        return self._memoized(("static", v.name), lambda: self.add("Squeeze", [v.name, self.ints([0])]))

    # sizes as int64 tensors -------------------------------------------------------------------
    def shape_tensor(self, dims: Sequence[DimLike]) -> str:
        """A 1-D int64 tensor holding ``dims``: a constant when all are known, else computed at run
        time from the sizes of the graph inputs (symbolic dims are expressions over their names)."""
        if all(is_known(d) for d in dims):
            return self.ints(dims)
        parts = [self.ints([d]) if is_known(d) else self._expr(d.expr) for d in dims]
        return self._memoized(("shape", tuple(parts)), lambda: self.add("Concat", parts, self.fresh("shape"), axis=0))

    def reshape(self, x: str, static_shape: Sequence[DimLike], out: str | None = None) -> str:
        """``x`` reshaped to ``(its batch, *static_shape)``."""
        return self.add("Reshape", [x, self.shape_tensor([0, *static_shape])], out)

    def _expr(self, expr: sp.Expr) -> str:
        """A ``[1]`` int64 tensor computing a size expression (sympy, over positive integer names)."""
        return self._memoized(("expr", expr), lambda: self._compile(expr))

    def _compile(self, expr: sp.Expr) -> str:
        if expr.is_Integer:
            return self.ints([int(expr)])
        if expr.is_Symbol:
            return self._symbol(expr.name)
        if isinstance(expr, (sp.Add, sp.Mul, sp.Max, sp.Min)):
            op = {sp.Add: "Add", sp.Mul: "Mul", sp.Max: "Max", sp.Min: "Min"}[type(expr)]
            if op == "Mul" and any(a.is_Rational and not a.is_Integer for a in expr.args):
                raise ExportError(f"size expression {expr} has a fractional factor; cannot compute it in int64")
            terms = [self._expr(a) for a in expr.args]
            result = terms[0]
            for t in terms[1:]:
                result = self.add(op, [result, t], self.fresh("size"))
            return result
        if isinstance(expr, sp.Pow) and expr.exp.is_Integer and expr.exp > 0:
            return self._expr(sp.Mul(*([expr.base] * int(expr.exp)), evaluate=False))
        if isinstance(expr, sp.floor):
            num, den = sp.fraction(sp.together(expr.args[0]))
            if den.is_Integer and den > 0:
                return self._floor_div(self._expr(sp.expand(num)), int(den))
        if isinstance(expr, sp.Mod) and expr.args[1].is_Integer and expr.args[1] > 0:
            return self.add("Mod", [self._expr(expr.args[0]), self.ints([int(expr.args[1])])], self.fresh("size"))
        raise ExportError(f"cannot compute the size expression {expr} in ONNX")

    def _floor_div(self, num: str, den: int) -> str:
        """``num // den`` rounding down also for negative ``num`` (ONNX integer Div truncates)."""
        if den == 1:
            return num
        rest = self.add("Mod", [num, self.ints([den])], self.fresh("size"))  # fmod=0: sign of the divisor
        exact = self.add("Sub", [num, rest], self.fresh("size"))
        return self.add("Div", [exact, self.ints([den])], self.fresh("size"))

    def _symbol(self, name: str) -> str:
        for var, input_name in self.arguments.items():
            for axis, d in enumerate(var.shape):
                if isinstance(d, Dim) and d.expr.is_Symbol and d.expr.name == name:
                    return self.add("Shape", [input_name], self.fresh(name), start=axis + 1, end=axis + 2)
        raise ExportError(f"size {name!r} is not a whole dimension of any input (only named dims such as 'H' "
                          f"can be read from the input shapes at run time)")


# converters -----------------------------------------------------------------------------------
Converter = Callable[[Builder, Function, list, str], None]
CONVERTERS: dict[str, Converter] = {}
"""Op name -> converter ``fn(builder, node, inputs: list[Value], out: str)``."""


def converts(*op_names: str):
    def deco(fn: Converter) -> Converter:
        for op_name in op_names:
            CONVERTERS[op_name] = fn
        return fn
    return deco


def _plain_unary(onnx_op: str) -> Converter:
    def convert(b, node, ins, out):
        b.add(onnx_op, [b.batched(ins[0])], out)
    return convert


PLAIN_UNARY = {"Negate": "Neg", "ReLU": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Exp": "Exp", "Log": "Log",
               "Sqrt": "Sqrt", "Abs": "Abs", "Dropout": "Identity"}
"""minigraph op -> the one attribute-free ONNX op computing it in inference (the importer inverts it)."""

for _name, _onnx_op in PLAIN_UNARY.items():
    CONVERTERS[_name] = _plain_unary(_onnx_op)


@converts("LeakyReLU")
def _leaky_relu(b, node, ins, out):
    b.add("LeakyRelu", [b.batched(ins[0])], out, alpha=float(node.attributes["alpha"]))


@converts("Square")
def _square(b, node, ins, out):
    x = b.batched(ins[0])
    b.add("Mul", [x, x], out)


@converts("Softplus")
def _softplus(b, node, ins, out):
    # max(x, 0) + log(1 + exp(-|x|)): no overflow for large |x|, as minigraph's logaddexp(0, x)
    x = b.batched(ins[0])
    tail = b.add("Exp", [b.add("Neg", [b.add("Abs", [x])])])
    one = b.scalar(1, node.dtype)
    b.add("Add", [b.add("Relu", [x]), b.add("Log", [b.add("Add", [tail, one])])], out)


@converts("Clip")
def _clip(b, node, ins, out):
    a = node.attributes
    b.add("Clip", [b.batched(ins[0]), b.scalar(a["min_value"], node.dtype), b.scalar(a["max_value"], node.dtype)], out)


BINARY = {"Plus": "Add", "Minus": "Sub", "ElementTimes": "Mul", "ElementDivide": "Div"}
"""minigraph op -> the broadcasting ONNX op (the importer inverts it)."""


@converts(*BINARY)
def _binary(b, node, ins, out):
    rank = len(node.shape)
    operands = [b.aligned(v, rank) for v in ins]
    if any(v.batched for v in ins):
        b.add(BINARY[node.op_name], operands, out)
    else:  # two initializers: the result gets its batch axis afterwards
        b.add("Unsqueeze", [b.add(BINARY[node.op_name], operands), b.ints([0])], out)


@converts("Times")
def _times(b, node, ins, out):
    """``(B, *L, *K) @ (*K, *R)``: MatMul of ``(B, *L, k)`` by the matrix ``(k, p)``, or, when the
    right operand depends on a fed input, of ``(B, m, k)`` by ``(B, k, p)``."""
    left, right = ins
    k_rank = right.rank - node.attributes["output_rank"]
    lead = left.node.shape[:left.rank - k_rank]
    contracted, kept = right.node.shape[:k_rank], right.node.shape[k_rank:]
    k, p = math.prod(contracted), math.prod(kept)
    a = b.batched(left)
    if right.node in b.varies:
        y = b.add("MatMul", [b.reshape(a, [math.prod(lead), k]), b.reshape(b.batched(right), [k, p])])
        b.reshape(y, node.shape, out)
        return
    if k_rank != 1:
        a = b.reshape(a, [*lead, k])
    w = b.static(right, node, "right operand")
    matrix = w if right.rank == 2 and k_rank == 1 else b.add("Reshape", [w, b.ints([k, p])])
    if len(kept) == 1:
        b.add("MatMul", [a, matrix], out)
    else:
        b.reshape(b.add("MatMul", [a, matrix]), node.shape, out)


@converts("Reshape")
def _reshape(b, node, ins, out):
    b.reshape(b.batched(ins[0]), node.shape, out)


@converts("Transpose")
def _transpose(b, node, ins, out):
    rank = ins[0].rank
    perm = [p % rank + 1 for p in node.attributes["perm"]]
    b.add("Transpose", [b.batched(ins[0])], out, perm=[0, *perm])


@converts("Slice")
def _slice(b, node, ins, out):
    a = node.attributes
    rank = ins[0].rank
    axes = [ax % rank + 1 for ax in a["axis"]]
    ends = [e if e != 0 else np.iinfo(np.int64).max for e in a["end_index"]]  # minigraph: end 0 = to the end
    squeeze = a.get("squeeze_axes", ())
    sliced = b.add("Slice", [b.batched(ins[0]), b.ints(a["begin_index"]), b.ints(ends), b.ints(axes),
                             b.ints(a["strides"])], None if squeeze else out)
    if squeeze:
        b.add("Squeeze", [sliced, b.ints([s + 1 for s in squeeze])], out)


@converts("Splice")
def _splice(b, node, ins, out):
    rank = len(node.shape)
    axis = node.attributes["axis"] % rank + 1
    parts = [b.batched(v) for v in ins]
    varying = [part for part, v in zip(parts, ins) if v.node in b.varies]
    if varying and len(varying) < len(parts):  # batch-1 parts are repeated over the batch, as minigraph does
        batch = b.add("Shape", [varying[0]], start=0, end=1)
        reps = b.add("Concat", [batch, b.ints([1] * rank)], axis=0)
        parts = [part if v.node in b.varies else b.add("Expand", [part, reps]) for part, v in zip(parts, ins)]
    b.add("Concat", parts, out, axis=axis)


@converts("Cast")
def _cast(b, node, ins, out):
    b.add("Cast", [b.batched(ins[0])], out, to=b.onnx.helper.np_dtype_to_tensor_dtype(node.dtype))


REDUCE = {"ReduceSum": "ReduceSum", "ReduceMean": "ReduceMean", "ReduceMax": "ReduceMax"}
"""minigraph reduction -> ONNX reduction of the same name (the importer inverts it)."""


@converts(*REDUCE)
def _reduce(b, node, ins, out):
    a = node.attributes
    x = b.batched(ins[0])
    axes = [ax + 1 for ax in normalize_axes(a["axis"], ins[0].rank, node.label)]
    if not axes:  # a static scalar: nothing to reduce (ONNX would reduce the batch axis too)
        b.add("Identity", [x], out)
        return
    keepdims = int(a["axis"] is not None and a["keepdims"])
    if node.op_name == "ReduceSum" or b.opset >= 18:  # axes became an input (ReduceSum: opset 13)
        b.add(REDUCE[node.op_name], [x, b.ints(axes)], out, keepdims=keepdims)
    else:
        b.add(REDUCE[node.op_name], [x], out, axes=axes, keepdims=keepdims)


@converts("Softmax", "LogSoftmax")
def _softmax(b, node, ins, out):
    b.add(node.op_name, [b.batched(ins[0])], out, axis=node.attributes["axis"] % ins[0].rank + 1)


@converts("BatchNormalization")
def _batch_norm(b, node, ins, out):
    a = node.attributes
    x = b.batched(ins[0])
    scale, bias, mean, var = (b.static(v, node, what) for v, what in
                              zip(ins[1:], ("scale", "bias", "running mean", "running variance")))
    if a["spatial"]:
        b.add("BatchNormalization", [x, scale, bias, mean, var], out, epsilon=float(a["epsilon"]))
        return
    # one statistic per element: the statistics broadcast right-aligned against (B, *shape)
    inv = b.add("Sqrt", [b.add("Add", [var, b.scalar(a["epsilon"], node.dtype)])])
    xhat = b.add("Div", [b.add("Sub", [x, mean]), inv])
    b.add("Add", [b.add("Mul", [xhat, scale]), bias], out)


@converts("LayerNormalization")
def _layer_norm(b, node, ins, out):
    if not ins[0].rank:
        raise ExportError(f"{node.label}: layer normalization of a scalar (static shape ()) has no ONNX form")
    scale, bias = (b.static(v, node, what) for v, what in zip(ins[1:], ("scale", "bias")))
    b.add("LayerNormalization", [b.batched(ins[0]), scale, bias], out, axis=1,
          epsilon=float(node.attributes["epsilon"]))


# convolutions and pooling -------------------------------------------------------------------------
def _all_known(*seqs) -> bool:
    return all(is_known(d) for seq in seqs for d in seq)


def _pad_tensor(b: Builder, x: str, lower, upper, lead: int, fill: float | None, dtype) -> str:
    """``x`` (batch + ``lead`` axes + spatial) padded by ``lower``/``upper`` on the spatial axes;
    negative pads crop (ONNX Pad removes elements for negative pads)."""
    pads = b.shape_tensor([0] * (1 + lead) + list(lower) + [0] * (1 + lead) + list(upper))
    inputs = [x, pads] if fill in (None, 0) else [x, pads, b.scalar(fill, dtype)]
    return b.add("Pad", inputs)


def _operand_pads(b: Builder, x: str, lower, upper, fill: float, dtype) -> tuple[str, list[int] | None]:
    """Split resolved pads (operand ``(B, C, *spatial)``) into what the ONNX op takes as its ``pads``
    attribute (non-negative ints) and a Pad node before it: negative pads (crops) and, for symbolic
    pads, everything (then the attribute is ``None``)."""
    if not _all_known(lower, upper):
        return _pad_tensor(b, x, lower, upper, 1, fill, dtype), None
    if any(p < 0 for p in (*lower, *upper)):
        x = _pad_tensor(b, x, [min(p, 0) for p in lower], [min(p, 0) for p in upper], 1, None, dtype)
    return x, [max(p, 0) for p in (*lower, *upper)]


def _with_channel_axis(b: Builder, node: Function, x: Value) -> str:
    """The conv operand as ``(B, C, *spatial)``: ``reduction_rank=0`` operands get ``C = 1``."""
    operand = b.batched(x)
    return b.add("Unsqueeze", [operand, b.ints([1])]) if node.attributes["reduction_rank"] == 0 else operand


def _conv_attrs(a: dict) -> dict:
    return {"kernel_shape": list(a["kernel_shape"]), "strides": list(a["strides"]), "dilations": list(a["dilation"]),
            "group": int(a["groups"])}


@converts("Convolution")
def _convolution(b, node, ins, out):
    a = node.attributes
    w = b.static(ins[0], node, "convolution_map")
    x, pads = _operand_pads(b, _with_channel_axis(b, node, ins[1]), a["lower_pad"], a["upper_pad"], 0, node.dtype)
    b.add("Conv", [x, w], out, pads=pads or [0] * (2 * len(a["kernel_shape"])), **_conv_attrs(a))


@converts("ConvolutionTranspose")
def _convolution_transpose(b, node, ins, out):
    """``y[i*s + t*d - lo] += W x[i]``: ONNX's ConvTranspose with ``pads = (lo, hi)``. A negative
    ``hi`` (output rows past the last contribution) is ``output_padding`` up to ``max(s, d) - 1``
    (ONNX's limit); the rest, and a negative ``lo``, are zero rows added by a Pad node after it."""
    a = node.attributes
    w = b.static(ins[0], node, "convolution_map")
    x = _with_channel_axis(b, node, ins[1])
    lower, upper = a["lower_pad"], a["upper_pad"]
    rank = len(a["kernel_shape"])
    if _all_known(lower, upper):
        limits = [max(s, d) - 1 for s, d in zip(a["strides"], a["dilation"])]
        extra = [min(max(-hi, 0), limit) for hi, limit in zip(upper, limits)]
        pads = [max(p, 0) for p in (*lower, *upper)]
        after = ([max(-lo, 0) for lo in lower], [max(-hi, 0) - e for hi, e in zip(upper, extra)])
    else:  # sizes known only at run time: the full result, then crop/extend it with a Pad
        extra, pads = [0] * rank, [0] * (2 * rank)
        after = ([-lo for lo in lower], [-hi for hi in upper])
    needs_pad = not _all_known(*after) or any(after[0]) or any(after[1])
    attrs = dict(_conv_attrs(a), pads=pads, **({"output_padding": extra} if any(extra) else {}))
    y = b.add("ConvTranspose", [x, w], None if needs_pad else out, **attrs)
    if needs_pad:
        b.add("Pad", [y, b.shape_tensor([0, 0, *after[0], 0, 0, *after[1]])], out)


@converts("Pooling")
def _pooling(b, node, ins, out):
    """ONNX pools want ``(B, C, *spatial)``: other leading static axes are merged into ``C`` and split
    again. Padded positions never win a max and are not averaged (``count_include_pad=0``)."""
    a = node.attributes
    window = list(a["pooling_window_shape"])
    rank = len(window)
    in_shape = node.inputs_direct[0].shape
    lead = in_shape[:len(in_shape) - rank]
    x = b.batched(ins[0])
    if len(lead) != 1:
        merged = math.prod(lead) if _all_known(lead) else -1
        x = b.reshape(x, [merged, *in_shape[len(lead):]])
    attrs = {"kernel_shape": window, "strides": list(a["strides"])}
    maximum = a["pooling_type"] == "max"
    padded, pads = _operand_pads(b, x, a["lower_pad"], a["upper_pad"], -np.inf if maximum else 0, node.dtype)
    target = out if len(lead) == 1 else None
    if maximum:
        y = b.add("MaxPool", [padded], target, pads=pads or [0] * (2 * rank), **attrs)
    elif pads is not None:
        y = b.add("AveragePool", [padded], target, pads=pads, count_include_pad=0, **attrs)
    else:  # symbolic pads: average of the zero-padded operand / fraction of real elements per window
        ones = b.add("ConstantOfShape", [b.add("Shape", [x])],
                     value=b.onnx.numpy_helper.from_array(np.ones(1, node.dtype)))
        real = _pad_tensor(b, ones, a["lower_pad"], a["upper_pad"], 1, None, node.dtype)
        y = b.add("Div", [b.add("AveragePool", [padded], **attrs), b.add("AveragePool", [real], **attrs)], target)
    if len(lead) != 1:
        b.reshape(y, node.shape, out)


# the export -------------------------------------------------------------------------------------
def _base_name(node: Node) -> str:
    """The innermost layer's name and the node's name or op (``up1/W``, ``fc/Times``); the builder
    makes it unique (``_1``, ``_2``... in topological order, so names are stable)."""
    layer = next((s.name for s in reversed(node.scope) if s.name), "")
    leaf = node.name or (node.op_name if isinstance(node, Function) else node.kind.lower())
    return leaf if layer in ("", leaf) else f"{layer}/{leaf}"


def _check_options(model, opset, input_names, output_name, batch_dim, onnx) -> tuple[list[str], str]:
    if not isinstance(model, Node):
        raise TypeError(f"export_onnx: model must be a graph node (the network's output), got {type(model).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"export_onnx: opset must be an int in {MIN_OPSET}..{newest} (this onnx package's newest), "
                         f"got {opset!r}")
    arguments = model.arguments
    if input_names is None:
        input_names = [v.name or f"input{i}" for i, v in enumerate(arguments)]
    elif isinstance(input_names, str) or len(input_names) != len(arguments):
        raise ValueError(f"export_onnx: input_names must be a sequence with one name per model argument "
                         f"({[v.label for v in arguments]}), got {input_names!r}")
    input_names = list(input_names)
    if output_name is None:
        output_name = model.name if model.name and model.name not in input_names else "output"
    names = [*input_names, output_name]
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"export_onnx: input and output names must be distinct non-empty strings, got inputs "
                         f"{input_names} and output {output_name!r}")
    symbols = {n for v in arguments for d in v.shape if isinstance(d, Dim) for n in d.names}
    if isinstance(batch_dim, bool) or not (isinstance(batch_dim, int) and batch_dim > 0
                                           or isinstance(batch_dim, str) and batch_dim):
        raise ValueError(f"export_onnx: batch_dim must be a name (dim_param) or a positive int, got {batch_dim!r}")
    if batch_dim in symbols:
        raise ValueError(f"export_onnx: batch_dim {batch_dim!r} is also a named dim of an input; pick another name")
    return input_names, output_name


def _value_info(onnx, name: str, node: Node, batch_dim) -> object:
    dims = [batch_dim, *(d if is_known(d) else str(d) for d in node.shape)]
    return onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(node.dtype), dims)


def export_onnx(model: Node, path=None, *, opset: int = MIN_OPSET, input_names: Sequence[str] | None = None,
                output_name: str | None = None, batch_dim: str | int = "N"):
    """Write ``model`` (a graph's output node) as an ONNX model; returns the ``onnx.ModelProto``.

    ``path``: file to write (atomically: a failed export leaves an existing file intact); ``None``
    only returns the model. ``input_names``: one per ``model.arguments`` (default: their names);
    ``output_name``: default the model's name, else ``"output"``. ``batch_dim``: the batch axis,
    a name (ONNX ``dim_param``) or a fixed int. Inputs are ``[batch_dim, *static shape]``; symbolic
    dims keep their names, so one file runs at every size the model accepts.

    The file computes ``model.eval(feed)`` (inference mode). Ops without a converter raise
    :class:`ExportError` naming the node; a missing ``onnx`` package raises
    :class:`OnnxNotInstalledError` (``pip install onnx``).
    """
    onnx = require_onnx()
    input_names, output_name = _check_options(model, opset, input_names, output_name, batch_dim, onnx)
    order = model.topological_order()
    arguments = dict(zip(model.arguments, input_names))
    varies = set()
    for node in order:
        if isinstance(node, Variable) or any(x in varies for x in node.inputs_direct):
            varies.add(node)
    b = Builder(onnx, opset, arguments, varies, {*input_names, output_name})
    values: dict[Node, Value] = {}
    for node in order:
        b.prefix = _base_name(node)
        if isinstance(node, Variable):
            values[node] = Value(arguments[node], True, node)
        elif not isinstance(node, Function):
            values[node] = Value(b.initializer(np.asarray(node.value), b.prefix), False, node)
        else:
            convert = CONVERTERS.get(node.op_name)
            if convert is None:
                raise ExportError(f"{node.label}: op {node.op_name!r} has no ONNX converter; exportable ops: "
                                  f"{', '.join(sorted(CONVERTERS))}")
            out = output_name if node is model else b.fresh(b.prefix)
            convert(b, node, [values[x] for x in node.inputs_direct], out)
            values[node] = Value(out, True, node)
    if not isinstance(model, Function):  # the model is a leaf: pass it through
        b.add("Identity", [b.batched(values[model])], output_name)
    graph = onnx.helper.make_graph(
        b.nodes, model.name or "minigraph", [_value_info(onnx, n, v, batch_dim) for v, n in arguments.items()],
        [_value_info(onnx, output_name, model, batch_dim)], b.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    from . import __version__
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="minigraph",
                                   producer_version=__version__)
    proto.ir_version = onnx.helper.find_min_ir_version_for(opsets)  # readable by the oldest runtimes of the opset
    onnx.checker.check_model(proto)
    if path is not None:
        write_atomically(path, proto.SerializeToString())
    return proto
