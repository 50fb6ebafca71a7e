"""Graph nodes: input variables, parameters, constants and function (op) nodes.

Every node has a static shape that excludes the batch axis (channels first: ``(C, *spatial)``), a
dtype, a unique, stable id (creation order) and a name. A :class:`Function` holds an op object, its
input nodes and its attributes; the op contributes the shape rule, forward and vjp (see
:class:`Op`). The graph of a root node is a ``networkx.DiGraph`` over nodes, edges input -> consumer.

The engine (this module, :mod:`shapes`, :mod:`shape_inference`, :mod:`autodiff`) imports no op: ops
register the functions behind the operators (``a + b`` ...) with :func:`register_operator`, and the
node methods that live above the engine (``save``, ``summary``, ``plot``, ``export_onnx``) are
declared on :class:`Node` and import their module when called.
"""
from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import networkx as nx
import numpy as np
import numpy.typing as npt

from .checks import check_dtype
from .errors import GraphError, ShapeError
from .initializers import glorot_uniform
from .shapes import DimLike, InferredDimension, as_shape, is_static, shape_str

if TYPE_CHECKING:  # annotations only: autodiff imports this module
    from .autodiff import Context, ForwardState, Step

_uids = itertools.count()
_OPERATORS: dict[str, Callable[..., Node]] = {}
_scope_stack: list[Scope] = []
_Leaf = TypeVar("_Leaf", bound="Node")
Seed = int | np.random.Generator | None
"""A run's random seed: an int, a numpy Generator used as is, or None (the ops' shared generator)."""


@dataclass(frozen=True)
class Scope:
    """A layer the node was created in: its name, its type and the layer object itself."""

    name: str
    kind: str
    owner: Any = field(default=None, compare=False, hash=False, repr=False)


@contextlib.contextmanager
def name_scope(name: str, kind: str, owner: Any = None) -> Iterator[Scope]:
    """Nodes (and parameters) created inside belong to this layer scope (used for drawing, summary)."""
    scope = Scope(name, kind, owner)
    _scope_stack.append(scope)
    try:
        yield scope
    finally:
        _scope_stack.pop()


def current_scope() -> tuple[Scope, ...]:
    return tuple(_scope_stack)


OPERATOR_DUNDERS: dict[str, tuple[str, ...]] = {
    "plus": ("__add__", "__radd__"),
    "minus": ("__sub__", "__rsub__"),
    "element_times": ("__mul__", "__rmul__"),
    "element_divide": ("__truediv__", "__rtruediv__"),
    "negate": ("__neg__",),
    "abs": ("__abs__",),
    "times": ("__matmul__",),
    "getitem": ("__getitem__",),
}
"""The Python operators of :class:`Node`, by the registered op function they call."""


def register_operator(name: str, fn: Callable[..., Node]) -> None:
    """Ops call this so that ``a + b``, ``a * b``, ``x[1:3]``... build their nodes."""
    if name not in OPERATOR_DUNDERS:
        raise ValueError(f"no Node operator calls {name!r}; operators: {', '.join(OPERATOR_DUNDERS)}")
    _OPERATORS[name] = fn


def _operator(name: str) -> Callable[..., Node]:
    try:
        return _OPERATORS[name]
    except KeyError:
        raise GraphError(f"operator {name!r} is not available: import minigraph (not only minigraph.graph)") from None


def normalize_dtype(dtype: npt.DTypeLike | None) -> np.dtype | None:
    """float32/float64 only; ``None`` means 'adopt the dtype of whatever this meets'."""
    return check_dtype(dtype, optional=True)


