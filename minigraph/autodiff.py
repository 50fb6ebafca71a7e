"""Forward execution and reverse-mode gradients.

A graph is compiled once per feed signature (shapes and dtypes of the fed arrays) into a
:class:`Program`: the nodes in topological order with concrete shapes and attributes from the
shape pass (:func:`minigraph.shape_inference.bind`). Forward runs the steps, freeing each value after its
last use unless backward needs it; backward walks the steps in reverse, calling each op's vjp only
for nodes that lie between a ``wrt`` node and the root, and sums fan-out gradients.

Run-time arrays carry a leading batch axis: ``N`` for values that depend on a fed input, ``1`` for
values that depend only on parameters and constants (they broadcast over the batch).

Threads: programs are compiled under one lock (:data:`_CACHE_LOCK`) and are read-only afterwards,
so any number of threads may run ``eval``/``forward``/``grad`` of one graph at once, with any feed
signatures. What must not overlap with other runs of the same graph: training-mode runs that update
state in place (batch normalization's running statistics), and changing parameter or constant values
(learner updates) while another thread runs the graph. Random ops draw from the run's ``seed``
(an int or a Generator, one per thread for reproducible masks) or else the shared global generator.
"""
from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import networkx as nx
import numpy as np

from .checks import check_bool, check_seed
from .errors import GraphError, ResourceError, ShapeError
from .graph import Constant, Function, Node, Op, Parameter, Seed, Variable
from .rng import ops_rng
from .shape_inference import bind, bind_feed, feed_arrays, settle_dtypes
from .shapes import shape_str


@dataclass
class Context:
    """Per-run settings every op can read: ``training`` (dropout, batch statistics), ``rng``,
    ``for_backward``: whether the run keeps what a backward pass needs (an op may then hand its vjp
    work it would otherwise redo, as its residual), and ``statistics``: when a dict, the ops that
    update inputs in place while training (``Op.updates_inputs``: batch normalization's running
    estimates) leave them unchanged and put the values they would fold in there instead, by node
    (``statistics[node] = (minibatch mean, minibatch variance)``; :func:`minigraph.update_bn`)."""

    training: bool
    rng: np.random.Generator
    for_backward: bool = False
    statistics: dict | None = None


@dataclass
class Step:
    """One function node of a compiled program, with everything its op needs at run time."""

    node: Function
    op: Op
    label: str
    attrs: dict[str, Any]                  # concrete attributes: the user's and those the shape rule resolved
    in_shapes: list[tuple[int, ...]]       # concrete static shapes of the inputs
    in_array_shapes: list[tuple[int, ...]]  # run-time array shapes of the inputs: (N or 1, *static)
    dtypes: list[np.dtype | None]          # dtypes of the inputs
    out_shape: tuple[int, ...]
    dtype: np.dtype
    cache: dict[str, Any]  # per-shape plan cache of the op, shared by every program using this node
    slots: list[int]       # program indices of the inputs
    index: int             # program index of this node
    frees: tuple[int, ...] = ()               # values no later step reads (freed after this step when only evaluating)
    frees_for_backward: tuple[int, ...] = ()  # ... of those, the ones backward does not read either


@dataclass
class Program:
    """A graph compiled for one feed signature: what forward runs and backward walks back."""

    order: list[Node]                  # every node, topologically sorted
    index: dict[Node, int]             # node -> position in order
    leaves: list[tuple[int, Node]]     # (position, node) of inputs, parameters, constants and given nodes
    steps: list[Step]                  # Step per function node, in order
    shapes: list[tuple[int, ...]]      # concrete static shape of each node
    batch: int
    bindings: dict[str, int]
    requires_cache: dict[frozenset[Node], list[bool]] = field(default_factory=dict)  # wrt set -> needs gradients


@dataclass
class ForwardState:
    """What :func:`forward` leaves for :func:`backward`: kept values and op residuals."""

    root: Node
    program: Program
    values: dict[Node, np.ndarray]  # node -> array, for the root, ``keep`` and what backward needs
    residuals: dict[int, Any] = field(default_factory=dict)  # step index -> what its vjp reads
    ctx: Context | None = None
    for_backward: bool = True

    def __getitem__(self, node: Node) -> np.ndarray:
        return self.values[node]


