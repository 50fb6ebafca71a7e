"""Graphs as pictures: the DOT text of any node's graph, rendered by Graphviz's ``dot`` program.

:func:`plot` draws inputs, parameters, constants and ops as differently styled boxes labelled with
op name, node name and output shape (symbolic dims as expressions, ``(32, 2*H, 2*W)``); op boxes list
what the op's ``describe`` finds worth showing (for convolutions: kernel, strides, dilation, groups,
the resolved lower/upper pads and output shape). Edges carry the tensor shape. Layers (``node.scope``)
become nested clusters, or single boxes with ``collapse_layers=True``.

The DOT text is deterministic: boxes are numbered by their position in the graph's topological
order (never by the global node ids), clusters by first appearance, so the same model gives the same
text in any process.
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass
from typing import Any

from .checks import check_number
from .errors import RenderError
from .files import write_atomically
from .graph import Constant, Function, Node, Op, Parameter, Scope, Variable
from .shapes import is_static, num_elements, shape_str

__all__ = ["FORMATS", "plot"]

FORMATS = ("png", "svg", "pdf", "dot")
"""Output formats of :func:`plot`; ``dot`` is the DOT text itself and needs no Graphviz program."""

_EXTENSIONS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
RANKDIRS = ("TB", "LR", "BT", "RL")
DPI_RANGE = (1, 2400)
"""Resolutions :func:`plot` accepts (dots per inch): NaN, infinities and absurd values are refused
before anything is drawn (Graphviz misreads a DOT ``dpi`` written as ``1e+06``)."""

INSTALL_HINT = ("install Graphviz: 'sudo apt-get install graphviz' (Debian/Ubuntu), 'brew install graphviz' "
                "(macOS) or 'conda install -c conda-forge graphviz'; or write the DOT text instead "
                "(a '.dot' filename or format='dot' needs no Graphviz program)")

# Box styles by what a node is: inputs blue, parameters amber, constants grey, ops green, layers violet.
_NODE_STYLE = {
    Variable: 'shape=box, style="rounded,filled,bold", fillcolor="#d6e6f7", color="#2f6da3"',
    Parameter: 'shape=box, style="filled", fillcolor="#fcefd2", color="#b07d1c"',
    Constant: 'shape=box, style="filled,dashed", fillcolor="#f0f0f0", color="#888888"',
    Function: 'shape=box, style="rounded,filled", fillcolor="#e3f1dc", color="#3c763d"',
}
_LAYER_STYLE = 'shape=box3d, style="filled", fillcolor="#ebe4f5", color="#5b4a8a"'
_CLUSTER_FILL = ("#f6f5fb", "#eceaf5", "#e2dfef")  # by nesting depth, so nested layers stand out
_MUTED = "#555555"
_WARNING = "#b35900"
_FLAGGED = f', color="{_WARNING}", penwidth=2.2'  # a node lint has findings about
_MAX_VALUE_CHARS = 48
_ROW_CHARS = 36  # attribute lines of an op box are packed up to this length
_SEPARATOR = " · "


@dataclass
class _Box:
    """One drawn box: a node, or a whole layer when layers are collapsed."""

    ident: str
    label: str       # an HTML-like label, already escaped
    style: str
    cluster: tuple   # the path of scope keys (outermost first) of the cluster it sits in


def plot(root: Node, filename: str | os.PathLike | None = None, *, format: str | None = None,
         rankdir: str = "TB", show_shapes: bool = True, show_params: bool = True,
         collapse_layers: bool = False, dpi: float | None = None, show_lint: bool = True) -> str:
    """Draw the graph of ``root``; return its DOT text and, with ``filename``, render it there.

    ``format`` (``"png"``, ``"svg"``, ``"pdf"`` or ``"dot"``) defaults to the filename's extension.
    The file is written atomically (a temporary file in the same folder, then renamed); missing
    folders are created. Rendering runs Graphviz's ``dot`` program; when it is missing a
    :class:`~minigraph.RenderError` says how to install it (``.dot`` output works without it).

    ``rankdir``: ``"TB"`` (top to bottom), ``"LR"``, ``"BT"`` or ``"RL"``. ``show_shapes=False``
    leaves shapes off boxes and edges; ``show_params=False`` leaves parameter boxes out;
    ``collapse_layers=True`` draws each layer as one box with its output shape and parameter count
    (a layer that wraps every op, such as a ``Sequential``, stays a cluster around its sub-layers).
    ``dpi`` sets the resolution of raster output. Nodes (or collapsed layers) that
    :func:`minigraph.lint` has findings about get an orange border and a warning badge naming them
    (``show_lint=False`` leaves that out).

    >>> import minigraph as mg
    >>> print(mg.plot(mg.relu(mg.input_variable((3, "H"), name="x"))).splitlines()[0])
    digraph minigraph {
    """
    if not isinstance(root, Node):
        raise TypeError(f"plot needs a graph node such as model(x); got {type(root).__name__}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}; got {rankdir!r}")
    if dpi is not None:
        dpi = check_number(dpi, "dpi", "plot", minimum=DPI_RANGE[0], maximum=DPI_RANGE[1])
    fmt = output_format(filename, format) if filename is not None else None
    dot = _dot_text(root, rankdir, show_shapes, show_params, collapse_layers, dpi, show_lint)
    if filename is not None and fmt is not None:
        _render(dot, os.fspath(filename), fmt)
    return dot


def output_format(filename, format: str | None = None) -> str:
    """The format to write ``filename`` in: ``format`` when given, else the file's extension."""
    if format is not None:
        fmt = str(format).lower().lstrip(".")
        fmt = "dot" if fmt == "gv" else fmt
        if fmt not in FORMATS:
            raise ValueError(f"format {format!r} is not supported; use one of {', '.join(FORMATS)}")
        return fmt
    ext = os.path.splitext(os.fspath(filename))[1].lower()
    if ext not in _EXTENSIONS:
        raise ValueError(f"cannot tell the picture format of {os.fspath(filename)!r} from its extension; "
                         f"use one of {', '.join(sorted(_EXTENSIONS))} or pass format=")
    return _EXTENSIONS[ext]


# boxes and clusters ----------------------------------------------------------------------------
def _scope_key(scope: Scope) -> tuple:
    """One layer object, even when two layers share a name and a type."""
    return (scope.name, scope.kind, id(scope.owner) if scope.owner is not None else None)


def _scope_path(node: Node) -> tuple:
    return tuple(_scope_key(s) for s in node.scope)


def _placements(root: Node, order: list[Node]) -> dict[Node, tuple]:
    """The cluster path each node is drawn in: its own layer scope, except that parameters and
    constants sit in the innermost layer holding every op that reads them (a layer may create its
    parameters before it is placed in a ``Sequential``; they belong where they are used)."""
    place: dict[Node, tuple] = {}
    for n in reversed(order):  # consumers before their inputs
        readers = [place[c] for c in root.graph.successors(n)]
        if isinstance(n, (Parameter, Constant)) and readers:
            place[n] = _common_prefix(readers)
        else:
            place[n] = _scope_path(n)
    return place


def _common_prefix(paths: list[tuple]) -> tuple:
    common = 0
    while all(len(p) > common for p in paths) and len({p[common] for p in paths}) == 1:
        common += 1
    return paths[0][:common]


def _collapse_depth(place: dict[Node, tuple]) -> int:
    """How many scope levels a collapsed layer keeps: one below the layers that wrap every op
    (a ``Sequential`` around the whole model stays a cluster of collapsed sub-layers)."""
    paths = [path for n, path in place.items() if isinstance(n, Function)]
    if not paths:
        return 1
    common = len(_common_prefix(paths))
    deeper = any(len(p) > common for p in paths)
    return common + 1 if deeper else max(common, 1)


def _boxes(root: Node, order: list[Node], place: dict[Node, tuple], scopes: dict[tuple, Scope],
           show_shapes: bool, show_params: bool, collapse: bool,
           badges: dict | None = None) -> tuple[list[_Box], dict[Node, str]]:
    """The boxes to draw, in topological order (a collapsed layer where its first node is), and
    which box draws each node (hidden parameters have none). ``badges``: lint codes by node."""
    badges = badges or {}
    position = {node: i for i, node in enumerate(order)}
    depth = _collapse_depth(place) if collapse else 0
    members: dict[tuple, list[Node]] = {}
    for n in order:
        if depth and len(place[n]) >= depth:
            members.setdefault(place[n][:depth], []).append(n)
    layer_of = {n: path for path, nodes in members.items() for n in nodes}

    boxes: list[_Box] = []
    box_of: dict[Node, str] = {}
    layer_ids: dict[tuple, str] = {}
    for n in order:
        if n in layer_of:
            path = layer_of[n]
            if path not in layer_ids:
                layer_ids[path] = f"L{len(layer_ids)}"
                label = _layer_label(scopes[path], members[path], root, show_shapes)
                codes = [c for m in members[path] for c in badges.get(m, ())]
                style = _LAYER_STYLE + (_FLAGGED if codes else "")
                boxes.append(_Box(layer_ids[path], _with_badge(label, codes), style, path[:-1]))
            box_of[n] = layer_ids[path]
        elif show_params or not isinstance(n, Parameter):
            box_of[n] = f"n{position[n]}"
            codes = badges.get(n, [])
            style = _NODE_STYLE[type(n)] + (", penwidth=2.2" if n is root else "") + (_FLAGGED if codes else "")
            boxes.append(_Box(box_of[n], _with_badge(_node_label(n, show_shapes), codes), style, place[n]))
    return boxes, box_of


def _dot_text(root: Node, rankdir: str, show_shapes: bool, show_params: bool, collapse: bool,
              dpi: float | None, show_lint: bool = True) -> str:
    order = root.topological_order()
    scopes: dict[tuple, Scope] = {}
    for n in order:
        path = _scope_path(n)
        for i, scope in enumerate(n.scope):
            scopes.setdefault(path[:i + 1], scope)
    place = _placements(root, order)
    badges = _lint_badges(root) if show_lint else {}
    boxes, box_of = _boxes(root, order, place, scopes, show_shapes, show_params, collapse, badges)
    dpi_attr = f", dpi={dpi:g}" if dpi else ""
    lines = ["digraph minigraph {",
             (f'  graph [rankdir={rankdir}, fontname="Helvetica", fontsize=11, nodesep=0.25, ranksep=0.3, '
              f'newrank=true{dpi_attr}];'),
             '  node [fontname="Helvetica", fontsize=10, margin="0.10,0.05"];',
             f'  edge [fontname="Helvetica", fontsize=9, color="#666666", fontcolor="{_MUTED}", arrowsize=0.7];']
    lines += _cluster_lines(boxes, scopes)
    lines += _edge_lines(order, box_of, {b.ident: b.cluster for b in boxes}, show_shapes)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cluster_lines(boxes: list[_Box], scopes: dict[tuple, Scope]) -> list[str]:
    """Boxes nested in their layer clusters; clusters numbered by first appearance."""
    children: dict[tuple, list] = {(): []}
    for box in boxes:
        for i in range(1, len(box.cluster) + 1):
            prefix = box.cluster[:i]
            if prefix not in children:
                children[prefix] = []
                children[prefix[:-1]].append(prefix)
        children[box.cluster].append(box)
    lines: list[str] = []
    count = 0

    def emit(path: tuple, indent: str) -> None:
        nonlocal count
        for item in children[path]:
            if isinstance(item, _Box):
                lines.append(f"{indent}{item.ident} [label={item.label}, {item.style}];")
                continue
            scope = scopes[item]
            fill = _CLUSTER_FILL[min(len(item), len(_CLUSTER_FILL)) - 1]
            lines.append(f"{indent}subgraph cluster_{count} {{")
            count += 1
            lines.append(f'{indent}  label=<{_layer_title(scope)}>; labeljust=l; style="rounded,filled"; '
                         f'fillcolor="{fill}"; color="#9a93bd";')
            emit(item, indent + "  ")
            lines.append(f"{indent}}}")

    emit((), "  ")
    return lines


def _edge_lines(order: list[Node], box_of: dict[Node, str], cluster_of: dict[str, tuple],
                show_shapes: bool) -> list[str]:
    """One edge per (producer box, consumer box) pair, in consumer order then input slot order,
    labelled with the tensor's shape (except from parameters and constants: their boxes show it).

    An edge entering a cluster spans two ranks: the constants and parameters inside the cluster then
    rank below the producer, so consecutive layers stack instead of stepping sideways."""
    lines, seen = [], set()
    for dst in order:
        for src in dst.inputs_direct:
            a, b = box_of.get(src), box_of.get(dst)
            if a is None or b is None or a == b or (a, b) in seen:
                continue
            seen.add((a, b))
            shown = show_shapes and not isinstance(src, (Parameter, Constant))  # their boxes show it
            attrs = [f'label="{_quote(shape_str(src.shape))}"'] if shown else []
            if cluster_of[a][:len(cluster_of[b])] != cluster_of[b]:
                attrs.append("minlen=2")
            lines.append(f"  {a} -> {b}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    return lines


# labels -----------------------------------------------------------------------------------------
def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _quote(text: str) -> str:
    """Text inside a double-quoted DOT string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _table(rows: list[str]) -> str:
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{cells}</TABLE>>'


def _small(text: str) -> str:
    return f'<FONT POINT-SIZE="9" COLOR="{_MUTED}">{text}</FONT>'


def _title(kind: str, name: str) -> str:
    return f"<B>{_esc(kind)}</B>" + (f" {_esc(name)}" if name else "")


def format_value(value: Any) -> str:
    """An attribute value as people write it: tuples as ``(1, 2)``, floats short, long text cut."""
    if isinstance(value, (tuple, list)):
        inner = ", ".join(format_value(v) for v in value)
        text = f"({inner},)" if len(value) == 1 else f"({inner})"
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS - 1] + "…"


def _amount(shapes: list[tuple], noun: str) -> str:
    """``"2,304 values"``: the element count of ``shapes`` (``"?"`` while dims are left to inference)."""
    if not all(is_static(shape) for shape in shapes):
        return f"? {noun}s"
    total = sum(num_elements(shape) for shape in shapes)
    return f"{total:,} {noun}" + ("" if total == 1 else "s")


def _op_details(node: Function) -> list[str]:
    """Lines of what the op's ``describe`` finds worth showing, packed, ``None`` values left out."""
    items = [f"{key} {format_value(value)}" for key, value in node.op.describe(node.attributes).items()
             if value is not None]
    return [_small(_esc(line)) for line in _pack(items)]


def _node_label(node: Node, show_shapes: bool) -> str:
    rows = [_title(node.op_name, node.name)]
    if (show_shapes or isinstance(node, Parameter)) and not (isinstance(node, Constant) and node.shape == ()):
        rows.append(_esc(shape_str(node.shape)))
    if isinstance(node, Parameter):
        rows.append(_small(_amount([node.shape], "value")))
    elif isinstance(node, Constant) and node.value.size == 1:
        rows.append(_small(f"= {_esc(format_value(float(node.value.reshape(()))))}"))
    elif isinstance(node, Function):
        rows += _op_details(node)
    return _table(rows)


def _lint_badges(root: Node) -> dict[Node, list[str]]:
    """The codes of :func:`minigraph.lint`'s findings, by the node they are about."""
    from .lint import lint
    badges: dict[Node, list[str]] = {}
    for finding in lint(root):
        badges.setdefault(finding.node, []).append(finding.code)
    return badges


def _with_badge(label: str, codes: list[str]) -> str:
    """``label`` (an HTML-like table) with a warning row naming the lint findings."""
    if not codes:
        return label
    badge = f'<TR><TD><FONT POINT-SIZE="9" COLOR="{_WARNING}">&#9888; {_esc(", ".join(dict.fromkeys(codes)))}' \
            f"</FONT></TD></TR>"
    return label[:-len("</TABLE>>")] + badge + "</TABLE>>"


def _pack(items: list[str], width: int = _ROW_CHARS) -> list[str]:
    """Short attribute texts share a line (``strides (2, 2) · groups 1``), so op boxes stay compact."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(_SEPARATOR) + len(item) <= width:
            lines[-1] += _SEPARATOR + item
        else:
            lines.append(item)
    return lines


def _layer_title(scope: Scope) -> str:
    return f"<B>{_esc(scope.name)}</B> <I>{_esc(scope.kind)}</I>" if scope.name else f"<B>{_esc(scope.kind)}</B>"


def _layer_label(scope: Scope, members: list[Node], root: Node, show_shapes: bool) -> str:
    """A collapsed layer: its name and type, the shapes it hands on, what its ops with a ``describe``
    of their own show (convolution geometry and pads), its parameter count."""
    rows = [_layer_title(scope)]
    inside = set(members)
    if show_shapes:
        consumers = root.graph
        outputs = [n for n in members if n is root or any(c not in inside for c in consumers.successors(n))]
        rows += list(dict.fromkeys(_esc(shape_str(n.shape)) for n in outputs))
    for n in members:
        if isinstance(n, Function) and type(n.op).describe is not Op.describe:
            rows += _op_details(n)
    params = [n.shape for n in members if isinstance(n, Parameter)]
    if params:
        rows.append(_small(_amount(params, "parameter")))
    return _table(rows)


# rendering --------------------------------------------------------------------------------------
def mimebundle(root: Node) -> dict:
    """What Jupyter shows for a node: the picture of its graph (SVG from Graphviz) and its repr."""
    svg = svg_text(root)
    return {"text/plain": repr(root), **({"image/svg+xml": svg} if svg else {})}


def svg_text(root: Node, **options) -> str | None:
    """The graph of ``root`` as SVG text (what notebooks display), or ``None`` when the graphviz
    package or its ``dot`` program is missing (the node then shows as text)."""
    try:
        import graphviz
    except ImportError:
        return None
    try:
        return graphviz.pipe("dot", "svg", plot(root, **options).encode("utf-8"), quiet=True).decode("utf-8")
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError):
        return None


def _render(dot: str, path: str, fmt: str) -> None:
    """Write ``dot`` to ``path`` as ``fmt``; the picture comes from Graphviz's ``dot`` program."""
    if fmt == "dot":
        data = dot.encode("utf-8")
    else:
        try:
            import graphviz
        except ImportError:
            raise RenderError(f"cannot render {path!r}: the 'graphviz' Python package is missing "
                              f"(pip install graphviz), and the Graphviz program too, perhaps; "
                              f"{INSTALL_HINT}") from None
        try:
            data = graphviz.pipe("dot", fmt, dot.encode("utf-8"), quiet=True)
        except graphviz.ExecutableNotFound:
            raise RenderError(f"cannot render {path!r}: Graphviz's 'dot' program was not found on the PATH; "
                              f"{INSTALL_HINT}") from None
        except graphviz.CalledProcessError as exc:
            detail = (exc.stderr or b"").decode("utf-8", "replace").strip()
            raise RenderError(f"cannot render {path!r}: Graphviz's 'dot' failed: {detail}") from None
    write_atomically(path, data, make_folder=True)