class Node:
    """Base class of every graph node. Use the factories: :func:`input_variable`, :func:`parameter`,
    :func:`constant`, and the ops (``mg.plus``...)."""

    kind = "node"

    def __init__(self, shape: Any, dtype: npt.DTypeLike | None, name: str, inputs: Sequence[Node] = ()) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        self.uid: int = next(_uids)
        self.name = name
        self._shape: tuple[DimLike, ...] = as_shape(shape)
        self._dtype = normalize_dtype(dtype)
        self.inputs_direct: tuple[Node, ...] = tuple(inputs)
        self.scope: tuple[Scope, ...] = current_scope()
        self._graph: nx.DiGraph | None = None
        self._order: list | None = None
        self._leaf_cache: dict[type, list[Node]] = {}
        self.plan_cache: dict = {}  # per-shape execution plans, filled by ops at run time
        self.program_cache: dict = {}  # compiled runs of the graph rooted here, by feed signature

    # identity -------------------------------------------------------------------------------
    def __hash__(self) -> int:
        return self.uid

    def __eq__(self, other: object) -> bool:
        return self is other

    @property
    def shape(self) -> tuple[DimLike, ...]:
        """Static shape, batch axis excluded; symbolic dims are :class:`~minigraph.shapes.Dim`."""
        return self._shape

    @property
    def dtype(self) -> np.dtype | None:
        return self._dtype

    @property
    def op_name(self) -> str:
        return self.kind

    def adopt_dtype(self, dtype: npt.DTypeLike) -> None:
        """A node without a dtype of its own takes that of what it meets (parameters, constants and
        functions also update their value or inputs)."""
        if self._dtype is None:
            self._dtype = normalize_dtype(dtype)

    @property
    def label(self) -> str:
        """``Plus 'y'`` or ``Plus #12``: how messages name this node."""
        return f"{self.op_name} '{self.name}'" if self.name else f"{self.op_name} #{self.uid}"

    def __repr__(self) -> str:
        dt = self.dtype.name if self.dtype is not None else "inferred"
        return (f"{type(self).__name__}({self.op_name!r}, name={self.name!r}, shape={shape_str(self.shape)}, "
                f"dtype={dt}, id={self.uid})")

    # graph ----------------------------------------------------------------------------------
    @property
    def graph(self) -> nx.DiGraph:
        """The DAG of this node and all its ancestors; edge attribute ``index`` lists input slots."""
        if self._graph is None:
            g = nx.DiGraph()
            g.add_node(self)
            stack = [self]
            while stack:
                node = stack.pop()
                for slot, src in enumerate(node.inputs_direct):
                    if src not in g:
                        g.add_node(src)
                        stack.append(src)
                    if g.has_edge(src, node):
                        g.edges[src, node]["index"].append(slot)
                    else:
                        g.add_edge(src, node, index=[slot])
            self._graph = g
        return self._graph

    def to_networkx(self) -> nx.DiGraph:
        """A copy of :attr:`graph` with plain attributes (op, name, shape, dtype) for analysis."""
        g = nx.DiGraph()
        for n in self.topological_order():
            g.add_node(n.uid, op=n.op_name, name=n.name, shape=shape_str(n.shape),
                       dtype=None if n.dtype is None else n.dtype.name, kind=n.kind)
        for a, b, data in self.graph.edges(data=True):
            g.add_edge(a.uid, b.uid, index=list(data["index"]))
        return g

    def topological_order(self) -> list[Node]:
        """All nodes of the graph, inputs before consumers, ties broken by id (deterministic)."""
        if self._order is None:  # a node's ancestry never changes, so the order is computed once
            self._order = list(nx.lexicographical_topological_sort(self.graph, key=lambda n: n.uid))
        return list(self._order)

    def _leaves(self, cls: type[_Leaf]) -> list[_Leaf]:
        """Leaves of one type in creation order (cached: ancestry never changes)."""
        if cls not in self._leaf_cache:
            self._leaf_cache[cls] = sorted((n for n in self.graph if type(n) is cls), key=lambda n: n.uid)
        return list(self._leaf_cache[cls])  # type: ignore[arg-type]  # holds only instances of cls

    @property
    def arguments(self) -> list[Variable]:
        """The input variables this node depends on (those that must be fed), in creation order."""
        return self._leaves(Variable)

    @property
    def parameters(self) -> list[Parameter]:
        return self._leaves(Parameter)

    @property
    def constants(self) -> list[Constant]:
        return self._leaves(Constant)

    @property
    def inputs(self) -> list[Node]:
        """All leaves (arguments, parameters, constants) as CNTK's ``Function.inputs``."""
        return sorted((n for n in self.graph if not n.inputs_direct), key=lambda n: n.uid)

    def find_all_with_name(self, name: str) -> list[Node]:
        return [n for n in self.topological_order() if n.name == name]

    def find_by_name(self, name: str) -> Node:
        """The one node called ``name``; :class:`GraphError` when there is none or several."""
        found = self.find_all_with_name(name)
        if len(found) != 1:
            names = sorted({n.name for n in self.graph if n.name})
            what = "no node" if not found else f"{len(found)} nodes"
            raise GraphError(f"{what} named {name!r} in the graph of {self.label}; names: {names}")
        return found[0]

    # execution (delegates to the autodiff engine) ------------------------------------------
    def eval(self, feed: Mapping[Any, Any] | None = None, *, training: bool = False, seed: Seed = None,
             memory_limit: int | None = None) -> np.ndarray:
        """Run the graph and return this node's value, shape ``(N, *self.shape)``.

        ``feed`` maps input variables (or their names) to arrays with a leading batch axis, one value
        per input. ``training`` is a bool; ``seed`` an int >= 0 or a ``numpy.random.Generator`` (random
        ops' masks; default: the global generator of :func:`minigraph.set_seed`). The result is the
        caller's own array (never a view of a parameter or of the fed data). Evaluation runs
        (``training=False``) and gradients of one graph may run in several threads at once.
        ``memory_limit`` (bytes; default ``mg.get_memory_limit()``): a run whose estimated peak is larger
        fails before allocating anything, with :class:`~minigraph.ResourceError`.
        """
        from . import autodiff
        _check_memory(self, feed, False, memory_limit)
        return autodiff.evaluate(self, feed or {}, training=training, seed=seed)

    def grad(self, feed: Mapping[Any, Any] | None = None, wrt: Any = None, grad_root: np.ndarray | None = None, *,
             training: bool = False, seed: Seed = None) -> Any:
        """Gradients of this node's value (summed over every element; ``grad_root`` seeds another
        output gradient) w.r.t. ``wrt``: a dict by node for a list, an array for a single node.
        ``wrt=None`` means all parameters."""
        from . import autodiff
        _check_memory(self, feed, True)
        return autodiff.grad(self, feed or {}, wrt=wrt, grad_root=grad_root, training=training, seed=seed)

    def forward(self, feed: Mapping[Any, Any] | None = None, keep: Sequence[Node] = (), *, training: bool = False,
                seed: Seed = None, for_backward: bool = True,
                given: Mapping[Node, np.ndarray] | None = None) -> ForwardState:
        """Run forward and keep what :meth:`backward` needs; returns a ``ForwardState`` whose
        ``values[node]`` holds this node's value and those of ``keep``. Nodes in ``keep`` need not
        be ancestors of this one: they are computed in the same pass (one forward for a loss and a
        metric); the feed must then cover their inputs too. ``given`` (node -> array, e.g. values of
        an earlier state) supplies node values: nothing above them runs and gradients stop there."""
        from . import autodiff
        if not given:  # the memory limit checks the run of this node's graph
            _check_memory(self, feed, for_backward)
        return autodiff.forward(self, feed or {}, keep=keep, training=training, seed=seed,
                                for_backward=for_backward, given=given)

    def backward(self, state: ForwardState, root_gradient: np.ndarray | None = None,
                 wrt: Any = None) -> dict[Node, np.ndarray]:
        """Gradients w.r.t. ``wrt`` (default: all parameters) from a ``forward`` state."""
        from . import autodiff
        return autodiff.backward(state, root_gradient, wrt)

    # methods that live above the engine (each imports its module when called) ---------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save this graph with its parameter and constant values to one file
        (:func:`minigraph.save_model`; ``mg.load_model(path)`` reads it back)."""
        from .serialization import save_model
        save_model(self, path)

    def summary(self, batch: int | None = None) -> str:
        """The layer table of this graph (:func:`minigraph.layers.summary`: shapes, parameters,
        multiply-adds, activation memory per sample or for ``batch`` samples, pads, lint findings): a
        ``str`` that notebooks show as an HTML table; ``print(model.summary())`` in scripts."""
        from .layers.summary import summary
        return summary(self, batch)

    def estimate(self, batch: int = 1, training: bool = False, bindings: Mapping[str, int] | None = None) -> Any:
        """Memory and multiply-adds of a run on ``batch`` samples, from the shape pass
        (:func:`minigraph.costs.estimate`: ``parameter_bytes``, ``activation_bytes``, ``workspace_bytes``,
        ``multiply_adds``, ``peak_bytes``); symbolic sizes need ``bindings``."""
        from .costs import estimate
        return estimate(self, batch, training, bindings)

    def explain(self, feed: Mapping[Any, Any] | None = None, **options: Any) -> Any:
        """How every shape up to this node was derived (:func:`minigraph.explain`: per-axis sizes and pads
        of convolutions and pooling, one-line rules of other ops; ``bindings``, ``chain``)."""
        from .explain import explain
        return explain(self, feed, **options)

    def lint(self, loss: Node | None = None) -> Any:
        """Findings about this network (:func:`minigraph.lint`), e.g. checkerboard-prone kernels."""
        from .lint import lint
        return lint(self, loss)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter shows a node as the picture of its graph (SVG from Graphviz), text elsewhere."""
        from .plot import mimebundle
        return mimebundle(self)

    def _repr_svg_(self) -> str | None:
        from .plot import svg_text
        return svg_text(self)

    def plot(self, filename: str | os.PathLike[str] | None = None, **options: Any) -> str:
        """Draw this graph; return its DOT text and, with ``filename``, render it there
        (:func:`minigraph.plot`: ``format``, ``rankdir``, ``show_shapes``, ``show_params``,
        ``collapse_layers``, ``dpi``)."""
        from .plot import plot
        return plot(self, filename, **options)

    def export_onnx(self, path: str | os.PathLike[str] | None = None, **options: Any) -> Any:
        """Write this graph as an ONNX model and return the ``onnx.ModelProto``
        (:func:`minigraph.export_onnx`: ``opset``, ``input_names``, ``output_name``, ``batch_dim``)."""
        from .onnx_export import export_onnx
        return export_onnx(self, path, **options)

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{scoped name: array copy}`` of this graph's parameters and running statistics, names such
        as ``generator/up1/W`` (:func:`minigraph.state_dict.state_dict`)."""
        from .state_dict import state_dict
        return state_dict(self)

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> Any:
        """Copy arrays by name into this graph's parameters and running statistics, shape-checked, all
        or nothing; ``strict`` refuses missing and unexpected names (:func:`minigraph.state_dict.load_state_dict`)."""
        from .state_dict import load_state_dict
        return load_state_dict(self, state, strict)

    # operators (dispatch to the ops that registered themselves) ------------------------------
    def __add__(self, other: Any) -> Node:
        return _operator("plus")(self, other)

    def __radd__(self, other: Any) -> Node:
        return _operator("plus")(other, self)

    def __sub__(self, other: Any) -> Node:
        return _operator("minus")(self, other)

    def __rsub__(self, other: Any) -> Node:
        return _operator("minus")(other, self)

    def __mul__(self, other: Any) -> Node:
        return _operator("element_times")(self, other)

    def __rmul__(self, other: Any) -> Node:
        return _operator("element_times")(other, self)

    def __truediv__(self, other: Any) -> Node:
        return _operator("element_divide")(self, other)

    def __rtruediv__(self, other: Any) -> Node:
        return _operator("element_divide")(other, self)

    def __neg__(self) -> Node:
        return _operator("negate")(self)

    def __abs__(self) -> Node:
        return _operator("abs")(self)

    def __matmul__(self, other: Any) -> Node:
        return _operator("times")(self, other)

    def __getitem__(self, key: Any) -> Node:
        return _operator("getitem")(self, key)

    __array_priority__ = 1000  # so that ``ndarray + node`` defers to the node


class Variable(Node):
    """An input that is fed at run time (CNTK's ``input_variable``)."""

    kind = "Input"

    def __init__(self, shape: Any, dtype: npt.DTypeLike = np.float32, name: str = "") -> None:
        if dtype is None:
            raise TypeError("input_variable needs a dtype (float32 or float64)")
        super().__init__(shape, dtype, name)
        for d in self.shape:
            if isinstance(d, int) and d <= 0:
                raise ShapeError(f"input '{name}': shape {shape_str(self.shape)} has a non-positive size")


class Parameter(Node):
    """A learnable tensor. Its value is created by ``init`` as soon as shape and dtype are known;
    dims given as :data:`InferredDimension` (and ``dtype=None``) are filled by the shape-inference
    pass from the first op that uses it (lazy initialisation, as CNTK does)."""

    kind = "Parameter"

    def __init__(self, shape: Any, init: Any, dtype: npt.DTypeLike | None = None, name: str = "") -> None:
        super().__init__(shape, dtype, name)
        for d in self.shape:
            if not isinstance(d, int) or (d <= 0 and d != InferredDimension):
                raise ShapeError(f"parameter '{name}': shape {shape_str(self.shape)} must hold positive ints "
                                 f"or InferredDimension (-1); parameters cannot have symbolic dims")
        if not callable(init):
            init = _numeric_array(init, f"{self.label}: init (a number, an array or an initializer)")
            if init.ndim and (init.ndim != len(self._shape)
                              or any(d not in (InferredDimension, n) for d, n in zip(self._shape, init.shape))):
                raise ShapeError(f"{self.label}: init array has shape {init.shape}; expected {shape_str(self._shape)} "
                                 f"(or a scalar, or an initializer such as mg.initializers.glorot_uniform())")
            init = init.copy()  # the initial value is the parameter's own, even while its shape is being inferred
        self.init = init
        self._value: np.ndarray | None = None
        self._materialize()

    def _materialize(self) -> None:
        if self._value is None and is_static(self._shape) and self._dtype is not None:
            self._value = _initial_value(self.init, self._shape, self._dtype, self.label)

    def fill_inferred_dims(self, shape: Sequence[DimLike], dtype: npt.DTypeLike | None) -> None:
        """Fill inferred dims (and dtype) from the shape pass; initialise the value."""
        shape = tuple(shape)
        if len(shape) != len(self._shape) or any(o not in (InferredDimension, n) for o, n in zip(self._shape, shape)):
            raise ShapeError(f"{self.label}: shape {shape_str(self._shape)} cannot become {shape_str(shape)}")
        if not is_static(shape):
            raise ShapeError(f"{self.label}: inferred shape {shape_str(shape)} must be concrete; a parameter "
                             f"cannot depend on a symbolic input size")
        self._shape = shape
        if self._dtype is None and dtype is not None:
            self._dtype = normalize_dtype(dtype)
        self._materialize()

    def adopt_dtype(self, dtype: npt.DTypeLike) -> None:
        if self._dtype is None:
            self._dtype = normalize_dtype(dtype)
            self._materialize()

    @property
    def value(self) -> np.ndarray:
        """The current value (a copy-free view; assign to change it, shape-checked)."""
        if self._value is None:
            if not is_static(self._shape):
                raise GraphError(f"{self.label}: shape {shape_str(self._shape)} still has inferred dims; "
                                 f"use the parameter in a graph first so the shape pass can fill them")
            self.adopt_dtype(np.float32)  # which creates the value
        return cast(np.ndarray, self._value)

    @value.setter
    def value(self, new: Any) -> None:
        arr = _numeric_array(new, f"{self.label}: value")
        if not is_static(self._shape):
            fallback = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float32
            self.fill_inferred_dims(arr.shape, self._dtype or fallback)
        if arr.shape != self._shape:
            raise ShapeError(f"{self.label}: cannot assign a value of shape {arr.shape}; "
                             f"expected {shape_str(self._shape)}")
        if self._dtype is None:
            self.adopt_dtype(np.float32)
        self._value = np.array(arr, dtype=self._dtype, copy=True)

    @property
    def is_initialized(self) -> bool:
        return self._value is not None


class Constant(Node):
    """A fixed tensor. A Python scalar or list has no dtype of its own and adopts that of what it meets."""

    kind = "Constant"

    def __init__(self, value: Any, dtype: npt.DTypeLike | None = None, name: str = "") -> None:
        weak = isinstance(value, (int, float, list, tuple)) and not isinstance(value, bool) and dtype is None
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"constant '{name}': value of dtype {arr.dtype} is not numeric")
        if dtype is None and not weak:
            dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float32
        super().__init__(arr.shape, dtype, name)
        self._raw = np.array(arr, copy=True)  # the constant's own: changing the caller's array changes nothing
        self._value = self._raw.astype(np.float64 if self._dtype is None else self._dtype)

    @property
    def value(self) -> np.ndarray:
        """The constant's own array. Assigning copies the new value (shape-checked); ops that keep state
        in a constant (batch normalization's running statistics) update this array in place."""
        return self._value

    @value.setter
    def value(self, new: Any) -> None:
        arr = _numeric_array(new, f"{self.label}: value")
        if arr.shape != self.shape:
            raise ShapeError(f"{self.label}: cannot assign a value of shape {arr.shape}; expected "
                             f"{shape_str(self.shape)}")
        if self._dtype is None:
            self._raw = np.array(arr, copy=True)
        self._value = np.array(arr, dtype=np.float64 if self._dtype is None else self._dtype, copy=True)

    def adopt_dtype(self, dtype: npt.DTypeLike) -> None:
        if self._dtype is None:
            self._dtype = normalize_dtype(dtype)
            self._value = self._raw.astype(self._dtype)