def _union_order(root: Node, extra: tuple[Node, ...], given: Collection[Node] = ()) -> list[Node]:
    """Topological order of the graphs of ``root`` and the ``extra`` outputs together. With ``given``
    nodes (values supplied by the caller), the walk stops at them: their ancestors are left out
    unless another path needs them."""
    if not extra and not given:
        return root.topological_order()
    union = nx.compose_all([root.graph, *(e.graph for e in extra)]) if extra else root.graph
    if given:
        needed: set[Node] = set()
        stack = [root, *extra]
        while stack:
            node = stack.pop()
            if node not in needed:
                needed.add(node)
                if node not in given:
                    stack.extend(node.inputs_direct)
        union = union.subgraph(needed)
    return list(nx.lexicographical_topological_sort(union, key=lambda n: n.uid))


def _given_batch(given: Mapping[Node, np.ndarray], batch: int | None) -> int:
    """The batch size with the ``given`` values counted: each has ``batch`` rows or 1 (a value that
    depends on no fed input); ``batch`` is None when no input is fed."""
    if batch is None:
        batch = max(arr.shape[0] for arr in given.values())
    for node, arr in given.items():
        if arr.shape[0] not in (1, batch):
            raise ShapeError(f"given value for {node.label} has {arr.shape[0]} rows; the batch is {batch} "
                             f"(give {batch} rows, or 1 for a value that depends on no fed input)")
    return batch


