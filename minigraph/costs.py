"""Memory and compute of a run, worked out from the shape pass before anything runs.

:func:`node_costs` gives, per op node and per sample, its output bytes, multiply-adds (convolutions
and matrix products: the work that dominates) and convolution workspace (the GEMM column buffers the
kernels allocate), as expressions in the symbolic dims when sizes are symbolic. :func:`estimate`
(``model.estimate(batch, training, bindings)``) adds them up for one batch and *simulates the run*:
the engine's order of allocations and frees (each value freed after its last reader; in training the
values and residuals backward reads are kept, then gradients flow back), with every op's own
transient buffers (temporaries of its numpy expressions, im2col/col2im buffers split into chunks of
``max_temp_mem_size_in_samples`` samples). Its ``peak_bytes`` is the most memory the run itself
holds at one moment; parameters and fed arrays, which exist before the run, are not counted.

What each op's kernels allocate is declared on the op, next to its forward and vjp (:class:`~minigraph.graph.Op`'s
``returns_view``, ``keeps_layout``, ``column_buffers``, ``forward_temporaries``, ``backward_temporaries``,
``temporaries_per_input``, ``passes_gradient``); ``tests/test_costs.py`` holds the model to tracemalloc
measurements of real runs.

:func:`check_run` is what a memory limit (``mg.set_memory_limit`` or ``eval(..., memory_limit=)``) calls
before a run: it raises :class:`~minigraph.errors.ResourceError` naming the estimate, the limit, the
largest node and the largest batch that fits.
"""
from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .errors import GraphError, ResourceError
from .graph import Function, Node, Variable
from .limits import format_bytes, get_memory_limit
from .shapes import Dim, DimLike, is_known, make_dim, names_of, num_elements

__all__ = ["NodeCost", "Estimate", "node_costs", "estimate", "check_run"]


@dataclass(frozen=True)
class NodeCost:
    """Per-sample costs of one op node (ints, or :class:`~minigraph.shapes.Dim` expressions).

    output_bytes: its value (0 for ops that return a view of their input). multiply_adds: of its
    forward (convolutions and matrix products; 0 for elementwise ops). workspace_bytes: the column
    buffers of a convolution's forward per sample; ``chunk`` (``max_temp_mem_size_in_samples``, 0 = the
    whole batch) caps how many samples share them. kept_bytes: what a training run keeps of it for
    backward (its value when a vjp reads it: the op's ``saves_output`` or a consumer's ``saves_inputs``,
    plus its residual: batch normalization's normalized operand, max pooling's winners, dropout's mask).
    """

    node: Function
    output_bytes: DimLike
    multiply_adds: DimLike
    workspace_bytes: DimLike = 0
    chunk: int = 0
    kept_bytes: DimLike = 0


@dataclass(frozen=True)
class Estimate:
    """What one run of a model needs, for ``batch`` samples (bytes and multiply-adds).

    parameter_bytes: the parameters (they exist before the run; not in ``peak_bytes``).
    activation_bytes: inference: every op output of the forward pass together; training: what the
    backward pass keeps (values the vjps read and op residuals). workspace_bytes: the largest
    convolution column buffer. multiply_adds: forward (x3 in training: backward computes the data and
    the weight gradients). peak_bytes: the most memory the run itself holds at one moment (simulated:
    kept activations, live values, workspace, gradients and the output). largest_node: the node whose
    step reaches the peak.
    """

    batch: int
    training: bool
    parameter_bytes: int
    activation_bytes: int
    workspace_bytes: int
    multiply_adds: int
    peak_bytes: int
    largest_node: str = ""
    bindings: dict = field(default_factory=dict)

    def __str__(self):
        mode = "training (forward + backward)" if self.training else "inference"
        bound = f", {', '.join(f'{k}={v}' for k, v in sorted(self.bindings.items()))}" if self.bindings else ""
        return (f"{mode}, batch {self.batch}{bound}: peak {format_bytes(self.peak_bytes)} (at {self.largest_node}), "
                f"activations {format_bytes(self.activation_bytes)}, workspace {format_bytes(self.workspace_bytes)}, "
                f"parameters {format_bytes(self.parameter_bytes)}, {self.multiply_adds:,} multiply-adds")


def _itemsize(node: Node) -> int:
    return (node.dtype or np.dtype(np.float32)).itemsize


