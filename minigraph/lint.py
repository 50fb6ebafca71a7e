"""``lint``: findings about a network that builds and runs but will probably not do what was meant.

:func:`lint` returns :class:`Finding` objects (severity, node, message, suggestion), one per problem:

* ``uneven-overlap``: a transposed convolution whose kernel is not a multiple of its stride: output
  phases receive different numbers of taps (the known cause of checkerboard artifacts);
* ``gaps``: some output phases of a transposed convolution receive no tap at all (stride larger than
  the effective kernel, or a dilation sharing a factor with the stride), and convolution windows that
  skip input rows;
* ``padding-only-rows``: output rows only padding reaches (an ``output_shape`` beyond the full result);
* ``discarded-input-rows``: crops (pads) or windows that leave whole input rows unused;
* ``2n-1``: ``pad=True`` with stride > 1 on a transposed convolution without ``output_shape``;
* ``bias-before-batch-norm``: a bias added right before batch normalization (it is cancelled);
* ``per-element-batch-norm``: ``BatchNormalization`` without ``map_rank=1`` after a convolution;
* ``unreached-parameter``: parameters the given loss does not reach (they cannot train).

``summary()`` lists the findings under its table and ``plot`` marks the nodes with a warning badge.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .graph import Function, Node, Parameter
from .ops import conv_geometry as geo
from .shapes import is_known

__all__ = ["Finding", "lint", "phase_taps"]

SEVERITIES = ("warning", "info")
_CONVS = ("Convolution", "ConvolutionTranspose")
_PASS_THROUGH = ("Plus", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softplus", "Clip", "Abs", "Dropout", "Reshape")


@dataclass(frozen=True)
class Finding:
    """One lint finding. ``code`` names the check; ``node`` is the op node it is about (``layer`` the
    path of the layer that built it, ``""`` outside layers)."""

    code: str
    severity: str
    node: Node
    message: str
    suggestion: str

    @property
    def layer(self) -> str:
        return "/".join(s.name or s.kind for s in self.node.scope)

    @property
    def where(self) -> str:
        """``layer 'generator/up1'`` or the node's label."""
        return f"layer '{self.layer}'" if self.layer else self.node.label

    def __str__(self):
        return f"{self.severity}: {self.where}: {self.message}\n  Suggestion: {self.suggestion}"


class Findings(list):
    """A list of :class:`Finding` whose ``str`` is one block of text (empty when nothing was found)."""

    def __str__(self):
        return "\n".join(str(f) for f in self) if self else "no findings"

    def for_node(self, node: Node) -> list[Finding]:
        return [f for f in self if f.node is node]


def lint(model: Node, loss: Node | None = None) -> Findings:
    """The findings about ``model``'s graph (see the module docstring), in graph order.

    ``loss``: also report the parameters of ``model`` that ``loss`` does not reach by a
    differentiable path (they would never change in training).

    >>> import minigraph as mg
    >>> from minigraph import layers as L
    >>> up = L.ConvolutionTranspose((3, 3), 8, strides=2, pad=True, name="up")
    >>> [f.code for f in lint(up(mg.input_variable((4, 5, 5))))]
    ['uneven-overlap', '2n-1']
    """
    if not isinstance(model, Node):
        raise TypeError(f"lint: pass the network's output node (e.g. model(x)), got {type(model).__name__}")
    if loss is not None and not isinstance(loss, Node):
        raise TypeError(f"lint: loss must be a graph node (e.g. mg.squared_error(model, target)), got "
                        f"{type(loss).__name__}")
    found = Findings()
    for node in model.topological_order():
        if not isinstance(node, Function):
            continue
        if node.op_name == "ConvolutionTranspose":
            found += _transposed(node)
        elif node.op_name in ("Convolution", "Pooling"):
            found += _windows(node)
        elif node.op_name == "BatchNormalization":
            found += _batch_norm(node)
    if loss is not None:
        found += _unreached(model, loss)
    return found


# transposed convolutions ------------------------------------------------------------------------
def phase_taps(k: int, s: int, d: int = 1, lo: int = 0) -> list[int]:
    """How many kernel taps reach each output phase ``r`` (output rows ``r, r + s, ...``) on one axis.

    Tap ``t`` lands on output ``i*s + t*d - lo``, so its phase is ``(t*d - lo) mod s``; away from the
    borders every row of phase ``r`` receives ``taps[r]`` input rows.
    """
    counts = [0] * s
    for t in range(k):
        counts[(t * d - lo) % s] += 1
    return counts