def check_given(roots: tuple[Node, ...], given: object) -> dict[Node, np.ndarray]:
    """``given`` (node -> array, e.g. values of an earlier :class:`ForwardState`) checked: nodes of
    the graphs of ``roots``, arrays of the node's dtype with a leading batch axis and its rank."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise GraphError(f"given must be a dict of node -> array, got {type(given).__name__}")
    checked = {}
    for node, value in given.items():
        if not isinstance(node, Node) or not any(node in r.graph for r in roots):
            raise GraphError(f"given: {getattr(node, 'label', repr(node))} is not a node of the graph of "
                             f"{roots[0].label}")
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise GraphError(f"given value for {node.label}: dtype {arr.dtype} is not numeric")
        if arr.ndim != len(node.shape) + 1:
            raise ShapeError(f"given value for {node.label}: array of shape {arr.shape} does not match static "
                             f"shape {shape_str(node.shape)} with a leading batch axis")
        checked[node] = arr if node.dtype is None else arr.astype(node.dtype, copy=False)
    return checked


def compile_program(root: Node, arrays: Mapping[Variable, np.ndarray], extra: tuple[Node, ...] = (),
                    given: Mapping[Node, np.ndarray] = {}) -> Program:  # noqa: B006
    """The program computing ``root`` (and the ``extra`` outputs) for these fed arrays and ``given``
    node values (leaves of the program: nothing above them runs, gradients stop there): cached per
    signature (which variables and given nodes, shapes and dtypes), so binding checks and shape
    rules run once per new signature."""
    signature = (tuple((v.uid, a.shape, a.dtype.char) for v, a in arrays.items()), tuple(e.uid for e in extra),
                 tuple((n.uid, a.shape, a.dtype.char) for n, a in given.items()))
    program: Program | None = root.program_cache.get(signature)
    if program is not None:
        return program
    with _CACHE_LOCK:  # one thread compiles a signature; the others then find it
        program = root.program_cache.get(signature)
        if program is None:
            program = _compile(root, arrays, extra, given)
            _bounded_put(root.program_cache, signature, program, 16)  # bounded when shapes keep changing
    return program


_CACHE_LOCK = threading.Lock()
"""Guards the program caches (per root) and plan caches (per node) so that threads may run the same
graph at once. Compiling under it also makes a graph's one-time work (dtypes settling, lazy
parameters initialised) happen once. Runs themselves take no lock."""


def _bounded_put(cache: dict[Any, Any], key: Any, value: Any, size: int) -> None:
    """``cache[key] = value``, first dropping the oldest entries so that at most ``size`` remain."""
    for old in list(cache)[:max(len(cache) - size + 1, 0)]:
        cache.pop(old, None)
    cache[key] = value


def _compile(root: Node, arrays: Mapping[Variable, np.ndarray], extra: tuple[Node, ...],
             given: Mapping[Node, np.ndarray]) -> Program:
    bindings, batch = bind_feed(arrays)
    if given:
        batch = _given_batch(given, batch if arrays else None)
    order = _union_order(root, extra, given)
    settle_dtypes(order)
    bound = bind(order, bindings, batch, given)
    for node, arr in given.items():
        if tuple(bound.shapes[node]) != arr.shape[1:]:
            raise ShapeError(f"given value for {node.label}: array of shape {arr.shape} does not match its shape "
                             f"{shape_str(bound.shapes[node])} for this feed (batch axis first)")
    index = {n: i for i, n in enumerate(order)}
    steps = []
    last_use = list(range(len(order)))
    needed = [False] * len(order)
    batched = [False] * len(order)  # depends on a fed input, so has N rows rather than 1
    for i, node in enumerate(order):
        if node in given:
            batched[i] = given[node].shape[0] == batch
            continue
        if not isinstance(node, Function):
            batched[i] = isinstance(node, Variable)
            continue
        batched[i] = any(batched[index[x]] for x in node.inputs_direct)
        slots = [index[x] for x in node.inputs_direct]
        in_shapes = [bound.shapes[x] for x in node.inputs_direct]
        key = (tuple(map(tuple, in_shapes)), repr(sorted(bound.attrs[node].items(), key=lambda kv: kv[0])))
        cache = node.plan_cache.get(key)
        if cache is None:
            cache = {}
            _bounded_put(node.plan_cache, key, cache, 32)  # bounded when sizes keep changing
        in_array_shapes = [(batch if batched[s] else 1, *shape) for s, shape in zip(slots, in_shapes)]
        dtype = cast(np.dtype, node.dtype)  # settle_dtypes gave every node one
        steps.append(Step(node, node.op, node.label, bound.attrs[node], in_shapes, in_array_shapes,
                          [x.dtype for x in node.inputs_direct], bound.shapes[node], dtype, cache, slots, i))
        for s in slots:
            last_use[s] = i
            if node.op.saves_inputs:
                needed[s] = True
        if node.op.saves_output:
            needed[i] = True
    for step in steps:
        step.frees = tuple(s for s in dict.fromkeys(step.slots) if last_use[s] == step.index)
        step.frees_for_backward = tuple(s for s in step.frees if not needed[s])
    leaves = [(i, n) for i, n in enumerate(order) if not isinstance(n, Function) or n in given]
    return Program(order, index, leaves, steps, [bound.shapes[n] for n in order], batch, dict(bindings))


def needed_arguments(root: Node, extra: tuple[Node, ...] = (), given: Collection[Node] = ()) -> list[Variable]:
    """The variables a run of ``root`` (and ``extra``) with values for the ``given`` nodes needs fed,
    in creation order (cached on the root per set of given nodes)."""
    key = ("arguments", tuple(e.uid for e in extra), tuple(sorted(n.uid for n in given)))
    arguments = root.program_cache.get(key)
    if arguments is None:
        order = _union_order(root, extra, given)
        arguments = sorted((n for n in order if isinstance(n, Variable) and n not in given), key=lambda v: v.uid)
        root.program_cache[key] = arguments
    return arguments


def _leaf_value(node: Node, arrays: Mapping[Variable, np.ndarray], given: Mapping[Node, np.ndarray]) -> np.ndarray:
    if node in given:
        return given[node]
    if isinstance(node, Variable):
        return arrays[node]
    if isinstance(node, (Parameter, Constant)):
        return node.value[None]
    raise GraphError(f"{node.label}: unknown leaf type {type(node).__name__}")


def forward(root: Node, feed: Mapping[Any, Any], keep: Sequence[Node] = (), training: bool = False,
            seed: Seed = None, for_backward: bool = True,
            given: Mapping[Node, np.ndarray] | None = None, statistics: dict | None = None) -> ForwardState:
    """Run the graph of ``root``; see :meth:`minigraph.graph.Node.forward`. Nodes in ``keep`` that
    ``root`` does not depend on are computed in the same pass (e.g. a metric beside a loss).
    ``given`` (node -> array) supplies node values, e.g. from an earlier forward state: those nodes
    are leaves of this run (nothing above them runs, their inputs need no feed) and gradients stop
    there (``backward(..., wrt=[node])`` gives the gradient at the node itself). ``statistics``: see
    :class:`Context` (None: in-place updates happen as usual). ``training`` is a bool; ``seed`` an
    int >= 0 or a ``numpy.random.Generator`` (None: the global one)."""
    check_bool(training, "training", f"{root.label}: run")
    seed = check_seed(seed, f"{root.label}: run", generator=True)
    for k in keep:
        if not isinstance(k, Node):
            raise GraphError(f"keep: {k!r} is not a node")
    extra = tuple(dict.fromkeys(k for k in keep if k not in root.graph))
    given = check_given((root, *extra), given)
    arguments = None
    if given:
        arguments = needed_arguments(root, extra, given)
    elif extra:
        arguments = sorted({v for n in (root, *extra) for v in n.arguments}, key=lambda v: v.uid)
    arrays = feed_arrays(root, feed, arguments)
    program = compile_program(root, arrays, extra, given)
    cut = [k.label for k in keep if k not in program.index]
    if cut:
        raise GraphError(f"keep: {', '.join(cut)} lie above the given nodes, so this run does not compute them")
    ctx = Context(training, np.random.default_rng(seed) if seed is not None else ops_rng(), for_backward, statistics)
    keep_idx = {program.index[root], *(program.index[k] for k in keep)}
    values: list = [None] * len(program.order)
    for i, node in program.leaves:
        values[i] = _leaf_value(node, arrays, given)
    leaf_arrays = [values[i] for i, _ in program.leaves]
    residuals: dict[int, Any] = {}
    for step in program.steps:
        try:
            y, residual = step.op.forward(step, [values[s] for s in step.slots], ctx)
        except MemoryError as exc:  # numpy could not allocate: name the node (a limit fails before: set_memory_limit)
            if isinstance(exc, ResourceError):
                raise
            raise ResourceError(f"{step.label}: not enough memory to compute it (output shape "
                                f"{(program.batch, *step.out_shape)}: {exc}); use a smaller batch or input, or set "
                                f"mg.set_memory_limit to fail before allocating") from None
        values[step.index] = y
        if for_backward and residual is not None:
            residuals[step.index] = residual
        for s in step.frees_for_backward if for_backward else step.frees:  # what nobody reads again
            if s not in keep_idx:
                values[s] = None
    if for_backward:
        kept = {n: values[i] for i, n in enumerate(program.order) if values[i] is not None}
    else:
        kept = {program.order[i]: values[i] for i in keep_idx}
    for i in keep_idx:  # what the caller reads: never a view of a parameter, constant or fed array
        node = program.order[i]
        if node in kept:
            kept[node] = _unaliased(kept[node], leaf_arrays)
    return ForwardState(root, program, kept, residuals, ctx, for_backward)


def _unaliased(value: np.ndarray, leaf_arrays: list[np.ndarray | None]) -> np.ndarray:
    """``value``, or a copy when it may share memory with a leaf's array (``W.eval()``,
    ``reshape(x).eval()``): writing into a result must never change the model or the caller's data."""
    if any(leaf is not None and np.may_share_memory(value, leaf) for leaf in leaf_arrays):
        return cast(np.ndarray, value.copy())
    return value