# per-sample costs (symbolic) -------------------------------------------------------------------
def _conv_sizes(shapes: list, out_shape: tuple, attrs: Mapping, transposed: bool) -> tuple:
    """``(in channels, out channels, prod(kernel), input cells, output cells, big cells, small cells)``."""
    w, x = shapes
    rr = attrs["reduction_rank"]
    kernel = num_elements(attrs["kernel_shape"])
    c_in = x[0] if rr else 1
    in_cells, out_cells = num_elements(x[rr:]), num_elements(out_shape[1:])
    big, small = (out_cells, in_cells) if transposed else (in_cells, out_cells)
    return c_in, out_shape[0], kernel, in_cells, out_cells, big, small


def _multiply_adds(node: Function, shapes: list, out_shape: tuple, attrs: Mapping) -> DimLike:
    op = node.op_name
    if node.op.column_buffers:
        transposed = node.op.transposed
        c_in, c_out, kernel, in_cells, out_cells, _, _ = _conv_sizes(shapes, out_shape, attrs, transposed)
        groups = attrs.get("groups", 1)
        cells = in_cells if transposed else out_cells
        return cells * c_in * c_out * kernel // groups
    if op == "Times":
        left, right = shapes
        k = len(right) - attrs["output_rank"]
        return num_elements(left) * num_elements(right[k:])
    return 0


def _workspace(node: Function, shapes: list, out_shape: tuple, attrs: Mapping, itemsize: int) -> DimLike:
    """Per-sample bytes of a convolution's forward buffers: correlate's im2col columns ``C*K x small``
    (plus the per-phase copy of the input), scatter's GEMM result ``O*K x small`` (plus a phase buffer)."""
    if not node.op.column_buffers:
        return 0
    c_in, c_out, kernel, in_cells, _, big, small = _conv_sizes(shapes, out_shape, attrs, node.op.transposed)
    if not node.op.transposed:
        return (c_in * kernel * small + c_in * big) * itemsize
    phase = _phase_cells(attrs, out_shape)
    return (c_out * kernel * small + c_out * phase) * itemsize