def _suggested_kernels(k: int, s: int) -> str:
    below, above = (k // s) * s, -(-k // s) * s
    options = [v for v in dict.fromkeys((above, below)) if v >= s]
    return " or ".join(map(str, sorted(options)))


def _transposed(node: Function) -> list[Finding]:
    from .explain import axis_geometry
    out = []
    res = node.attributes
    uneven, gaps, zero, crop, odd = [], [], [], [], []
    for axis, (n, k, s, d, mode, want) in enumerate(axis_geometry(node)):
        lo, hi = res["lower_pad"][axis], res["upper_pad"][axis]
        if not (is_known(lo) and is_known(hi)):
            continue
        taps = phase_taps(k, s, d, lo)
        if 0 in taps:
            gaps.append((axis, taps, k, s, d))
        elif len(set(taps)) > 1:
            uneven.append((axis, taps, k, s))
        if lo < 0 or hi < 0:
            zero.append((axis, max(-lo, 0), max(-hi, 0)))
        keff = geo.effective_kernel(k, d)
        dropped = (_ceil_pos(lo - keff + 1, s), _ceil_pos(hi - keff + 1, s))
        if any(dropped):
            crop.append((axis, *dropped))
        if mode is True and s > 1 and want is None:
            odd.append((axis, n, s))
    kernels = ", ".join(f"{_suggested_kernels(k, s)} on axis {a}" for a, _, k, s in uneven)
    out += _per_axis_warning(
        "uneven-overlap", node, uneven,
        lambda a, t, k, s: f"axis {a}: kernel {k}, stride {s} -> {'/'.join(map(str, t))} taps per output phase",
        "uneven overlap ({parts}): neighbouring output rows receive different numbers of input rows, the known "
        "cause of checkerboard artifacts",
        f"use a kernel that is a multiple of the stride: {kernels} (or resize-then-convolve)")
    out += _per_axis_warning(
        "gaps", node, gaps,
        lambda a, t, k, s, d: f"axis {a}: kernel {k}, stride {s}, dilation {d} -> phases "
                              f"{', '.join(str(r) for r, c in enumerate(t) if c == 0)} of {s} receive no tap",
        "gaps ({parts}): those output rows get no input at all (only the bias)",
        "use a kernel at least as large as the stride (with a dilation that shares no factor with it)")
    out += _per_axis_warning(
        "padding-only-rows", node, zero, lambda a, lo_rows, hi_rows: f"axis {a}: {lo_rows + hi_rows} row(s)",
        "output rows that only padding reaches ({parts}): the output_shape is larger than the full result, so "
        "they are zeros before the bias",
        "pass a smaller output_shape (the largest useful one is (n - 1)*s + Keff - lo) or smaller pads")
    out += _per_axis_warning(
        "discarded-input-rows", node, crop,
        lambda a, lo_rows, hi_rows: f"axis {a}: {lo_rows} at the start, {hi_rows} at the end",
        "the pads crop whole input rows away ({parts}): no output row receives them",
        "use smaller pads (a pad of at least Keff discards an input row)")
    if odd:
        fixed = tuple(n * s for _, n, s in odd)
        shown = fixed[0] if len(fixed) == 1 else fixed
        got = tuple((n - 1) * s + 1 for _, n, s in odd)
        out.append(Finding("2n-1", "warning", node,
                           f"pad=True with stride > 1 and no output_shape gives (n - 1)*s + 1 rows "
                           f"(CNTK's rule: 2n - 1 for stride 2): {got[0] if len(got) == 1 else got}, not n*s = "
                           f"{shown} as most people expect",
                           f"pass output_shape={shown} (or pad='same_upper') to get n*s" if all(map(is_known, fixed))
                           else f"use pad='same_upper', which gives n*s = {shown} for every input size (output_shape "
                                f"takes fixed sizes only)"))
    return out


def _per_axis_warning(code: str, node: Function, cases: list, describe, message: str, hint: str) -> list[Finding]:
    """One warning naming every affected axis (``describe(*case)`` each, joined into ``message``'s
    ``{parts}``); none when no axis is affected."""
    if not cases:
        return []
    parts = "; ".join(describe(*case) for case in cases)
    return [Finding(code, "warning", node, message.format(parts=parts), hint)]


def _ceil_pos(x, s: int) -> int:
    """``max(0, ceil(x / s))``: how many rows a pad of ``x`` beyond the kernel crops."""
    return max(0, -(-x // s)) if is_known(x) else 0


# convolution and pooling windows -------------------------------------------------------------------
def _windows(node: Function) -> list[Finding]:
    from .explain import axis_geometry
    res = node.attributes
    spatial_out = node.shape[len(node.shape) - len(res["lower_pad"]):]
    skipped, dropped = [], []
    for axis, (big, k, s, d, _mode, _) in enumerate(axis_geometry(node)):
        lo, small = res["lower_pad"][axis], spatial_out[axis]
        keff = geo.effective_kernel(k, d)
        if s > keff:
            skipped.append((axis, k, s))
        if not (is_known(big) and is_known(small) and is_known(lo)):
            continue
        start = max(-lo, 0)  # rows before the first window (a negative lower pad)
        end = big - ((small - 1) * s + keff - lo)
        if s <= keff and (start > 0 or end > 0):
            dropped.append((axis, start, max(end, 0)))
    out = []
    what = "pooling windows" if node.op_name == "Pooling" else "the kernel"
    if skipped:
        parts = "; ".join(f"axis {a}: window {k}, stride {s}" for a, k, s in skipped)
        out.append(Finding("gaps", "warning", node, f"{what} skips input rows ({parts}): stride larger than the "
                           f"window, so some rows never reach the output", "use a stride no larger than the window"))
    if dropped:
        parts = "; ".join(f"axis {a}: {e} at the end" if not b else f"axis {a}: {b} at the start, {e} at the end"
                          for a, b, e in dropped)
        out.append(Finding("discarded-input-rows", "info", node,
                           f"{what} never reaches the last input rows ({parts}): the strided windows stop early",
                           "use pad=True (or pads) so that every row is covered, or an input size n with "
                           "(n - Keff) divisible by the stride"))
    return out


# batch normalization ---------------------------------------------------------------------------------
def _producer(node: Node) -> Node:
    """What feeds a batch normalization, skipping bias additions and activations."""
    while isinstance(node, Function) and node.op_name in _PASS_THROUGH:
        if node.op_name == "Plus":
            others = [x for x in node.inputs_direct if not isinstance(x, Parameter)]
            if len(others) != 1:
                return node
            node = others[0]
        else:
            node = node.inputs_direct[0]
    return node


def _bias_layer(plus: Function) -> str:
    path = "/".join(s.name or s.kind for s in plus.scope)
    return f"bias=False on layer '{path}'" if path else "leave the bias out"


def _batch_norm(node: Function) -> list[Finding]:
    out = []
    operand = node.inputs_direct[0]
    if (isinstance(operand, Function) and operand.op_name == "Plus"
            and any(isinstance(x, Parameter) for x in operand.inputs_direct)):
        bias = next(x for x in operand.inputs_direct if isinstance(x, Parameter))
        out.append(Finding("bias-before-batch-norm", "warning", node,
                           f"the bias {bias.name or bias.label} added right before batch normalization is cancelled "
                           f"by its mean subtraction (wasted parameters; its gradient is zero)",
                           f"use {_bias_layer(operand)} (batch normalization has its own bias)"))
    source = _producer(operand)
    if (not node.op_attributes["spatial"] and isinstance(source, Function) and source.op_name in _CONVS
            and len(node.shape) > 1):
        stats = math.prod(node.shape) if all(map(is_known, node.shape)) else "one per element"
        out.append(Finding("per-element-batch-norm", "warning", node,
                           f"batch normalization with per-element statistics ({stats} means and variances, map_rank "
                           f"unset) right after a {source.op_name}: positions do not share statistics",
                           "use BatchNormalization(map_rank=1) (one mean and variance per channel, as PyTorch's "
                           "BatchNorm2d)"))
    return out


# parameters the loss does not reach ------------------------------------------------------------------
def _unreached(model: Node, loss: Node) -> list[Finding]:
    reaches: dict[Node, bool] = {}
    graph = loss.graph
    for node in reversed(loss.topological_order()):  # consumers first
        if node is loss:
            reaches[node] = True
            continue
        reaches[node] = any(reaches[c] and (not isinstance(c, Function) or c.op.differentiable)
                            for c in graph.successors(node))
    out = []
    for p in model.parameters:
        if reaches.get(p):
            continue
        why = ("is not in the loss's graph" if p not in graph else
               "reaches the loss only through non-differentiable ops")
        user = next(iter(model.graph.successors(p)), p)
        out.append(Finding("unreached-parameter", "warning", user,
                           f"parameter {p.name or p.label} {p.shape} {why}: it gets no gradient and cannot train",
                           f"build {loss.label} from this output, or leave the parameter out of the learner"))
    return out