def evaluate(root: Node, feed: Mapping[Any, Any], training: bool = False, seed: Seed = None) -> np.ndarray:
    """The value of ``root`` for ``feed``: ``(N, *root.shape)``."""
    return forward(root, feed, training=training, seed=seed, for_backward=False).values[root]


def _wrt_nodes(root: Node, program: Program, wrt: Any) -> Sequence[Node]:
    if wrt is None:
        return root.parameters
    nodes = [wrt] if isinstance(wrt, Node) else list(wrt)
    for n in nodes:
        if not isinstance(n, Node) or n not in root.graph:
            raise GraphError(f"wrt: {getattr(n, 'label', repr(n))} is not a node of the graph of {root.label}")
        if n not in program.index and not isinstance(n, (Parameter, Constant)):  # parameters there get zeros
            raise GraphError(f"wrt: {n.label} lies above the given nodes of this run, so it has no value here")
    return nodes


def _requires(program: Program, wanted: frozenset) -> list:
    """Which values lie on a path from a ``wanted`` node to the root (cached per ``wanted`` set)."""
    requires = program.requires_cache.get(wanted)
    if requires is None:
        requires = [i in wanted for i in range(len(program.order))]
        for step in program.steps:
            requires[step.index] = requires[step.index] or any(requires[s] for s in step.slots)
        program.requires_cache[wanted] = requires
    return requires


