"""``summary(model)``: a table of a network's layers, output shapes, parameters and resolved pads.

Rows follow the graph in topological order: the inputs, then one row per layer *call* (each
``name_scope`` a layer opened while building; layers inside a ``Sequential`` are indented under
it), and one row per op built outside any layer. Shapes exclude the batch axis and stay symbolic
(``(8, 2*H - 1, 2*W - 1)``) until data is fed. Convolution and pooling rows show the per-axis
``(lower, upper)`` pads the shape-inference pass resolved. ``model.summary()`` prints the table.
"""
from __future__ import annotations

import math

from ..graph import Function, Node, Parameter
from ..shapes import is_static, shape_str

_PADDED_OPS = ("Convolution", "ConvolutionTranspose", "Pooling")
HEADER = ("Layer", "Type", "Output shape", "Parameters", "Count", "Pads (lo, hi) per axis")


def _count(param) -> int:
    return math.prod(param.shape) if is_static(param.shape) else 0


def _pads(nodes, scope) -> str:
    """The resolved pads of the conv/pooling ops built directly by this layer call."""
    shown = []
    for n in nodes:
        if n.op_name in _PADDED_OPS and n.scope[-1] is scope and "lower_pad" in n.attributes:
            pairs = zip(n.attributes["lower_pad"], n.attributes["upper_pad"])
            shown.append(", ".join(f"({lo}, {hi})" for lo, hi in pairs))
    return "; ".join(shown)


def _layer_calls(model: Node) -> list:
    """``("call", scope, depth, nodes)`` per layer call and ``("op", node)`` per unscoped op, in order."""
    entries, calls = [], {}
    for node in model.topological_order():
        if not isinstance(node, Function):
            continue
        if not node.scope:
            entries.append(("op", node))
        for depth, scope in enumerate(node.scope):
            if id(scope) not in calls:
                calls[id(scope)] = ("call", scope, depth, [])
                entries.append(calls[id(scope)])
            calls[id(scope)][3].append(node)
    return entries


def summary(model: Node) -> str:
    """The summary table of the graph of ``model`` (see the module docstring), as text.

    >>> import minigraph as mg
    >>> from minigraph import layers as L
    >>> up = L.ConvolutionTranspose((3, 3), 8, strides=2, pad=True, name="up")
    >>> print(summary(up(mg.input_variable((4, "H", "W"), name="x"))))
    Layer  Type                  Output shape           Parameters                   Count  Pads (lo, hi) per axis
    -----  --------------------  ---------------------  ---------------------------  -----  ----------------------
    x      Input                 (4, H, W)
    up     ConvolutionTranspose  (8, 2*H - 1, 2*W - 1)  W (4, 8, 3, 3), b (8, 1, 1)    296  (1, 1), (1, 1)
    Total: 296 parameters in 2 tensors
    """
    if not isinstance(model, Node):
        raise TypeError(f"summary: pass a node (the network's output), got {type(model).__name__}")
    rows = [(v.name or "(input)", "Input", shape_str(v.shape), "", "", "") for v in model.arguments]
    shown: dict[tuple, str] = {}
    for entry in _layer_calls(model):
        if entry[0] == "op":
            node = entry[1]
            rows.append((node.name or "-", node.op_name, shape_str(node.shape), "", "", ""))
            continue
        _, scope, depth, nodes = entry
        name = "  " * depth + (scope.name or "-")
        out = max(nodes, key=lambda n: n.uid)
        params, count = "", ""
        # the parameters this call's own ops read (sub-layers list theirs): derived from the graph,
        # so a loaded model, whose layer objects are gone, shows them too
        own = list(dict.fromkeys(x for n in nodes if n.scope[-1] is scope for x in n.inputs_direct
                                 if isinstance(x, Parameter)))
        if own:
            key = tuple(sorted(p.uid for p in own))
            if key in shown:
                params = f"(shared with {shown[key]})"
            else:
                shown[key] = scope.name or scope.kind
                ordered = sorted(own, key=lambda p: p.name != "W")  # W, then b and the rest
                params = ", ".join(f"{p.name} {shape_str(p.shape)}" for p in ordered)
                count = f"{sum(_count(p) for p in own):,}"
        rows.append((name, scope.kind, shape_str(out.shape), params, count, _pads(nodes, scope)))
    widths = [max(len(r[i]) for r in rows + [HEADER]) for i in range(len(HEADER))]
    lines = []
    for row in [HEADER, tuple("-" * w for w in widths), *rows]:
        cells = [c.rjust(w) if i == 4 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    params = model.parameters
    lines.append(f"Total: {sum(_count(p) for p in params):,} parameters in {len(params)} tensors")
    return "\n".join(lines)


def print_summary(model: Node) -> None:
    """``model.summary()``: print :func:`summary` of the model."""
    print(summary(model))
