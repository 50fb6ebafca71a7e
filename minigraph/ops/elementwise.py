"""Elementwise ops: unary math and activations, binary arithmetic with numpy broadcasting.

Each op is a row of a table: forward formula and derivative side by side. Derivatives are written
in terms of the input ``x`` and/or the output ``y`` (whichever is cheaper and more stable).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..checks import check_number
from ..threads import chunked, empty_as, map_chunks, same_layout, worth_chunks
from .base import Inferred, Op, align, broadcast_rule, export, make, register_op, unbroadcast


def _sigmoid(x):
    """``exp(min(x, 0)) / (1 + exp(-|x|))``: ``1/(1+e)`` for x >= 0 and ``e/(1+e)`` below, neither exp
    overflows. Branch-free whole-array passes: ``np.where`` on a mask of random signs runs about 10x
    slower than a ufunc pass over the same array (branch mispredictions)."""
    return np.exp(np.minimum(x, 0)) / (1 + np.exp(-np.abs(x)))


def _leaky_relu(x, alpha):
    """``max(x, alpha*x)`` for ``alpha <= 1`` (``min`` above): the same values as
    ``where(x > 0, x, alpha*x)`` in two branch-free passes."""
    y = np.multiply(x, x.dtype.type(alpha))
    return (np.maximum if alpha <= 1 else np.minimum)(x, y, out=y)


def _leaky_relu_grad(x, alpha):
    """``1`` where ``x > 0``, else ``alpha``: exactly ``max(x > 0, alpha)`` for ``0 <= alpha <= 1`` (the
    branch-free pass), ``np.where`` for other slopes."""
    if 0 <= alpha <= 1:
        d = (x > 0).astype(x.dtype)
        return np.maximum(d, x.dtype.type(alpha), out=d)
    return np.where(x > 0, 1.0, alpha).astype(x.dtype)


class Unary(Op):
    """``y = f(x)``; ``dy/dx = df(x, y)`` elementwise. ``forward_temporaries`` / ``backward_temporaries``:
    the numpy temporaries of ``f`` / ``g * df`` beyond their result, in multiples of the output size."""

    keeps_layout = True

    def __init__(self, name: str, f: Callable, df: Callable, saves_inputs: bool = True, saves_output: bool = False,
                 forward_temporaries: float = 0.0, backward_temporaries: float = 0.0):
        self.name, self.f, self.df = name, f, df
        self.saves_inputs, self.saves_output = saves_inputs, saves_output
        self.forward_temporaries, self.backward_temporaries = forward_temporaries, backward_temporaries

    def infer(self, in_shapes, in_dtypes, attrs, label):
        return Inferred(tuple(in_shapes[0]))

    def forward(self, step, xs, ctx):
        attrs, x = step.attrs, xs[0]
        if not (self.forward_temporaries and worth_chunks(x)):  # a single pass gains nothing from chunks
            return self.f(x, **attrs), None
        return chunked(lambda x: self.f(x, **attrs), x), None

    def vjp(self, step, g, xs, y, residual, needs):
        attrs, x = step.attrs, xs[0]
        # laid out as the derivative's operand, as numpy gives ``g * df`` for large arrays (it writes
        # the product into the temporary ``df``): a batch-last activation keeps a batch-last gradient
        like = x if x is not None else y if y is not None else g
        if not worth_chunks(g) or same_layout(g, like):
            return [g * self.df(x, y, **attrs)]
        # layouts differ (a batch-first gradient of a batch-last activation): numpy's whole-array pass
        # then strides through one of them (10x slower, measured); chunks read both from cache
        out = empty_as(like, np.result_type(g, like))
        map_chunks(lambda o, g, x, y: np.multiply(g, self.df(x, y, **attrs), out=o), out, g, x, y)
        return [out]


UNARY = {
    "negate": Unary("Negate", lambda x: -x, lambda x, y: -1.0, saves_inputs=False),
    "relu": Unary("ReLU", lambda x: np.maximum(x, 0), lambda x, y: (x > 0).astype(x.dtype), backward_temporaries=1.25),
    "leaky_relu": Unary("LeakyReLU", _leaky_relu, lambda x, y, alpha: _leaky_relu_grad(x, alpha),
                        backward_temporaries=1.25),
    "sigmoid": Unary("Sigmoid", _sigmoid, lambda x, y: y * (1 - y), saves_inputs=False, saves_output=True,
                     forward_temporaries=3.0, backward_temporaries=2.0),
    "tanh": Unary("Tanh", np.tanh, lambda x, y: 1 - y * y, saves_inputs=False, saves_output=True,
                  backward_temporaries=2.0),
    "softplus": Unary("Softplus", lambda x: np.logaddexp(x.dtype.type(0), x), lambda x, y: _sigmoid(x),
                      forward_temporaries=1.0, backward_temporaries=4.0),
    "exp": Unary("Exp", np.exp, lambda x, y: y, saves_inputs=False, saves_output=True),
    "log": Unary("Log", np.log, lambda x, y: 1 / x, backward_temporaries=1.0),
    "sqrt": Unary("Sqrt", np.sqrt, lambda x, y: 0.5 / y, saves_inputs=False, saves_output=True,
                  backward_temporaries=1.0),
    "square": Unary("Square", np.square, lambda x, y: 2 * x, backward_temporaries=1.0),
    "abs": Unary("Abs", np.abs, lambda x, y: np.sign(x), backward_temporaries=1.0),
    "clip": Unary("Clip", lambda x, min_value, max_value: np.clip(x, min_value, max_value),
                  lambda x, y, min_value, max_value: ((x >= min_value) & (x <= max_value)).astype(x.dtype),
                  backward_temporaries=1.25),
}


for _op in UNARY.values():
    register_op(_op)


@export(operator="negate", builds=UNARY["negate"])
def negate(x, name: str = ""):
    """``-x``."""
    return make(UNARY["negate"], [x], name=name)


@export(builds=UNARY["relu"])
def relu(x, name: str = ""):
    """``max(x, 0)``; the gradient at 0 is 0."""
    return make(UNARY["relu"], [x], name=name)


@export(builds=UNARY["leaky_relu"])
def leaky_relu(x, alpha: float = 0.01, name: str = ""):
    """``x`` where positive, ``alpha * x`` elsewhere."""
    return make(UNARY["leaky_relu"], [x], {"alpha": check_number(alpha, "alpha", "leaky_relu")}, name)


@export(builds=UNARY["sigmoid"])
def sigmoid(x, name: str = ""):
    """``1 / (1 + exp(-x))``, computed without overflow."""
    return make(UNARY["sigmoid"], [x], name=name)


@export(builds=UNARY["tanh"])
def tanh(x, name: str = ""):
    return make(UNARY["tanh"], [x], name=name)


@export(builds=UNARY["softplus"])
def softplus(x, name: str = ""):
    """``log(1 + exp(x))``, computed without overflow."""
    return make(UNARY["softplus"], [x], name=name)


@export(builds=UNARY["exp"])
def exp(x, name: str = ""):
    return make(UNARY["exp"], [x], name=name)


@export(builds=UNARY["log"])
def log(x, name: str = ""):
    """Natural log; ``-inf``/NaN for non-positive inputs, as numpy."""
    return make(UNARY["log"], [x], name=name)


@export(builds=UNARY["sqrt"])
def sqrt(x, name: str = ""):
    return make(UNARY["sqrt"], [x], name=name)


@export(builds=UNARY["square"])
def square(x, name: str = ""):
    return make(UNARY["square"], [x], name=name)


@export(operator="abs", builds=UNARY["abs"])
def abs(x, name: str = ""):  # noqa: A001 - CNTK's name
    """``|x|``; the gradient at 0 is 0."""
    return make(UNARY["abs"], [x], name=name)


@export(builds=UNARY["clip"])
def clip(x, min_value: float, max_value: float, name: str = ""):
    """``x`` limited to ``[min_value, max_value]``; the gradient is 1 inside, 0 outside."""
    low, high = check_number(min_value, "min_value", "clip"), check_number(max_value, "max_value", "clip")
    if low > high:
        raise ValueError(f"clip: min_value {min_value} is greater than max_value {max_value}")
    return make(UNARY["clip"], [x], {"min_value": low, "max_value": high}, name)


class Binary(Op):
    """``y = f(a, b)`` with numpy broadcasting of the static shapes; ``grads = (grad_a, grad_b)``, each
    ``(a, b, y, g) -> gradient`` at the output's shape. Only the gradients the backward pass needs are
    computed. ``backward_temporaries``: the gradient formulas' numpy temporaries, in multiples of the output
    size; ``passes_gradient``: both gradients are ``g`` itself (the same array for inputs with the batch axis)."""

    keeps_layout = True

    def __init__(self, name: str, f: Callable, grads: tuple[Callable, Callable], saves_inputs: bool = True,
                 saves_output: bool = False, backward_temporaries: float = 0.0, passes_gradient: bool = False):
        self.name, self.f, self.grads = name, f, grads
        self.saves_inputs, self.saves_output = saves_inputs, saves_output
        self.backward_temporaries, self.passes_gradient = backward_temporaries, passes_gradient

    def infer(self, in_shapes, in_dtypes, attrs, label):
        return Inferred(broadcast_rule(in_shapes, label))

    def forward(self, step, xs, ctx):
        rank = len(step.out_shape)
        return self.f(align(xs[0], rank), align(xs[1], rank)), None

    def vjp(self, step, g, xs, y, residual, needs):
        rank = len(step.out_shape)
        a, b = (align(x, rank) if x is not None else None for x in xs)
        # every gradient formula multiplies g, so it already has the output's shape
        return [unbroadcast(grad(a, b, y, g), shp) if need else None
                for grad, shp, need in zip(self.grads, step.in_array_shapes, needs)]


BINARY = {
    "plus": Binary("Plus", np.add, (lambda a, b, y, g: g, lambda a, b, y, g: g), saves_inputs=False,
                   passes_gradient=True),
    "minus": Binary("Minus", np.subtract, (lambda a, b, y, g: g, lambda a, b, y, g: -g), saves_inputs=False),
    "element_times": Binary("ElementTimes", np.multiply, (lambda a, b, y, g: g * b, lambda a, b, y, g: g * a),
                            backward_temporaries=1.0),
    "element_divide": Binary("ElementDivide", np.divide,
                             (lambda a, b, y, g: g / b, lambda a, b, y, g: -g * a / (b * b)), backward_temporaries=3.0),
}


for _binary_op in BINARY.values():
    register_op(_binary_op)


@export(operator="plus", builds=BINARY["plus"])
def plus(left, right, name: str = ""):
    """``left + right`` with broadcasting."""
    return make(BINARY["plus"], [left, right], name=name)


@export(operator="minus", builds=BINARY["minus"])
def minus(left, right, name: str = ""):
    """``left - right`` with broadcasting."""
    return make(BINARY["minus"], [left, right], name=name)


@export(operator="element_times", builds=BINARY["element_times"])
def element_times(left, right, name: str = ""):
    """``left * right`` elementwise with broadcasting."""
    return make(BINARY["element_times"], [left, right], name=name)


@export(operator="element_divide", builds=BINARY["element_divide"])
def element_divide(left, right, name: str = ""):
    """``left / right`` elementwise with broadcasting."""
    return make(BINARY["element_divide"], [left, right], name=name)
