"""``summary(model)``: a table of a network's layers, output shapes, parameters, compute, memory and pads.

Rows follow the graph in topological order: the inputs, then one row per layer *call* (each
``name_scope`` a layer opened while building; layers inside a ``Sequential`` are indented under
it), and one row per op built outside any layer. Shapes exclude the batch axis and stay symbolic
(``(8, 2*H - 1, 2*W - 1)``) until data is fed. Convolution and pooling rows show the per-axis
``(lower, upper)`` pads the shape-inference pass resolved. The multiply-adds and activation columns
(the bytes of every value the layer's ops make) are per sample, or for ``batch`` samples with
``summary(model, batch=64)``; expressions in the symbolic dims while sizes are symbolic. Totals
follow the table (parameter bytes, activations for inference and kept for training, convolution
workspace, and with a batch of concrete sizes the simulated peak of :func:`minigraph.costs.estimate`),
then the findings of :func:`minigraph.lint`.

:func:`summary` returns a :class:`Summary`: a ``str`` (the text table) that notebooks display as an
HTML table (``_repr_html_``).
"""
from __future__ import annotations

import html
import math

import sympy as sp

from ..costs import estimate, node_costs, symbolic_max
from ..graph import Function, Node, Parameter
from ..limits import format_bytes
from ..lint import lint
from ..shapes import is_known, is_static, make_dim, names_of, shape_str

_PADDED_OPS = ("Convolution", "ConvolutionTranspose", "Pooling")
_NUMERIC = (4, 5, 6)  # right-aligned columns


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
    entries: list = []
    calls: dict = {}
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


class Summary(str):
    """The text table (this ``str``) with its parts for code and an HTML form for notebooks.

    header, rows: the table cells; totals: the lines under it; findings: :func:`minigraph.lint`'s.
    """

    header: tuple
    rows: list
    totals: list
    findings: list

    def __repr__(self):
        return str(self)

    def _repr_html_(self) -> str:
        def cells(row, tag):
            return "".join(f'<{tag} style="text-align:{"right" if i in _NUMERIC else "left"}">{html.escape(c)}'
                           f"</{tag}>" for i, c in enumerate(row))
        body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in self.rows)
        notes = "".join(f"<li><b>{html.escape(f.severity)}</b> {html.escape(f.where)}: {html.escape(f.message)}"
                        f"<br><i>{html.escape(f.suggestion)}</i></li>" for f in self.findings)
        totals = "<br>".join(html.escape(t) for t in self.totals)
        return (f'<table class="minigraph-summary"><thead><tr>{cells(self.header, "th")}</tr></thead>'
                f"<tbody>{body}</tbody></table><p>{totals}</p>" + (f"<ul>{notes}</ul>" if notes else ""))


def _amount(value, batch: int | None, unit: str = "") -> str:
    """A count or byte size per sample (or times ``batch``): ``1.5 KiB``, ``4,096``, ``4096*H*W B``."""
    if batch is not None:
        value = value * batch
    if not is_known(value):
        value = make_dim(sp.factor(value.expr))  # 64*(2*H - 1)*(2*W - 1), not 8*(16*H - 8)*(2*W - 1)
        return f"{value} B" if unit == "B" else str(value)
    if unit == "B":
        return format_bytes(value) if value else ""
    return f"{value:,}" if value else ""


