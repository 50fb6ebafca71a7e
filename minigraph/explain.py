"""``explain``: how the shape pass derived each number of a node, with the numbers filled in.

:func:`explain` (``node.explain()``) returns an :class:`Explanation` that walks the chain of shapes
up to the node layer by layer: a :class:`NodeExplanation` per op node, with one
:class:`AxisExplanation` per spatial axis for convolutions, transposed convolutions and pooling and a
one-line :attr:`NodeExplanation.rule` for every other op. Everything is a dataclass, so tools and
tests read the numbers; ``str()`` gives the text. Sizes stay symbolic (``N = 2*H - 1``) unless
``feed`` or ``bindings`` bind the names, in which case each derived quantity also carries its bound
number.

Notation (docs/semantics.md): for a transposed convolution ``n`` is its input length, ``N`` its output
length; for a convolution or pooling ``N`` is the input and ``n`` the output; both use
``big index = small index * s + tap * d - lo``. ``k`` kernel, ``s`` stride, ``d`` dilation,
``Keff = (k - 1)*d + 1``, ``lo``/``hi`` the resolved lower/upper pads (negative: zero rows).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .graph import Function, Node, Parameter, Variable
from .ops import conv_geometry as geo
from .shapes import DimLike, is_known, shape_str, subs_shape

__all__ = ["Quantity", "RowSource", "AxisExplanation", "NodeExplanation", "Explanation", "explain",
           "feed_bindings"]

_CONV_OPS = ("Convolution", "ConvolutionTranspose", "Pooling")


@dataclass(frozen=True)
class Quantity:
    """One derived number: ``symbol = formula = value`` (``bound``: the value with the names bound)."""

    name: str
    symbol: str
    formula: str
    filled: str
    value: DimLike
    bound: int | None = None

    def __str__(self):
        text = f"{self.name}: {self.symbol} = {self.formula}"
        if self.filled.strip("()") not in (self.formula, str(self.value)):
            text += f" = {self.filled}"
        if self.formula != str(self.value):
            text += f" = {self.value}"
        if self.bound is not None and not is_known(self.value):
            text += f" -> {self.bound}"
        return text


@dataclass(frozen=True)
class RowSource:
    """Which rows of the other side meet one row: ``row`` of the output, ``taps[i]`` of the kernel
    connecting it with ``rows[i]`` of the input (``None`` when that tap falls on padding)."""

    row: DimLike
    taps: tuple[int, ...]
    rows: tuple[DimLike | None, ...]

    def __str__(self):
        parts = [f"input row {r} (tap {t})" if r is not None else f"padding (tap {t})"
                 for t, r in zip(self.taps, self.rows)]
        return f"output row {self.row} <- " + (", ".join(parts) if parts else "nothing (zero/bias only)")


@dataclass
class AxisExplanation:
    """The derivation of one spatial axis of a convolution, transposed convolution or pooling."""

    axis: int
    input_size: DimLike
    kernel: int
    stride: int
    dilation: int
    pad_mode: str
    effective_kernel: int
    output_size: DimLike
    lower_pad: DimLike
    upper_pad: DimLike
    valid_output_sizes: tuple[DimLike, DimLike] | None = None  # transposed only: first .. last
    requested: int | None = None    # transposed only: output_shape on this axis
    choice: str = ""                # why this output size
    pad_rule: str = ""              # how lo/hi were placed
    zero_rows: tuple[int, int] = (0, 0)   # output rows only padding reaches (negative pads), lower/upper
    quantities: list[Quantity] = field(default_factory=list)
    first_row: RowSource | None = None
    last_row: RowSource | None = None
    bindings: dict = field(default_factory=dict)

    def quantity(self, symbol: str) -> Quantity:
        """The derived quantity called ``symbol`` (``"Keff"``, ``"N"``, ``"lo"``...)."""
        for q in self.quantities:
            if q.symbol == symbol:
                return q
        raise KeyError(f"axis {self.axis} has no quantity {symbol!r}; it has "
                       f"{', '.join(q.symbol for q in self.quantities)}")

    def __str__(self):
        head = (f"axis {self.axis}: input {_bound_text(self.input_size, self.bindings)}, kernel {self.kernel}, "
                f"stride {self.stride}, dilation {self.dilation}, {self.pad_mode}")
        lines = [head] + [f"  {q}" for q in self.quantities]
        if self.valid_output_sizes is not None:
            first, last = self.valid_output_sizes
            lines.append(f"  valid output_shape on this axis: {_range_text(first, last, self.bindings)}")
        if self.choice:
            lines.append(f"  chosen: {self.choice}")
        if self.pad_rule:
            lines.append(f"  pads: {self.pad_rule}")
        for side, count in zip(("start", "end"), self.zero_rows):
            if count:
                lines.append(f"  {count} output row{'s' if count > 1 else ''} at the {side} only padding reaches "
                             f"(a negative pad): zeros before the bias")
        lines += [f"  {row}" for row in (self.first_row, self.last_row) if row is not None]
        return "\n".join(lines)


@dataclass
class NodeExplanation:
    """How one node's output shape follows from its inputs: ``rule`` in one line, ``axes`` per
    spatial axis for convolutions and pooling."""

    node: Node
    label: str
    op: str
    input_shapes: list[tuple]
    output_shape: tuple
    rule: str
    axes: list[AxisExplanation] = field(default_factory=list)
    bindings: dict = field(default_factory=dict)
    layer: str = ""  # the layer path that built the node ("generator/up2"), "" outside layers

    def __str__(self):
        ins = ", ".join(_shape_text(s, self.bindings) for s in self.input_shapes)
        where = f"[{self.layer}] " if self.layer else ""
        lines = [f"{where}{self.label}: {ins} -> {_shape_text(self.output_shape, self.bindings)}", f"  {self.rule}"]
        for ax in self.axes:
            lines += ["  " + line for line in str(ax).splitlines()]
        return "\n".join(lines)


@dataclass
class Explanation:
    """The chain of shapes up to a node: one :class:`NodeExplanation` per op node, inputs first.

    ``explanation.layer("up2")`` keeps the ops of one layer call; ``explanation["up2"]`` is the
    explanation of the node called ``up2`` (an int indexes the chain); ``axes`` are those of the last
    convolution or pooling in the chain.
    """

    root: Node
    nodes: list[NodeExplanation]
    bindings: dict = field(default_factory=dict)
    title: str = ""

    def __getitem__(self, key) -> NodeExplanation:
        if isinstance(key, int):
            return self.nodes[key]
        for e in reversed(self.nodes):
            if e.node.name == key:
                return e
        raise KeyError(f"no node named {key!r} in the explanation of {self.root.label}; names: "
                       f"{sorted({e.node.name for e in self.nodes if e.node.name})}")

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self):
        return len(self.nodes)

    def layer(self, name: str) -> Explanation:
        """The ops built by the layer call(s) called ``name`` (e.g. ``"up2"``; a path ``"generator/up2"``
        works too)."""
        picked = [e for e in self.nodes if name in (e.layer, e.layer.rsplit("/", 1)[-1])]
        if not picked:
            layers = sorted({e.layer.rsplit("/", 1)[-1] for e in self.nodes if e.layer})
            raise KeyError(f"no layer named {name!r} in the graph of {self.root.label}; layers: {layers}")
        return Explanation(self.root, picked, self.bindings, f"layer {name!r}")

    @property
    def axes(self) -> list[AxisExplanation]:
        """The per-axis derivation of the last convolution, transposed convolution or pooling."""
        with_axes = [e for e in self.nodes if e.axes]
        return with_axes[-1].axes if with_axes else []

    def __str__(self):
        bound = f" with {_bindings_text(self.bindings)}" if self.bindings else ""
        inputs = ", ".join(f"{v.name or v.label} {_shape_text(v.shape, self.bindings)}" for v in self.root.arguments)
        head = f"{self.title or self.root.label}{bound}" + (f"; inputs {inputs}" if inputs else "")
        return "\n".join([head] + [str(e) for e in self.nodes])


# entry points -------------------------------------------------------------------------------------
def feed_bindings(root: Node, feed: Mapping) -> dict:
    """The ``name -> int`` bindings a feed gives (arrays with a leading batch axis, as for ``eval``)."""
    from .shape_inference import bind_feed, feed_arrays
    return bind_feed(feed_arrays(root, feed))[0]


def _bindings(root: Node, feed, bindings) -> dict:
    out = dict(feed_bindings(root, feed)) if feed is not None else {}
    for name, value in (bindings or {}).items():
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TypeError(f"explain: bindings must map dimension names to positive ints, got {name!r}: {value!r}")
        out[name] = value
    return out


def explain(node: Node, feed: Mapping | None = None, *, bindings: Mapping[str, int] | None = None,
            chain: bool = True) -> Explanation:
    """How the shapes up to ``node`` were derived: every op of its graph in order (the chain of shapes,
    layer by layer), or with ``chain=False`` only ``node`` itself.

    Convolutions, transposed convolutions and pooling explain each spatial axis (sizes, valid
    ``output_shape`` range, pads, which rows meet the first and last output row); other ops give their
    shape rule in one line. ``feed`` (arrays as for ``eval``) or ``bindings`` (``{"H": 7}``) bind
    symbolic sizes: each quantity then carries its number too.

    >>> import minigraph as mg
    >>> from minigraph import layers as L
    >>> y = L.ConvolutionTranspose(3, 8, strides=2, pad=True, name="up")(mg.input_variable((4, "H")))
    >>> axis = explain(y).axes[0]
    >>> axis.output_size, axis.valid_output_sizes, (axis.lower_pad, axis.upper_pad)
    (2*H - 1, (2*H - 1, 2*H), (1, 1))
    """
    if not isinstance(node, Node):
        raise TypeError(f"explain: pass a graph node (e.g. model(x)), got {type(node).__name__}")
    bound = _bindings(node, feed, bindings)
    order = node.topological_order() if chain else [node]
    nodes = [_explain_node(n, bound) for n in order if isinstance(n, Function) or not chain]
    return Explanation(node, nodes, bound)


def _explain_node(node: Node, bound: dict) -> NodeExplanation:
    layer = "/".join(s.name or s.kind for s in node.scope)
    if not isinstance(node, Function):
        what = ("fed at run time" if isinstance(node, Variable) else
                "a learnable tensor" if isinstance(node, Parameter) else "a fixed tensor")
        return NodeExplanation(node, node.label, node.op_name, [], node.shape,
                               f"{what}; its shape {shape_str(node.shape)} is given, not derived", [], bound, layer)
    ins = [x.shape for x in node.inputs_direct]
    if node.op_name in ("Convolution", "ConvolutionTranspose"):
        axes, rule = _conv_axes(node, bound)
    elif node.op_name == "Pooling":
        axes, rule = _pooling_axes(node, bound)
    else:
        axes, rule = [], _rule(node)
    return NodeExplanation(node, node.label, node.op_name, ins, node.shape, rule, axes, bound, layer)


# convolution geometry ---------------------------------------------------------------------------
def _mode_of_axis(attrs: Mapping, rank: int, kernel: tuple, label: str) -> tuple:
    """Per-axis pad modes as the op resolved them: explicit ``(lo, hi)`` pairs win over auto_padding."""
    lower, upper = attrs.get("lower_pad"), attrs.get("upper_pad")
    if lower is None and upper is None:
        return geo.per_axis_pad_modes(attrs["auto_padding"], rank, kernel, label)
    pads = [geo.per_axis_ints(0 if v is None else v, arg, rank, kernel, label, 0)
            for arg, v in (("lower_pad", lower), ("upper_pad", upper))]
    return tuple(zip(*pads))


def pad_mode_text(mode) -> str:
    """``pad=True (CNTK centring)``, ``explicit pads (1, 2)``..."""
    if isinstance(mode, tuple):
        return f"explicit pads {mode}"
    if mode is True:
        return "pad=True (CNTK centring)"
    if mode is False or mode == "valid":
        return "pad=False (no padding)"
    return f"pad={mode!r} (TF/ONNX SAME)"


def axis_geometry(node: Function) -> list[tuple]:
    """``(n, k, s, d, mode, requested)`` per spatial axis of a convolution, transposed convolution or
    pooling node; ``n`` is the op's input length (static, possibly symbolic)."""
    attrs = node.op_attributes
    if node.op_name == "Pooling":
        kernel = tuple(attrs["pooling_window_shape"])
        modes = geo.per_axis_pad_modes(attrs["auto_padding"], len(kernel), kernel, node.label)
        spatial = node.inputs_direct[0].shape[-len(kernel):]
        return [(n, k, s, 1, m, None) for n, k, s, m in zip(spatial, kernel, attrs["strides"], modes)]
    resolved = node.attributes
    kernel = tuple(resolved["kernel_shape"])
    rank = len(kernel)
    spatial = node.inputs_direct[1].shape[attrs["reduction_rank"]:]
    modes = _mode_of_axis(attrs, rank, kernel, node.label)
    requested = (None,) * rank
    if node.op_name == "ConvolutionTranspose" and attrs.get("output_shape") is not None:
        given = attrs["output_shape"]
        given = given if isinstance(given, tuple) else (given,)
        requested = tuple(given[-rank:])
    return list(zip(spatial, kernel, resolved["strides"], resolved["dilation"], modes, requested))