@dataclass
class Inferred:
    """What an op's shape rule returns.

    shape: the output's static shape. attrs: resolved attributes to store on the node (pads, output
    size...). input_shapes: ``{slot: shape}`` for parameter inputs whose dims were left to inference.
    dtype: output dtype when it is not the common input dtype.
    """

    shape: tuple
    attrs: dict = field(default_factory=dict)
    input_shapes: dict = field(default_factory=dict)
    dtype: Any = None


class Op:
    """One operation: shape rule + forward + vector-Jacobian product, side by side.

    ``infer(in_shapes, in_dtypes, attrs, label) -> Inferred`` works on ints and symbolic dims alike
    (parameter inputs may still hold InferredDimension). ``forward(step, xs, ctx) -> (y, residual)``
    and ``vjp(step, g, xs, y, residual, needs) -> list`` work on arrays with a leading batch axis of
    size N, or 1 for values that do not depend on any fed input; ``vjp`` returns, for each input slot
    with ``needs[i]``, the gradient with that input's exact array shape (else None).
    ``step`` (:class:`minigraph.autodiff.Step`) carries concrete ``attrs``, ``in_shapes``,
    ``out_shape``, ``dtype`` and a ``cache``; ``ctx`` carries ``training`` and ``rng``.

    A complete op, ``y = -x``:

    >>> import numpy as np
    >>> import minigraph as mg
    >>> from minigraph.ops.base import make
    >>> class NegateExample(Op):
    ...     name = "NegateExample"
    ...     saves_inputs = saves_output = False  # the vjp reads neither x nor y: both are freed early
    ...     def infer(self, in_shapes, in_dtypes, attrs, label):
    ...         return Inferred(tuple(in_shapes[0]))  # the output has the input's static shape
    ...     def forward(self, step, xs, ctx):
    ...         return -xs[0], None  # (value, residual kept for the vjp)
    ...     def vjp(self, step, g, xs, y, residual, needs):
    ...         return [-g if needs[0] else None]  # one entry per input slot
    >>> x = mg.input_variable((2,), name="x")
    >>> y = make(NegateExample(), [x], name="y")
    >>> y.eval({x: [[1.0, -2.0]]})
    array([[-1.,  2.]], dtype=float32)
    >>> y.grad({x: [[1.0, -2.0]]}, wrt=x)
    array([[-1., -1.]], dtype=float32)

    A real op also registers itself (``register_op``, so model files find it by name) and exports
    its public function (``@export``); CONTRIBUTING.md lists every file an op touches.
    """

    name = "Op"
    saves_inputs = True   # whether vjp reads xs (lets the engine free values early)
    saves_output = True   # whether vjp reads y
    differentiable = True
    updates_inputs: tuple = ()  # input slots whose constants forward updates in place when training
    uses_bindings = False  # if True, the run-time shape pass adds attrs["bindings"] (name -> int) for infer
    file_defaults: Mapping[str, Any] = {}  # attributes added after model files were written without them:
    # the value that keeps those files' behaviour (a file lacking any other attribute is refused)

    # What the memory/compute model (minigraph.costs) needs to know of the op's kernels; each op declares
    # its own values where it is defined, next to the forward and vjp they describe.
    returns_view = False
    """Whether forward returns a view of its (first) input: no new array (reshape, transpose, slice)."""
    keeps_layout = False
    """Whether the output keeps its first batched input's memory layout (elementwise ops): a batch-last
    input (a convolution's output) gives a batch-last output."""
    column_buffers = False
    """Whether forward and vjp are GEMMs over im2col/col2im column buffers (a convolution: the node's
    attributes carry its geometry); the output is laid out batch-last."""
    transposed = False
    """With ``column_buffers``: a transposed convolution (forward scatters by col2im, its operand is
    the small side), not a convolution."""
    direct_run_bytes = 0
    """With ``column_buffers``: the shortest run of contiguous samples (bytes) that im2col reads in
    place from a batch-last input; shorter runs, and other layouts, are first copied per phase."""
    forward_temporaries = 0.0
    """Transient buffers forward allocates beyond its result (numpy temporaries), in multiples of the
    output's size (of the first input's size when ``temporaries_per_input``)."""
    backward_temporaries = 0.0
    """Transient buffers vjp allocates beyond the gradients it returns, in the same units as
    ``forward_temporaries``."""
    temporaries_per_input = False
    """Whether the temporaries are counted in multiples of the first input's size rather than the output's
    (losses: their output is one number per sample)."""
    passes_gradient = False
    """Whether vjp hands the output gradient on as the same array (no new one) to every input with the
    batch axis; an op with several inputs sums it over the batch for an input without one."""

    def infer(self, in_shapes: Sequence[Sequence[DimLike]], in_dtypes: Sequence[np.dtype | None],
              attrs: Mapping[str, Any], label: str) -> Inferred:
        raise NotImplementedError(f"{type(self).__name__} has no shape rule")

    def forward(self, step: Step, xs: Sequence[np.ndarray], ctx: Context) -> tuple[np.ndarray, Any]:
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def vjp(self, step: Step, g: np.ndarray, xs: Sequence[np.ndarray | None], y: np.ndarray | None, residual: Any,
            needs: Sequence[bool]) -> list[np.ndarray | None]:
        raise GraphError(f"{step.label}: {self.name} is not differentiable")

    def describe(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """Attributes worth showing in a drawing or summary (default: all)."""
        return dict(attrs)

    def check_stored_values(self, values: Sequence[np.ndarray | None], names: Sequence[str], label: str) -> None:
        """Refuse input values read from a file (model file, checkpoint) that this op cannot run with.
        ``values[i]`` is input ``i``'s array when it is a Parameter or Constant, else None; ``names[i]``
        its name. Raises ValueError naming the input and what is allowed (default: any finite values)."""


class Function(Node):
    """A node that applies an op to input nodes. Its shape rule runs at creation."""

    kind = "Function"

    def __init__(self, op: Op, inputs: Sequence[Any], attributes: Mapping[str, Any] | None = None,
                 name: str = "") -> None:
        nodes = [as_node(x) for x in inputs]
        super().__init__((), None, name, nodes)
        self.op = op
        self.op_attributes: dict = dict(attributes or {})
        self.resolved: dict = {}
        self._infer_shape()

    def _infer_shape(self) -> None:
        """Build-time shape inference: run the op's shape rule on the static (possibly symbolic)
        input shapes. It settles the output shape and dtype, stores resolved attributes (pads,
        output sizes) on the node and fills parameter dims left to inference (which initialises
        those parameters), so a bad graph fails at the line that built the bad node."""
        dtype = self._common_dtype()
        inputs = self.inputs_direct
        result = self.op.infer([x.shape for x in inputs], [x.dtype for x in inputs], self.op_attributes, self.label)
        for slot, shape in result.input_shapes.items():
            target = inputs[slot]
            if not isinstance(target, Parameter):
                raise ShapeError(f"{self.label}: input {slot} ({target.label}) has shape {shape_str(target.shape)}; "
                                 f"expected {shape_str(shape)}")
            target.fill_inferred_dims(shape, dtype)
        self._shape = tuple(result.shape)
        self._dtype = np.dtype(result.dtype) if result.dtype is not None else dtype
        self.resolved = dict(result.attrs)

    def _common_dtype(self) -> np.dtype | None:
        """The one float dtype of the inputs; inputs without a dtype (scalars, lazy parameters and
        what is computed from them only) adopt it. Mixing float32 and float64 is an error: cast
        explicitly. ``None`` when no input has a dtype yet: the node then adopts one later too."""
        known = {x.dtype for x in self.inputs_direct if x.dtype is not None}
        if len(known) > 1:
            listing = ", ".join(f"{x.label}: {x.dtype}" for x in self.inputs_direct if x.dtype is not None)
            raise GraphError(f"{self.label}: inputs mix dtypes ({listing}); convert one with mg.cast(x, dtype)")
        if not known:
            return None
        dtype = known.pop()
        for x in self.inputs_direct:
            if x.dtype is None:
                x.adopt_dtype(dtype)
        return dtype

    @property
    def op_name(self) -> str:
        return self.op.name

    @property
    def attributes(self) -> dict:
        """User attributes merged with those the shape pass resolved (e.g. ``lower_pad``)."""
        return {**self.op_attributes, **self.resolved}

    def adopt_dtype(self, dtype: npt.DTypeLike) -> None:
        """A node computed only from dtype-less inputs takes the dtype of what it meets, and so do they."""
        if self._dtype is None:
            self._dtype = normalize_dtype(dtype)
            for x in self.inputs_direct:
                if x.dtype is None:
                    x.adopt_dtype(dtype)

    @property
    def root_function(self) -> Function:
        return self


def _check_memory(root: Node, feed: Mapping[Any, Any] | None, training: bool, limit: int | None = None) -> None:
    """Before a run: its estimated peak against the memory limit (``mg.set_memory_limit``)."""
    from .limits import get_memory_limit
    if limit is not None or get_memory_limit() is not None:
        from .costs import check_run
        check_run(root, feed or {}, training, limit)


def as_node(x: Any, dtype: npt.DTypeLike | None = None) -> Node:
    """A node as is; numbers and arrays become constants."""
    if isinstance(x, Node):
        return x
    if isinstance(x, (int, float, np.ndarray, np.generic, list, tuple)) and not isinstance(x, bool):
        return Constant(x, dtype=dtype)
    raise TypeError(f"cannot use {type(x).__name__} {x!r} as a graph input; pass a node, a number or an array")


def _numeric_array(value: Any, what: str) -> np.ndarray:
    """``value`` as a numeric array, or a TypeError that says what was wrong with it."""
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise TypeError(f"{what} must be a number or a rectangular array ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric; got {type(value).__name__} {value!r:.60} (dtype {arr.dtype})")
    return arr


def _initial_value(init: Any, shape: Any, dtype: np.dtype, label: str) -> np.ndarray:
    if callable(init):
        value = np.asarray(init(shape, dtype))
    else:
        value = np.asarray(init, dtype=dtype)
        if value.ndim == 0:
            value = np.full(shape, value, dtype=dtype)
    if value.shape != tuple(shape):
        raise ShapeError(f"{label}: init value has shape {value.shape}; expected {shape_str(shape)}")
    return np.array(value, dtype=dtype, copy=True)


# factories ------------------------------------------------------------------------------------
def input_variable(shape: Any, dtype: npt.DTypeLike = np.float32, name: str = "", **kwargs: Any) -> Variable:
    """An input fed at run time. ``shape`` excludes the batch axis; a str is a named symbolic dim.

    >>> input_variable((3, "H", "W"), name="x").shape
    (3, H, W)
    """
    if kwargs:
        unknown = ", ".join(sorted(kwargs))
        raise TypeError(f"input_variable: unsupported argument(s) {unknown} (dynamic axes are not supported)")
    return Variable(shape, dtype, name)


def parameter(shape: Any = None, init: Any = None, dtype: npt.DTypeLike | None = None, name: str = "") -> Parameter:
    """A learnable tensor. ``init`` is an initializer (``mg.initializers.glorot_uniform()``), a
    scalar or an array; an array alone also gives the shape. ``dtype=None`` adopts the dtype of the
    first op input it meets (float32 if read before). Dims may be ``InferredDimension``.
    """
    if shape is None:
        if init is None or callable(init):
            raise TypeError("parameter needs a shape, or an array init to take the shape from")
        arr = np.asarray(init)
        shape = arr.shape
        if dtype is None and arr.dtype in (np.float32, np.float64):
            dtype = arr.dtype
    if init is None:
        init = glorot_uniform()
    return Parameter(shape, init, dtype, name)


def constant(value: Any, dtype: npt.DTypeLike | None = None, name: str = "") -> Constant:
    """A fixed tensor; its shape is that of ``value`` (no batch axis)."""
    return Constant(value, dtype, name)
