"""The :class:`Layer` object every layer factory returns, and the helpers layers share.

A layer is created with its configuration (CNTK's factory arguments), owns its parameters, and is
called on a node to build the nodes that apply it. Building happens inside
``graph.name_scope(name, type, layer)``, so every node records which layer (and which call of it)
made it: drawings cluster by it, :func:`~minigraph.layers.summary` tabulates it and
:func:`~minigraph.layers.to_spec` reads the configuration back. Calling one layer on two inputs
builds two sets of nodes over the same parameters (shared weights).

Every subclass's ``__init__`` is wrapped so that the arguments it was given, completed by
:func:`~minigraph.layers.default_options` and the signature defaults, are recorded in
``layer.arguments`` (and those set explicitly in ``layer.explicit``).
"""
from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import re
from collections.abc import Callable

import numpy as np

from .. import ops
from ..errors import MinigraphError
from ..graph import Function, Node, Parameter, current_scope, name_scope
from ..ops import conv_geometry as geo
from ..shapes import InferredDimension, shape_str
from . import defaults

LAYER_TYPES: dict[str, type] = {}
"""Every concrete layer class by its type name (what specs write as ``type = "..."``)."""


def identity(x):
    """The identity activation (CNTK's ``identity``): returns its input, builds no node."""
    return x


ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "exp", "log", "sqrt", "square",
               "abs", "negate", "softmax", "log_softmax")
"""Activation names a layer (or a spec) accepts; each is the op of that name (``mg.relu``...)."""


def closest(word: str, choices) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""


class ConfiguredActivation:
    """An activation op with arguments, ``leaky_relu`` with ``alpha=0.2``: in specs the table
    ``activation = {type = "leaky_relu", alpha = 0.2}`` (JSON ``{"type": "leaky_relu", "alpha": 0.2}``),
    in Python that dict or ``functools.partial(mg.leaky_relu, alpha=0.2)``. Writes itself back
    (:meth:`spec`), so :func:`~minigraph.layers.to_spec` round-trips it."""

    def __init__(self, name: str, options: dict, label: str):
        if name not in ACTIVATIONS or name == "identity":
            raise ValueError(f"{label}: unknown activation {name!r}{closest(str(name), ACTIVATIONS)} (valid names: "
                             f"{', '.join(ACTIVATIONS[1:])})")
        accepted = [k for k in list(inspect.signature(ops.EXPORTS[name]).parameters)[1:] if k != "name"]
        for key, v in options.items():
            if key not in accepted:
                hint = f"; {name} takes {', '.join(accepted)}" if accepted else f"; {name} takes no arguments"
                raise ValueError(f"{label}: activation {name!r} has no argument {key!r}{hint}")
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{label}: activation {name!r}: {key} must be a number, got {v!r}")
        self.name, self.options = name, dict(options)

    def __call__(self, x):
        return ops.EXPORTS[self.name](x, **self.options)

    def spec(self) -> dict:
        return {"type": self.name, **self.options}

    def __eq__(self, other):
        return isinstance(other, ConfiguredActivation) and (self.name, self.options) == (other.name, other.options)

    def __hash__(self):
        return hash((self.name, tuple(sorted(self.options.items()))))

    def __repr__(self):
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.options.items())})"


def activation_function(value, label: str) -> Callable:
    """An activation given as a function, a name from :data:`ACTIVATIONS`, a table ``{"type": name,
    **arguments}`` (:class:`ConfiguredActivation`), or None (identity)."""
    if value is None or value is identity:
        return identity
    if isinstance(value, dict):
        if not isinstance(value.get("type"), str):
            raise ValueError(f"{label}: an activation table needs type = a name such as 'leaky_relu', got {value!r}")
        return ConfiguredActivation(value["type"], {k: v for k, v in value.items() if k != "type"}, label)
    if isinstance(value, functools.partial) and not value.args:
        name = activation_name(value.func)
        if name is not None and name != "identity":
            return ConfiguredActivation(name, value.keywords, label)
    if isinstance(value, str):
        if value not in ACTIVATIONS:
            raise ValueError(f"{label}: unknown activation {value!r}{closest(value, ACTIVATIONS)} "
                             f"(valid names: {', '.join(ACTIVATIONS)}; or pass a function such as mg.relu)")
        return identity if value == "identity" else ops.EXPORTS[value]
    if callable(value):
        return value
    raise TypeError(f"{label}: activation must be a function (e.g. mg.relu) or a name such as 'relu', got {value!r}")


def activation_name(fn) -> str | None:
    """The :data:`ACTIVATIONS` name of an activation function (None for other callables)."""
    if isinstance(fn, str):
        return fn
    if isinstance(fn, ConfiguredActivation):
        return fn.name
    if fn is None or fn is identity:
        return "identity"
    return next((n for n in ACTIVATIONS[1:] if ops.EXPORTS.get(n) is fn), None)


def shown_value(value) -> str:
    """An argument as a layer's text shows it: activations and functions by name, the rest as repr."""
    if isinstance(value, ConfiguredActivation):
        return repr(value)
    if callable(value) and not isinstance(value, Layer):
        return activation_name(value) or str(getattr(value, "__name__", repr(value)))
    return repr(value)