def _conv_axes(node: Function, bound: dict) -> tuple[list[AxisExplanation], str]:
    transposed = node.op_name == "ConvolutionTranspose"
    res = node.attributes
    axes = []
    for axis, (n, k, s, d, mode, want) in enumerate(axis_geometry(node)):
        lo, hi, size = res["lower_pad"][axis], res["upper_pad"][axis], res["output_shape"][axis]
        make = _transposed_axis if transposed else _forward_axis
        axes.append(make(axis, n, k, s, d, mode, want, size, lo, hi, bound))
    groups = node.op_attributes.get("groups", 1)
    w = node.inputs_direct[0].shape
    channels = (f"channels: map {shape_str(w)} gives {node.shape[0]} output channels"
                + (f" ({groups} groups)" if groups != 1 else ""))
    if transposed:
        rule = (f"transposed convolution: each input row i spreads over output rows i*s + t*d - lo "
                f"(t = 0..k-1); {channels}")
    else:
        rule = f"convolution: output row i reads input rows i*s + t*d - lo (t = 0..k-1); {channels}"
    return axes, rule


def _pooling_axes(node: Function, bound: dict) -> tuple[list[AxisExplanation], str]:
    res = node.attributes
    axes = [_forward_axis(axis, n, k, s, d, mode, None, node.shape[len(node.shape) - len(res["lower_pad"]) + axis],
                          res["lower_pad"][axis], res["upper_pad"][axis], bound)
            for axis, (n, k, s, d, mode, _) in enumerate(axis_geometry(node))]
    kind = node.op_attributes["pooling_type"]
    return axes, (f"{kind} pooling over windows of the last {len(axes)} axes (padding never counts); "
                  f"leading axes {shape_str(node.shape[:len(node.shape) - len(axes)])} unchanged")