def summary(model: Node, batch: int | None = None) -> Summary:
    """The summary table of the graph of ``model`` (see the module docstring).

    ``batch``: the multiply-adds and activation columns and totals are for that many samples (default:
    per sample), and the totals add the simulated peak memory of a run (when sizes are concrete).

    >>> import minigraph as mg
    >>> from minigraph import layers as L
    >>> up = L.ConvolutionTranspose((4, 4), 8, strides=2, pad=True, output_shape=(16, 16), name="up")
    >>> print(summary(up(mg.input_variable((4, 8, 8), name="x"))))  # doctest: +NORMALIZE_WHITESPACE
    Layer  Type                  Output shape  Parameters                   Count  Mult-adds/sample
        Activations/sample  Pads (lo, hi) per axis
    -----  --------------------  ------------  ---------------------------  -----  ----------------
        ------------------  ----------------------
    x      Input                 (4, 8, 8)
    up     ConvolutionTranspose  (8, 16, 16)   W (4, 8, 4, 4), b (8, 1, 1)    520            32,768
                    16 KiB  (1, 1), (1, 1)
    Total: 520 parameters in 2 tensors (2.03 KiB)
    Per sample: 32,768 multiply-adds; activations 16 KiB (every op output), 0 B kept for training;
        convolution workspace 34 KiB
    """
    if not isinstance(model, Node):
        raise TypeError(f"summary: pass a node (the network's output), got {type(model).__name__}")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"summary: batch must be a positive int (or None: per sample), got {batch!r}")
    costs = {c.node: c for c in node_costs(model)}
    per = "/sample" if batch is None else f" (N={batch})"
    header = ("Layer", "Type", "Output shape", "Parameters", "Count", f"Mult-adds{per}", f"Activations{per}",
              "Pads (lo, hi) per axis")
    rows = [(v.name or "(input)", "Input", shape_str(v.shape), "", "", "", "", "") for v in model.arguments]
    shown: dict[tuple, str] = {}
    for entry in _layer_calls(model):
        if entry[0] == "op":
            node = entry[1]
            rows.append((node.name or "-", node.op_name, shape_str(node.shape), "", "",
                         *_cost_cells([node], costs, batch), ""))
            continue
        _, scope, depth, nodes = entry
        name = "  " * depth + (scope.name or "-")
        out = max(nodes, key=lambda n: n.uid)
        params, count = "", ""
        own_ops = [n for n in nodes if n.scope[-1] is scope]
        # the parameters this call's own ops read (sub-layers list theirs): derived from the graph,
        # so a loaded model, whose layer objects are gone, shows them too
        own = list(dict.fromkeys(x for n in own_ops for x in n.inputs_direct if isinstance(x, Parameter)))
        if own:
            key = tuple(sorted(p.uid for p in own))
            if key in shown:
                params = f"(shared with {shown[key]})"
            else:
                shown[key] = scope.name or scope.kind
                ordered = sorted(own, key=lambda p: p.name != "W")  # W, then b and the rest
                params = ", ".join(f"{p.name} {shape_str(p.shape)}" for p in ordered)
                count = f"{sum(_count(p) for p in own):,}"
        rows.append((name, scope.kind, shape_str(out.shape), params, count, *_cost_cells(own_ops, costs, batch),
                     _pads(nodes, scope)))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    lines = []
    for row in [header, tuple("-" * w for w in widths), *rows]:
        cells = [c.rjust(w) if i in _NUMERIC else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    totals = _totals(model, list(costs.values()), batch)
    findings = lint(model)
    notes = [f"Lint: {len(findings)} finding{'s' if len(findings) != 1 else ''}"] + [
        "  " + line for f in findings for line in str(f).splitlines()] if findings else []
    result = Summary("\n".join(lines + totals + notes))
    result.header, result.rows, result.totals, result.findings = header, rows, totals, list(findings)
    return result


def _cost_cells(ops: list, costs: dict, batch: int | None) -> tuple[str, str]:
    macs = sum((costs[n].multiply_adds for n in ops if n in costs), 0)
    out = sum((costs[n].output_bytes for n in ops if n in costs), 0)
    return _amount(macs, batch), _amount(out, batch, "B")


def _totals(model: Node, costs: list, batch: int | None) -> list[str]:
    params = model.parameters
    param_bytes = sum(_count(p) * (p.dtype.itemsize if p.dtype is not None else 4) for p in params)
    lines = [f"Total: {sum(_count(p) for p in params):,} parameters in {len(params)} tensors "
             f"({format_bytes(param_bytes)})"]
    macs = sum((c.multiply_adds for c in costs), 0)
    made = sum((c.output_bytes for c in costs), 0)
    kept = sum((c.kept_bytes for c in costs), 0)
    # the column buffers serve max_temp_mem_size_in_samples samples at a time when it is set
    work = symbolic_max([c.workspace_bytes * (1 if batch is None else min(c.chunk or batch, batch)) for c in costs])
    what = "Per sample" if batch is None else f"Batch {batch}"
    kept_text, work_text = _amount(kept, batch, 'B') or '0 B', _amount(work, None, 'B') or '0 B'
    symbolic = set().union(*(names_of(n.shape) for n in model.graph))
    runs = None
    if batch is not None and not symbolic:
        # the simulated run also counts what the run's layouts decide: inputs the kernels copy to
        # their batch-last layout, and the copies a transposed convolution keeps for its backward
        runs = estimate(model, batch, False), estimate(model, batch, True)
        kept_text, work_text = format_bytes(runs[1].activation_bytes), format_bytes(runs[0].workspace_bytes)
    lines.append(f"{what}: {_amount(macs, batch) or 0} multiply-adds; activations {_amount(made, batch, 'B') or '0 B'} "
                 f"(every op output), {kept_text} kept for training; convolution workspace {work_text}")
    if runs is not None:
        lines.append(f"Peak memory of a run (simulated): {format_bytes(runs[0].peak_bytes)} inference, "
                     f"{format_bytes(runs[1].peak_bytes)} training step (parameters not included)")
    return lines


def print_summary(model: Node, batch: int | None = None) -> None:
    """Print :func:`summary` of the model."""
    print(summary(model, batch))