# argument checks shared by the layers ---------------------------------------------------------
def per_axis(value, arg: str, filter_shape: tuple, label: str) -> tuple:
    """A layer's per-axis option: a scalar for every spatial axis or exactly one entry per axis
    of ``filter_shape`` (stricter than the ops, which also take CNTK's channel-axis form)."""
    if not isinstance(value, (list, tuple)):
        return (value,) * len(filter_shape)
    if len(value) != len(filter_shape):
        raise ValueError(f"{label}: {arg}={tuple(value)!r} has {len(value)} entries; expected a single value or one "
                         f"per spatial axis of filter_shape {filter_shape} ({len(filter_shape)})")
    return tuple(value)


def per_axis_ints(value, arg: str, filter_shape: tuple, label: str) -> tuple[int, ...]:
    """:func:`per_axis` of positive ints (strides, dilation)."""
    return geo.per_axis_ints(per_axis(value, arg, filter_shape, label), arg, len(filter_shape), filter_shape, label, 1)


def per_axis_pads(value, filter_shape: tuple, label: str) -> tuple:
    """:func:`per_axis` of pad modes: bools (CNTK) or ``"valid"``/``"same_upper"``/``"same_lower"``.
    A size such as PyTorch's ``padding=1`` is refused with the spelling that means it."""
    modes = per_axis(value, "pad", filter_shape, label)
    if any(isinstance(m, int) and not isinstance(m, bool) for m in modes):
        raise ValueError(f"{label}: pad={value!r}: pad is a padding mode (True, False, 'valid', 'same_upper', "
                         f"'same_lower'), not a size. For PyTorch's padding={value!r} write "
                         f"lower_pad={value!r}, upper_pad={value!r} (or, for a stride-2 ConvolutionTranspose that "
                         f"doubles the size, pad=True, output_shape=2n)")
    try:
        return geo.per_axis_pad_modes(modes, len(filter_shape), filter_shape, label)
    except ValueError as exc:
        raise ValueError(str(exc).replace("auto_padding=", "pad=")) from None


def explicit_pads(lower, upper, filter_shape: tuple, label: str) -> tuple:
    """``lower_pad``/``upper_pad``: non-negative ints (one, or one per spatial axis), or both None."""
    if lower is None and upper is None:
        return None, None
    return tuple(geo.per_axis_ints(per_axis(0 if v is None else v, arg, filter_shape, label), arg,
                                   len(filter_shape), filter_shape, label, 0)
                 for arg, v in (("lower_pad", lower), ("upper_pad", upper)))


def check_init(value, arg: str, label: str):
    """``init``/``init_bias``: a number, an array (list), an initializer or an ``(shape, dtype)`` callable."""
    if isinstance(value, bool) or not (isinstance(value, (int, float, np.ndarray, list, tuple, np.number))
                                       or callable(value)):
        raise TypeError(f"{label}: {arg} must be a number, an array or an initializer (e.g. "
                        f"mg.initializers.glorot_uniform()), got {value!r}")
    return np.asarray(value, dtype=np.float64) if isinstance(value, (list, tuple)) else value