def _q(name, symbol, formula, values: dict, value, bound: dict) -> Quantity:
    return Quantity(name, symbol, formula, _fill(formula, values), value, _bind(value, bound))


def _fill(formula: str, values: dict) -> str:
    """``"(n - 1)*s + 1"`` with ``{"n": 4, "s": 2}`` -> ``"(4 - 1)*2 + 1"`` (whole words only)."""
    def swap(match):
        word = match.group(0)
        if word not in values:
            return word
        text = str(values[word])
        return f"({text})" if not re.fullmatch(r"-?\w+", text) else text
    return re.sub(r"[A-Za-z_]\w*", swap, formula)


def _bind(value, bound: dict):
    if is_known(value) or not bound:
        return None
    result = value.subs(bound)
    return result if is_known(result) else None


def _concrete(value, bound: dict):
    """``value`` as an int when it is known or bound, else ``None``."""
    if is_known(value):
        return value
    return _bind(value, bound)


def _effective(k, d, bound) -> Quantity:
    return _q("effective kernel", "Keff", "(k - 1)*d + 1", {"k": k, "d": d}, geo.effective_kernel(k, d), bound)


def _transposed_axis(axis, n, k, s, d, mode, want, size, lo, hi, bound) -> AxisExplanation:
    keff = geo.effective_kernel(k, d)
    v = {"n": n, "k": k, "s": s, "d": d, "Keff": keff}
    first, last = geo.transpose_sizes(n, k, s, d, mode)
    qs = [_effective(k, d, bound)]
    if mode is True or mode in geo.SAME_MODES:
        qs.append(_q("smallest output size", "N_min", "(n - 1)*s + 1", v, first, bound))
        qs.append(_q("largest output size", "N_max", "n*s", v, last, bound))
    else:
        p_lo, p_hi = (0, 0) if not isinstance(mode, tuple) else mode
        v.update(lo=p_lo, hi=p_hi)
        qs.append(_q("smallest output size", "N_min", "(n - 1)*s + Keff - lo - hi", v, first, bound))
        qs.append(_q("largest output size", "N_max", "N_min + s - 1", {**v, "N_min": first}, last, bound))
    if want is not None:
        choice = f"N = {size}: output_shape asks for it"
    elif mode in geo.SAME_MODES:
        choice = f"N = {size}: SAME padding gives n*s"
    else:
        choice = f"N = {size}: the smallest valid size (no output_shape; CNTK's rule)"
        if s > 1 and mode is True:
            choice += f"; output_shape={n * s} would give n*s"
    qs.append(_q("output size", "N", str(size) if want is not None else "N_min" if mode not in geo.SAME_MODES
                 else "n*s", {"N_min": first, **v}, size, bound))
    rule = _pad_rule(mode, size, n, keff, s, lo, hi, v, bound, qs, transposed=True)
    zero = (max(-_concrete(lo, bound), 0) if _concrete(lo, bound) is not None else 0,
            max(-_concrete(hi, bound), 0) if _concrete(hi, bound) is not None else 0)
    nb, sb = _concrete(n, bound), _concrete(size, bound)
    first_row = _spread_row(0, n, nb, k, s, d, lo, bound)
    last_row = _spread_last_row(size, sb, n, nb, k, s, d, hi, keff, bound)
    return AxisExplanation(axis, n, k, s, d, pad_mode_text(mode), keff, size, lo, hi, (first, last), want,
                           choice, rule, zero, qs, first_row, last_row, bound)