def backward(state: ForwardState, root_gradient: np.ndarray | None = None, wrt: Any = None) -> dict[Node, np.ndarray]:
    """Gradients of ``state.root`` w.r.t. ``wrt`` (default: all parameters), as a dict by node.

    ``root_gradient`` defaults to ones (the gradient of the sum of every output element).
    Parameter and constant gradients have the node's static shape (summed over the batch).
    """
    program, root = state.program, state.root
    nodes = _wrt_nodes(root, program, wrt)
    if not state.for_backward:
        raise GraphError("backward needs a forward state made with for_backward=True")
    y_root = state.values[root]
    if root_gradient is None:
        seed_grad = np.ones_like(y_root)
    else:
        seed_grad = np.array(root_gradient, dtype=y_root.dtype)  # a copy: gradients never alias the caller's array
        if seed_grad.shape != y_root.shape:
            raise ShapeError(f"root gradient for {root.label} has shape {seed_grad.shape}; expected {y_root.shape}")
    wanted = frozenset(program.index[n] for n in nodes if n in program.index)
    requires = _requires(program, wanted)
    grads: dict[int, np.ndarray] = {program.index[root]: seed_grad}
    values = state.values
    for step in reversed(program.steps):
        g = grads.get(step.index)
        if g is None or not requires[step.index] or not step.op.differentiable:
            continue
        if step.index not in wanted:
            del grads[step.index]
        needs = [requires[s] for s in step.slots]
        xs = [values.get(program.order[s]) for s in step.slots]
        y = values.get(step.node)
        in_grads = step.op.vjp(step, g, xs, y, state.residuals.get(step.index), needs)
        for s_pos, (s, need, gi, expected) in enumerate(zip(step.slots, needs, in_grads, step.in_array_shapes)):
            if not need or gi is None:
                continue
            if gi.shape != expected or gi.dtype != step.dtypes[s_pos]:
                raise GraphError(f"{step.label}: vjp gave a {gi.dtype} gradient of shape {gi.shape} for input "
                                 f"{program.order[s].label}, a {step.dtypes[s_pos]} value of shape {expected} "
                                 f"(an op bug)")
            grads[s] = gi if s not in grads else grads[s] + gi
    out = {}
    for n in nodes:
        if n not in program.index:  # above a given node: gradients stop there
            out[n] = np.zeros_like(n.value)  # type: ignore[attr-defined]  # _wrt_nodes: only parameters lie there
            continue
        g = grads.get(program.index[n])
        if g is None:
            i = program.index[n]
            g = np.zeros_like(values[n]) if n in values else np.zeros((program.batch, *program.shapes[i]), n.dtype)
        if isinstance(n, (Parameter, Constant)):
            g = g.sum(axis=0)
        out[n] = g if g.flags.owndata and g.flags.writeable else g.copy(order="K")  # own array, same layout
    return out


def grad(root: Node, feed: Mapping[Any, Any], wrt: Any = None, grad_root: np.ndarray | None = None,
         training: bool = False, seed: Seed = None) -> Any:
    """Forward then backward; a dict for a list ``wrt`` (or None = all parameters), an array for one node."""
    state = forward(root, feed, training=training, seed=seed, for_backward=True)
    result = backward(state, grad_root, wrt)
    return result[wrt] if isinstance(wrt, Node) else result