# the layer object --------------------------------------------------------------------------------
class Layer:
    """A callable block with parameters; see the module docstring. Subclasses implement
    :meth:`apply` (build nodes for one input) and create their parameters with :meth:`weight`."""

    fixed_rank: int | None = None  # set by the 1D/2D/3D conveniences

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            LAYER_TYPES[cls.__name__] = cls
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording(cls.__init__)

    def __init__(self, name: str = ""):
        if not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a str, got {name!r}")
        self.name = name
        self._params: dict[str, Parameter] = {}
        self._pending: dict[str, str] = {}  # parameters created on the first call: why

    # identity and messages ------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The layer's type name (``"ConvolutionTranspose2D"``), also its spec ``type``."""
        return type(self).__name__

    @property
    def label(self) -> str:
        return f"{self.kind} '{self.name}'" if self.name else self.kind

    def __repr__(self):
        shown = ", ".join(f"{k}={shown_value(v)}" for k, v in self.arguments.items()
                          if k in self.explicit and k != "name")
        name = f" {self.name!r}" if self.name else ""
        return f"{self.kind}{name}({shown})"

    # parameters -----------------------------------------------------------------------------
    def weight(self, attr: str, shape: tuple, init, label_arg: str, init_shape: Callable | None = None) -> Parameter:
        """Create parameter ``attr`` (``"W"``, ``"b"``...) of ``shape`` (entries may be
        InferredDimension) from ``init``: a number, an array matching ``shape``, an initializer or a
        callable. ``init_shape`` maps the parameter's shape to the layout the initializer should see
        (e.g. with a depth axis the layer leaves out). The parameter's dtype follows its first use.
        """
        if isinstance(init, np.ndarray):
            fits = init.ndim == len(shape) and all(s in (InferredDimension, n) for s, n in zip(shape, init.shape))
            if not fits:
                wanted = shape_str(tuple("?" if s == InferredDimension else s for s in shape))
                raise ValueError(f"{self.label}: {label_arg} array has shape {init.shape}; expected {wanted} "
                                 f"(? = taken from the input)")
            shape = init.shape
        elif init_shape is not None and callable(init):
            inner = init
            init = functools.partial(_init_in_layout, inner, init_shape)
        with self.own_scope():
            param = Parameter(shape, init, None, attr)
        self._params[attr] = param
        self._pending.pop(attr, None)
        return param

    def own_scope(self):
        """This layer's name scope for nodes it owns, unless it is already the innermost one
        (parameters created on the first call then belong to that call's scope)."""
        scope = current_scope()
        if scope and scope[-1].owner is self:
            return contextlib.nullcontext()
        return name_scope(self.name, self.kind, self)

    def __getattr__(self, attr):
        pending = self.__dict__.get("_pending", {})
        if attr in pending:
            raise AttributeError(f"{self.label}: {attr} does not exist yet: {pending[attr]}")
        params = self.__dict__.get("_params", {})
        if attr in params:
            return params[attr]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    @property
    def parameters(self) -> list[Parameter]:
        """The parameters this layer owns (for containers: those of the layers inside)."""
        return list(self._params.values())

    # building -------------------------------------------------------------------------------
    def apply(self, x: Node) -> Node:
        raise NotImplementedError(f"{self.kind} does not implement apply")

    def __call__(self, x) -> Node:
        """Build the nodes that apply this layer to ``x``; the output node carries the layer's name."""
        if not isinstance(x, Node):
            raise TypeError(f"{self.label}: call the layer on a node (e.g. mg.input_variable(...)), got "
                            f"{type(x).__name__}")
        with name_scope(self.name, self.kind, self) as scope:
            try:
                y = self.apply(x)
            except (MinigraphError, ValueError, TypeError, NotImplementedError) as exc:
                raise _located(exc, self) from exc
        if self.name and isinstance(y, Function) and y is not x and not y.name and scope in y.scope:
            y.name = self.name
        return y

    # configuration (specs) ------------------------------------------------------------------
    def config(self) -> dict:
        """The arguments a spec needs to rebuild this layer: those given explicitly (or by
        default_options) and those that differ from the signature defaults, in signature order."""
        defaults_ = _signature_defaults(type(self))  # type: ignore[arg-type]  # classes are hashable
        return {k: v for k, v in self.arguments.items()
                if k in self.explicit or not _same(v, defaults_.get(k, inspect.Parameter.empty))}


def _init_in_layout(init, init_shape: Callable, shape, dtype):
    return np.asarray(init(init_shape(tuple(shape)), dtype)).reshape(shape)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False


_UNNAMED_NODE = re.compile(r"^[A-Za-z]+ #\d+: ")


def _located(exc: Exception, layer: Layer) -> Exception:
    """The same error, its message prefixed once with the innermost layer's path and type."""
    if getattr(exc, "layer", None) is not None:
        return exc
    path = "/".join(s.name for s in current_scope() if s.name)
    message = _UNNAMED_NODE.sub("", str(exc))  # the layer names the place better than an op node's id
    try:
        new = type(exc)(f"{layer.kind} layer '{path}': {message}" if path else f"{layer.kind} layer: {message}")
    except TypeError:  # an exception type with another constructor: keep it as it is
        new = exc
    new.layer = layer
    return new


@functools.cache
def _signature_defaults(cls: type) -> dict:
    sig = inspect.signature(cls.__init__)
    return {k: p.default for k, p in sig.parameters.items() if k != "self" and p.default is not inspect.Parameter.empty}


def _recording(init):
    """Wrap a layer ``__init__``: apply default_options to arguments not given, record them all."""
    sig = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        if self.__dict__.get("_recorded_init"):  # a subclass's __init__ already recorded its arguments
            return init(self, *args, **kwargs)
        try:
            bound = sig.bind(self, *args, **kwargs)
        except TypeError as exc:
            valid = [k for k in sig.parameters if k != "self"]
            unknown = [k for k in kwargs if k not in sig.parameters]
            hint = closest(unknown[0], valid) if unknown else ""
            raise TypeError(f"{type(self).__name__}: {exc}{hint} (arguments: {', '.join(valid)})") from None
        explicit = set(bound.arguments) - {"self"}
        overrides = defaults.overrides(type(self), [k for k, p in sig.parameters.items()
                                                    if k not in explicit and k not in ("self", "name")
                                                    and p.default is not inspect.Parameter.empty])
        bound.arguments.update(overrides)
        bound.apply_defaults()
        self._recorded_init = True
        self.arguments = {k: v for k, v in bound.arguments.items() if k != "self"}
        self.explicit = explicit | set(overrides)
        init(*bound.args, **bound.kwargs)

    wrapped.__signature__ = sig
    return wrapped


Layer.__init__ = _recording(Layer.__init__)  # layers without an __init__ of their own record ``name``


def arguments_of(cls) -> list[str]:
    """The argument names a layer type takes (spec keys), in signature order."""
    return [k for k in inspect.signature(cls.__init__).parameters if k != "self"]