def _forward_axis(axis, big, k, s, d, mode, want, size, lo, hi, bound) -> AxisExplanation:
    keff = geo.effective_kernel(k, d)
    v = {"N": big, "k": k, "s": s, "d": d, "Keff": keff}
    qs = [_effective(k, d, bound)]
    if mode is True or mode in geo.SAME_MODES:
        qs.append(_q("output size", "n", "ceil(N/s) = (N + s - 1)//s", v, size, bound))
        choice = "ceil(N/s) rows: every input row is covered"
    else:
        p_lo, p_hi = (0, 0) if not isinstance(mode, tuple) else mode
        v.update(lo=p_lo, hi=p_hi)
        qs.append(_q("output size", "n", "(N + lo + hi - Keff)//s + 1", v, size, bound))
        choice = "every window that fits inside the (padded) input"
    rule = _pad_rule(mode, big, size, keff, s, lo, hi, v, bound, qs, transposed=False)
    bigb, nb = _concrete(big, bound), _concrete(size, bound)
    first_row = _gather_row(0, big, bigb, k, s, d, lo, bound)
    last_row = _gather_row(size - 1, big, bigb, k, s, d, lo, bound, nb - 1 if nb is not None else None)
    return AxisExplanation(axis, big, k, s, d, pad_mode_text(mode), keff, size, lo, hi, None, want, choice, rule,
                           (0, 0), qs, first_row, last_row, bound)