def _phase_cells(attrs: Mapping, big_shape: tuple) -> DimLike:
    """Cells of the largest output phase of a strided col2im (``ceil(N/s)`` per axis); 0 without strides."""
    strides = attrs["strides"]
    if all(s == 1 for s in strides):
        return 0
    return num_elements([(n + s - 1) // s for n, s in zip(big_shape[-len(strides):], strides)])


def node_costs(model: Node) -> list[NodeCost]:
    """Per-sample :class:`NodeCost` of every op node of ``model``'s graph, in topological order."""
    if not isinstance(model, Node):
        raise TypeError(f"pass a graph node (the network's output), got {type(model).__name__}")
    out = []
    graph = model.graph
    for node in model.topological_order():
        if not isinstance(node, Function):
            continue
        shapes = [x.shape for x in node.inputs_direct]
        attrs = node.attributes
        size = _itemsize(node)
        output = 0 if node.op.returns_view else num_elements(node.shape) * size
        read = node.op.saves_output or any(c.op.saves_inputs for c in graph.successors(node))
        kept = (output if read and node is not model else 0) + _residual(node, output, size)
        out.append(NodeCost(node, output, _multiply_adds(node, shapes, node.shape, attrs),
                            _workspace(node, shapes, node.shape, attrs, size),
                            attrs.get("max_temp_mem_size_in_samples", 0) or 0, kept))
    return out


def _residual(node: Function, output: DimLike, itemsize: int) -> DimLike:
    """Per-sample bytes of what an op's forward hands its vjp besides values (training runs)."""
    op = node.op_name
    if op in ("BatchNormalization", "LayerNormalization", "Dropout"):
        return output
    if op == "Pooling" and node.op_attributes["pooling_type"] == "max":
        return output // itemsize * 4  # int32 winning offsets
    return 0


def symbolic_max(values: list) -> DimLike:
    """The largest of ``values`` (ints or dims); a ``Max(...)`` expression when sympy cannot order them."""
    if not values:
        return 0
    if all(is_known(v) for v in values):
        return max(values)
    return make_dim(sp.Max(*(v.expr if isinstance(v, Dim) else sp.Integer(v) for v in values)))


# the simulated run ---------------------------------------------------------------------------------
@dataclass
class _Step:
    node: Function
    slots: list
    index: int
    in_shapes: list
    out_shape: tuple
    attrs: dict
    batched: bool
    batch_last: bool


class _Run:
    """Replays the engine's allocations for one batch: sizes in bytes, concrete shapes."""

    def __init__(self, model: Node, batch: int, bindings: Mapping[str, int]):
        from .shape_inference import bind
        self.order = model.topological_order()
        self.index = {n: i for i, n in enumerate(self.order)}
        bound = bind(self.order, dict(bindings), batch)
        self.batch = batch
        self.shapes = [bound.shapes[n] for n in self.order]
        self.sizes = [(n.dtype or np.dtype(np.float32)).itemsize for n in self.order]
        batched = [isinstance(n, Variable) for n in self.order]
        layout = [False] * len(self.order)  # whether the value is laid out batch-last (a conv's output)
        self.steps: list[_Step] = []
        for i, node in enumerate(self.order):
            if not isinstance(node, Function):
                continue
            slots = [self.index[x] for x in node.inputs_direct]
            batched[i] = any(batched[s] for s in slots)
            first = next((s for s in slots if batched[s]), slots[0])
            layout[i] = node.op.column_buffers or (node.op.keeps_layout and layout[first])
            self.steps.append(_Step(node, slots, i, [self.shapes[s] for s in slots], self.shapes[i],
                                    bound.attrs[node], batched[i], layout[first]))
        self.batched = batched

    def nbytes(self, i: int) -> int:
        rows = self.batch if self.batched[i] else 1
        return rows * math.prod(self.shapes[i]) * self.sizes[i]

    # forward ------------------------------------------------------------------------------------
    def forward_bytes(self, step: _Step, training: bool) -> tuple[int, int, int]:
        """``(output, transient, residual)`` bytes of one forward step."""
        op = step.node.op_name
        out = 0 if step.node.op.returns_view else self.nbytes(step.index)
        size = self.sizes[step.index]
        if op == "Dropout" and not training:
            return 0, 0, 0
        if step.node.op.column_buffers:
            return out, self.conv_forward(step, size, training), self.kept_input_bytes(step) if training else 0
        transient = int(step.node.op.forward_temporaries * self._temporaries_unit(step, out))
        residual = 0
        if op == "BatchNormalization":
            residual = out  # xhat
            if not training:
                transient = out  # x - mean
        elif op == "LayerNormalization":
            residual = out
        elif op == "Dropout":
            residual = out
        elif op == "Pooling":
            ins = self.nbytes(step.slots[0])
            padded = any(lo != 0 or hi != 0 for lo, hi in zip(step.attrs["lower_pad"], step.attrs["upper_pad"]))
            residual = out // size * 4 if step.attrs["pooling_type"] == "max" else 0  # int32 winners
            transient = (ins if padded else 0) + residual
        return out, transient, residual if training else 0

    def _temporaries_unit(self, step: _Step, out: int) -> int:
        """Bytes an op's ``forward_temporaries`` / ``backward_temporaries`` count in: its output's, or its
        first input's when the op declares ``temporaries_per_input``."""
        return self.nbytes(step.slots[0]) if step.node.op.temporaries_per_input else out

    def _chunk(self, step: _Step) -> int:
        chunk = step.attrs.get("max_temp_mem_size_in_samples", 0) or 0
        return chunk if 0 < chunk < self.batch else self.batch

    def _direct(self, step: _Step, b: int, size: int) -> bool:
        """Whether im2col reads the convolution's input in place (batch-last, runs of at least the op's
        ``direct_run_bytes``)."""
        return step.batch_last and b * size >= step.node.op.direct_run_bytes

    def keeps_input(self, step: _Step) -> bool:
        """Whether a transposed convolution run for a backward keeps its operand's batch-last copy (its
        residual, read again by the weight gradient): an operand laid out otherwise and no chunks."""
        return step.node.op.transposed and not step.batch_last and self._chunk(step) == self.batch

    def kept_input_bytes(self, step: _Step) -> int:
        """Bytes of the operand copy :meth:`keeps_input` describes (0 when none is kept)."""
        return self.nbytes(step.slots[1]) if step.node.op.column_buffers and self.keeps_input(step) else 0

    def conv_forward(self, step: _Step, size: int, training: bool = False) -> int:
        """Transient bytes of correlate (convolution) or scatter (transposed convolution) for one chunk,
        the reused buffers of :meth:`reused` included (the residual of :meth:`keeps_input` is not)."""
        node = step.node
        b = self._chunk(step)
        c_in, c_out, kernel, cells, _, big, small = _conv_sizes(step.in_shapes, step.out_shape, step.attrs,
                                                               node.op.transposed)
        work = sum(self.reused(step, size))
        if not node.op.transposed:
            if not self._direct(step, b, size):
                work += c_in * big * b * size  # one copy of the input per phase
            if b < self.batch:
                work += math.prod(step.out_shape) * size * b  # the chunk's GEMM result before it is copied out
        elif not step.batch_last and not (training and self.keeps_input(step)):
            # the input is transposed to batch-last a block of positions at a time (scatter's rule: no
            # block larger than the GEMM result, nor smaller than 1/16 of the input)
            block = min(cells, max(-(-cells // 16), cells * c_out * kernel // c_in))
            work += c_in * block * b * size
        return int(work)

    def reused(self, step: _Step, size: int, backward: bool = False, needs: tuple = (True, True)) -> tuple[int, int]:
        """Bytes of the kernel buffers one step takes from the reused workspace (``minigraph.workspace``):
        ``(columns, phases)``, im2col's or the GEMM's columns and col2im's phase buffer."""
        b = self._chunk(step)
        transposed = step.node.op.transposed
        c_in, c_out, kernel, _, _, big, small = _conv_sizes(step.in_shapes, step.out_shape, step.attrs, transposed)
        c_big = c_out if transposed else c_in  # the channels of the side im2col gathers / col2im adds to
        columns = c_big * kernel * small * b * size
        scatters = transposed != backward and (not backward or needs[1])  # a col2im runs in this step
        phases = c_big * _phase_cells(step.attrs, step.out_shape if transposed else step.in_shapes[1]) * b * size
        return int(columns), int(phases) if scatters else 0

    # backward -----------------------------------------------------------------------------------
    def backward_bytes(self, step: _Step, needs: list) -> tuple[list[int], int]:
        """Bytes of the gradient each needed input gets (0: the same array passed on) and transient bytes."""
        op = step.node.op
        out = self.nbytes(step.slots[0]) if op.returns_view else self.nbytes(step.index)
        grads = [self.nbytes(s) if need else 0 for s, need in zip(step.slots, needs)]
        if op.passes_gradient:
            # an input without the batch axis gets the gradient summed over it (a new array) when the op
            # broadcasts its inputs against each other (several inputs)
            grads = [0 if self.batched[s] or len(step.slots) == 1 else self.nbytes(s) for s in step.slots]
            return [g if need else 0 for g, need in zip(grads, needs)], 0
        if op.column_buffers:
            return grads, self.conv_backward(step, needs)
        return grads, int(op.backward_temporaries * self._temporaries_unit(step, out))

    def conv_backward(self, step: _Step, needs: list) -> int:
        """Transient bytes of a convolution's vjp, the reused buffers of :meth:`reused` included."""
        size = self.sizes[step.index]
        b = self._chunk(step)
        c_in, c_out, kernel, in_cells, out_cells, big, small = _conv_sizes(
            step.in_shapes, step.out_shape, step.attrs, step.node.op.transposed)
        work = sum(self.reused(step, size, True, tuple(needs)))
        if not step.node.op.transposed:
            # weight gradient: correlate's columns and, unless read in place, the input's phase copy; the
            # output gradient is copied to batch-last
            copy = c_in * big * b * size if needs[0] and not self._direct(step, b, size) else 0
            return work + copy + c_out * small * b * size
        # transposed: one correlate of the output gradient (its phase copy, c_out x big); the input is
        # copied to batch-last for the weight gradient unless the forward kept its copy
        rows = 0 if step.batch_last or not needs[0] or self.keeps_input(step) else c_in * small * b * size
        return work + c_out * big * b * size + rows


def _bindings(model: Node, bindings) -> dict:
    bound = dict(bindings or {})
    missing = sorted(set().union(*(names_of(n.shape) for n in model.graph)) - set(bound))
    if missing:
        raise GraphError(f"estimate of {model.label}: sizes depend on {', '.join(missing)}; pass "
                         f"bindings={{{', '.join(repr(m) + ': ...' for m in missing)}}} (or feed data)")
    return bound


def estimate(model: Node, batch: int = 1, training: bool = False,
             bindings: Mapping[str, int] | None = None) -> Estimate:
    """What a run of ``model`` on ``batch`` samples needs (see :class:`Estimate`); ``training=True``
    estimates forward plus backward for every parameter. Symbolic sizes need ``bindings``
    (``{"H": 64}``).

    >>> import minigraph as mg
    >>> from minigraph import layers as L
    >>> y = L.ConvolutionTranspose((4, 4), 8, strides=2, pad=True, output_shape=(16, 16))(mg.input_variable((4, 8, 8)))
    >>> e = estimate(y, batch=64)
    >>> e.multiply_adds, e.activation_bytes
    (2097152, 1048576)
    """
    if not isinstance(model, Node):
        raise TypeError(f"estimate: pass a graph node (the network's output), got {type(model).__name__}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"estimate: batch must be a positive int, got {batch!r}")
    if not isinstance(training, bool):
        raise TypeError(f"estimate: training must be a bool, got {training!r}")
    bound = _bindings(model, bindings)
    run = _Run(model, int(batch), bound)
    params = sum(int(math.prod(p.shape)) * _itemsize(p) for p in model.parameters)
    costs = node_costs(model)
    macs = sum(_concrete(c.multiply_adds, bound) for c in costs) * run.batch * (3 if training else 1)
    workspace = max((run.conv_forward(s, run.sizes[s.index], training) for s in run.steps if s.node.op.column_buffers),
                    default=0)
    peak, at = _simulate(run, model, training)
    activations = sum(_concrete(c.kept_bytes if training else c.output_bytes, bound) for c in costs) * run.batch
    if training:  # what only a run's layout decides: transposed convolutions' kept operand copies
        activations += sum(run.kept_input_bytes(s) for s in run.steps)
    return Estimate(run.batch, training, params, activations, workspace, int(macs), peak, at, bound)


def _concrete(value: DimLike, bound: dict) -> int:
    """``value`` with the names bound (the caller has checked that every name is)."""
    result = value.subs(bound) if isinstance(value, Dim) else value
    if not isinstance(result, int):
        raise GraphError(f"size {value} still depends on {', '.join(result.names)} with {bound}")
    return result


def _where(node: Node) -> str:
    """``ConvolutionTranspose in layer 'generator/up1'`` (the node's label outside layers)."""
    path = "/".join(s.name or s.kind for s in node.scope)
    return f"{node.op_name} in layer '{path}'" if path else node.label


def _simulate(run: _Run, model: Node, training: bool) -> tuple[int, str]:
    """Replay forward (and backward): the peak bytes and the node whose step reaches it."""
    n = len(run.order)
    last_use = list(range(n))
    needed = [False] * n
    for step in run.steps:
        op = step.node.op
        for s in step.slots:
            last_use[s] = step.index
            needed[s] = needed[s] or op.saves_inputs
        needed[step.index] = needed[step.index] or op.saves_output
    root = run.index[model]
    live: dict[int, int] = {}          # array owner index -> bytes the run allocated for it
    base_of: dict[int, int] = {}       # value index -> the owner of its array (views share one)
    holders: dict[int, set] = {}       # owner -> the values still holding its array
    peak, at, residuals = 0, "", 0

    def release(i: int) -> None:
        owner = base_of.pop(i, None)
        if owner is None:
            return
        holders[owner].discard(i)
        if not holders[owner]:
            live.pop(owner, None)

    held = [0, 0]  # the reused kernel buffers (columns, phases): once grown, held for the rest of the run

    def holding(step: _Step, transient: int, backward: bool = False, needs: tuple = ()) -> int:
        """``transient`` with the step's reused buffers counted as held from now on."""
        if not step.node.op.column_buffers:
            return transient
        reused = run.reused(step, run.sizes[step.index], backward, needs or (True, True))
        held[:] = [max(h, r) for h, r in zip(held, reused)]
        return transient - sum(reused)

    for step in run.steps:
        out, transient, residual = run.forward_bytes(step, training)
        transient = holding(step, transient)
        total = sum(live.values()) + residuals + out + transient + sum(held)
        if total > peak:
            peak, at = total, _where(step.node)
        if out:
            live[step.index] = out
            base_of[step.index] = step.index
            holders[step.index] = {step.index}
        elif step.slots and step.slots[0] in base_of:  # a view of its input's array
            owner = base_of[step.slots[0]]
            base_of[step.index] = owner
            holders[owner].add(step.index)
        residuals += residual
        for s in dict.fromkeys(step.slots):
            if last_use[s] == step.index and s != root and not (training and needed[s]):
                release(s)
    if not training:
        return peak, at
    # backward: the root gradient (ones), then each step's input gradients, each freed once consumed
    params = {run.index[p] for p in model.parameters if p in run.index}
    requires = [i in params for i in range(n)]
    for step in run.steps:
        requires[step.index] = requires[step.index] or any(requires[s] for s in step.slots)
    grads: dict[int, int] = {root: run.nbytes(root)}
    kept_now = sum(live.values()) + residuals
    for step in reversed(run.steps):
        if step.index not in grads or not requires[step.index] or not step.node.op.differentiable:
            continue
        needs = [requires[s] for s in step.slots]
        new, transient = run.backward_bytes(step, needs)
        transient = holding(step, transient, True, tuple(needs))
        total = kept_now + sum(grads.values()) + sum(new) + transient + sum(held)
        if total > peak:
            peak, at = total, f"{_where(step.node)}, backward"
        g = grads.pop(step.index)
        for s, need, b in zip(step.slots, needs, new):
            if need:  # b == 0: the same array handed on; a second gradient for s is summed into a new one
                grads[s] = run.nbytes(s) if s in grads else (b or g)
    return peak, at


# memory limit ------------------------------------------------------------------------------------
_ESTIMATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {(backward, batch, bindings): Estimate}


def check_run(model: Node, feed: Mapping, backward: bool, limit: int | None = None) -> None:
    """Raise ResourceError before a run of ``model`` on ``feed`` (forward, and backward when
    ``backward``) whose estimated peak exceeds ``limit`` (default: ``mg.get_memory_limit()``; no limit:
    nothing to check). Feed entries for other graphs' inputs are ignored; estimates are cached on
    ``model`` per batch size and bindings."""
    limit = get_memory_limit() if limit is None else limit
    if limit is None:
        return
    from .shape_inference import bind_feed, feed_arrays
    names = {v.name for v in model.arguments}
    own = {k: v for k, v in feed.items() if k in names or k in model.arguments} if isinstance(feed, Mapping) else feed
    bindings, batch = bind_feed(feed_arrays(model, own))
    cache = _ESTIMATES.setdefault(model, {})
    key = (backward, batch, tuple(sorted(bindings.items())))
    result = cache.get(key)
    if result is None:
        if len(cache) >= 8:  # bounded when sizes keep changing
            cache.pop(next(iter(cache)))
        result = cache[key] = estimate(model, batch, backward, bindings)
    if result.peak_bytes <= limit:
        return
    fitting = _fitting_batch(model, batch, backward, bindings, limit)
    mode = "training step" if backward else "run"
    lines = [f"{model.label}: a {mode} on {batch} samples needs about {format_bytes(result.peak_bytes)} "
             f"({result.peak_bytes} bytes), more than the memory limit of {format_bytes(limit)} ({limit} bytes); "
             f"largest node: {result.largest_node}"]
    lines.append(f"  Hint: a batch of {fitting} fits" if fitting else
                 "  Hint: not even one sample fits; use a smaller input or raise the limit")
    chunked = _chunk_hint(model, batch, backward, bindings, limit)
    if chunked:
        lines.append(f"  Hint: {chunked}")
    raise ResourceError("\n".join(lines), estimate=result.peak_bytes, limit=limit, largest_node=result.largest_node,
                        fitting_batch=fitting)


def _fitting_batch(model: Node, batch: int, training: bool, bindings: dict, limit: int) -> int:
    """The largest batch below ``batch`` whose estimate fits (0 when none): bisection."""
    lo, hi = 0, batch - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate(model, mid, training, bindings).peak_bytes <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _chunk_hint(model: Node, batch: int, training: bool, bindings: dict, limit: int) -> str:
    """Suggest max_temp_mem_size_in_samples where the column buffers of a convolution decide the peak
    and processing the batch in chunks would fit the limit."""
    run = _Run(model, batch, bindings)
    convs = [s for s in run.steps if s.node.op.column_buffers and run._chunk(s) == batch]
    if not convs:
        return ""
    result = estimate(model, batch, training, bindings)
    step = max(convs, key=lambda s: run.conv_forward(s, run.sizes[s.index]))
    work = run.conv_forward(step, run.sizes[step.index])
    spare = limit - (result.peak_bytes - work)
    per_sample = -(-work // batch)
    # chunked, two chunks' buffers overlap for a moment
    samples = min(batch - 1, spare // (2 * per_sample)) if spare > 0 else 0
    if samples < 1:
        return ""
    layer = "/".join(s.name or s.kind for s in step.node.scope) or step.node.label
    return (f"the column buffers of '{layer}' take {format_bytes(work)}; max_temp_mem_size_in_samples={samples} "
            f"on '{layer}' processes the batch {samples} samples at a time in smaller buffers")