def _pad_rule(mode, big, small, keff, s, lo, hi, v, bound, qs, transposed: bool) -> str:
    """Append the pad quantities to ``qs``; return the placement rule in words."""
    v = {**v, "N": big, "n": small}
    if mode is True:
        extra = big - ((small - 1) * s + 1)
        qs.append(_q("rows beyond (n - 1)*s + 1", "extra", "N - ((n - 1)*s + 1)", v, extra, bound))
        v["extra"] = extra
        qs.append(_q("lower pad", "lo", "(Keff - 1)//2 - extra//2", v, lo, bound))
        qs.append(_q("upper pad", "hi", "(Keff - 1) - (Keff - 1)//2 - (extra - extra//2)", v, hi, bound))
        return ("CNTK centres the kernel: (Keff - 1)//2 pad rows at the start, the rest at the end; the extra "
                "rows (beyond (n - 1)*s + 1) come off the pads, the odd one off the end (upper side)")
    if mode in geo.SAME_MODES:
        total = (small - 1) * s + keff - big
        qs.append(_q("total pad", "total", "(n - 1)*s + Keff - N", v, total, bound))
        qs.append(_q("lower pad", "lo", "total//2" if mode == "same_upper" else "total - total//2",
                     {**v, "total": total}, lo, bound))
        qs.append(_q("upper pad", "hi", "total - lo", {**v, "total": total, "lo": lo}, hi, bound))
        side = "end" if mode == "same_upper" else "start"
        return f"TF/ONNX SAME: the total pad split evenly, the odd row at the {side}"
    if transposed:
        qs.append(_q("lower pad", "lo", str(lo), v, lo, bound))
        qs.append(_q("upper pad", "hi", "(n - 1)*s + Keff - lo - N", {**v, "lo": lo}, hi, bound))
        return ("lo as given; rows beyond the smallest size go at the end (hi shrinks; a negative hi adds "
                "zero rows)")
    qs.append(_q("lower pad", "lo", str(lo), v, lo, bound))
    qs.append(_q("upper pad", "hi", str(hi), v, hi, bound))
    return "as given" if isinstance(mode, tuple) else "none"


def _inside(row, size, size_bound) -> bool | None:
    """Whether ``0 <= row < size``; ``None`` when the symbolic sizes cannot tell."""
    try:
        if row < 0:
            return False
        if size_bound is not None and is_known(row):
            return row < size_bound
        return bool(row < size)
    except TypeError:
        return None


def _gather_row(out_row, big, big_bound, k, s, d, lo, bound, out_bound=None) -> RowSource:
    """Convolution/pooling: output ``out_row`` reads input rows ``out_row*s + t*d - lo``."""
    rows, taps = [], []
    for t in range(k):
        row = out_row * s + t * d - lo
        if out_bound is not None:
            row = out_bound * s + t * d - (_concrete(lo, bound) if _concrete(lo, bound) is not None else lo)
        inside = _inside(row, big, big_bound)
        taps.append(t)
        rows.append(row if inside is not False else None)
    return RowSource(out_row if out_bound is None else out_bound, tuple(taps), tuple(rows))


def _spread_row(out_row, n, n_bound, k, s, d, lo, bound) -> RowSource:
    """Transposed: output ``out_row`` receives input ``i`` through tap ``t`` when ``i*s + t*d - lo = out_row``."""
    lo_c = _concrete(lo, bound)
    taps, rows = [], []
    for t in range(k):
        if lo_c is None:
            break
        num = out_row + lo_c - t * d
        if num % s:
            continue
        i = num // s
        if _inside(i, n, n_bound) is not False:
            taps.append(t)
            rows.append(i)
    return RowSource(out_row, tuple(taps), tuple(rows))


def _spread_last_row(size, size_bound, n, n_bound, k, s, d, hi, keff, bound) -> RowSource:
    """Transposed, last output row ``N - 1``: input ``i = n - 1 + (Keff - 1 - hi - t*d)/s``."""
    hi_c = _concrete(hi, bound)
    taps, rows = [], []
    last_in = (n_bound if n_bound is not None else n) - 1
    for t in range(k):
        if hi_c is None:
            break
        num = keff - 1 - hi_c - t * d
        if num % s:
            continue
        i = last_in + num // s
        if _inside(i, n, n_bound) is not False:
            taps.append(t)
            rows.append(i)
    return RowSource(size_bound - 1 if size_bound is not None else size - 1, tuple(taps), tuple(rows))


# other ops: their shape rule in one line --------------------------------------------------------
def _rule(node: Function) -> str:
    ins = [shape_str(x.shape) for x in node.inputs_direct]
    out = shape_str(node.shape)
    a = node.op_attributes
    op = node.op_name
    if op in ("Plus", "Minus", "ElementTimes", "ElementDivide"):
        return (f"broadcasting: {' with '.join(ins)} -> {out} (axes aligned on the right; a size-1 or missing "
                f"axis stretches)")
    if op == "Times":
        right = node.inputs_direct[1].shape
        k = len(right) - a["output_rank"]
        return (f"times with output_rank={a['output_rank']}: the last {k} axes of {ins[0]} are contracted with the "
                f"first {k} of {ins[1]}; the rest of left, then the last {a['output_rank']} of right -> {out}")
    if op == "Reshape":
        return f"reshape: {ins[0]} -> {out}, same number of elements"
    if op == "Transpose":
        return f"transpose with perm {tuple(a['perm'])}: {ins[0]} -> {out}"
    if op == "Slice":
        return f"slice: {ins[0]} -> {out} (begin/end/step per sliced axis, as Python slicing)"
    if op == "Splice":
        return f"splice along axis {a['axis']}: {', '.join(ins)} -> {out} (sizes on that axis add up)"
    if op.startswith("Reduce"):
        axes = "all axes" if a.get("axis") is None else f"axes {tuple(a['axis'])}"
        kept = "kept as size 1" if a.get("keepdims") else "dropped"
        return f"{op[6:].lower()} over {axes} ({kept}): {ins[0]} -> {out}"
    if op == "BatchNormalization":
        per = "per channel (axis 0)" if a["spatial"] else "per element"
        return f"batch normalization, statistics {per}: shape unchanged {ins[0]} -> {out}"
    if op in ("SquaredError", "BinaryCrossEntropy", "CrossEntropyWithSoftmax", "ClassificationError"):
        return f"loss: {' and '.join(ins)} -> one number per sample {out}"
    if len(ins) == 1 and ins[0] == out:
        return f"elementwise {op}: shape unchanged {out}"
    return f"{op}: {', '.join(ins)} -> {out}"


# text helpers ---------------------------------------------------------------------------------------
def _bindings_text(bound: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(bound.items()))


def _shape_text(shape, bound: dict) -> str:
    text = shape_str(shape)
    if bound and not all(is_known(d) for d in shape):
        return f"{text} = {shape_str(subs_shape(shape, bound))}"
    return text


def _bound_text(value, bound: dict) -> str:
    b = _bind(value, bound)
    return f"{value} = {b}" if b is not None else str(value)


def _range_text(first, last, bound: dict) -> str:
    f, la = _concrete(first, bound), _concrete(last, bound)
    if f is not None and la is not None:
        sizes = list(range(max(f, 1), la + 1))
        listed = ", ".join(map(str, sizes)) if sizes else "none"
        return listed if is_known(first) else f"{first} .. {last} = {listed}"
    return f"{first} .. {last}"

