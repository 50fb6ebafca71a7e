"""Every exported op keeps float32 float32: forward values and every gradient (inputs and parameters).

One small float32 builder per public op function (:data:`minigraph.ops.base.EXPORTS`); a new op
without a builder fails :func:`test_every_exported_op_has_a_builder`. Inputs are a fed variable and,
where the op takes a second operand, a parameter, so both the batched (N rows) and the
parameter-only (1 row) gradient paths run.
"""
import numpy as np
import pytest

import minigraph as mg
from minigraph.ops.base import EXPORTS

from helpers import uniform

F32 = np.float32
RNG = np.random.default_rng(0)  # reseeded by each test, so values do not depend on which tests ran before


def _x(shape=(3, 4), name="x"):
    return mg.input_variable(shape, dtype=F32, name=name)


def _p(shape, low=-1.0, high=1.0, name="p"):
    return mg.parameter(init=RNG.uniform(low, high, shape).astype(F32), name=name)


def _data(shape, low=-1.0, high=1.0, batch=2):
    return uniform((batch, *shape), low, high, seed=RNG).astype(F32)


def _unary(fn, low=-1.0, high=1.0):
    """``fn(x * p)``: the op sees a batched value, and the gradient reaches a parameter through it."""
    def build():
        x, p = _x(), _p((4,), 0.5, 1.0)
        return fn(mg.element_times(x, p)), {x: _data((3, 4), low, high)}
    return build


def _binary(fn, low=-1.0, high=1.0):
    def build():
        x, p = _x(), _p((4,), low, high)
        return fn(x, p), {x: _data((3, 4), low, high)}
    return build


def _loss(fn, low=-1.0, high=1.0):
    """Output fed, target a parameter (its gradient is wanted too)."""
    def build():
        x, t = _x(), _p((3, 4), low, high, name="t")
        return fn(x, t), {x: _data((3, 4), low, high)}
    return build


def _conv(fn):
    def build():
        x, w = _x((2, 5, 5)), _p((2, 2, 3, 3), name="w")
        return fn(w, x, auto_padding=[False, True, True]), {x: _data((2, 5, 5))}
    return build


def _pooling(fn, *args):
    def build():
        x = _x((2, 5, 5))
        return fn(mg.element_times(x, _p((5,))), *args), {x: _data((2, 5, 5))}
    return build


def _batch_normalization():
    x = _x((2, 3, 3))
    stats = [mg.constant(np.full(2, v, F32)) for v in (0.0, 1.0)]
    return mg.batch_normalization(x, _p((2,), name="scale"), _p((2,), name="bias"), *stats), {x: _data((2, 3, 3))}


def _layer_normalization():
    x = _x()
    return mg.layer_normalization(x, _p((4,), name="scale"), _p((4,), name="bias")), {x: _data((3, 4))}


def _splice():
    x = _x()
    return mg.splice(x, _p((2, 4)), axis=0), {x: _data((3, 4))}


def _times():
    x = _x()
    return mg.times(x, _p((4, 5), name="w")), {x: _data((3, 4))}


def _shaped(fn):
    """A shape op applied to ``x * p`` (values move, a parameter still gets a gradient)."""
    def build():
        x = _x((2, 3, 4))
        return fn(mg.element_times(x, _p((4,)))), {x: _data((2, 3, 4))}
    return build


BUILDERS = {
    "abs": _unary(mg.abs),
    "clip": _unary(lambda v: mg.clip(v, -0.5, 0.5)),
    "exp": _unary(mg.exp),
    "leaky_relu": _unary(lambda v: mg.leaky_relu(v, 0.1)),
    "log": _unary(mg.log, 0.5, 2.0),
    "negate": _unary(mg.negate),
    "relu": _unary(mg.relu),
    "sigmoid": _unary(mg.sigmoid),
    "softplus": _unary(mg.softplus),
    "sqrt": _unary(mg.sqrt, 0.5, 2.0),
    "square": _unary(mg.square),
    "tanh": _unary(mg.tanh),
    "dropout": _unary(lambda v: mg.dropout(v, 0.5)),
    "softmax": _unary(lambda v: mg.softmax(v, axis=0)),
    "log_softmax": _unary(mg.log_softmax),
    "reduce_sum": _unary(lambda v: mg.reduce_sum(v, axis=1)),
    "reduce_mean": _unary(lambda v: mg.reduce_mean(v, axis=0)),
    "reduce_max": _unary(lambda v: mg.reduce_max(v, axis=1)),
    "plus": _binary(mg.plus),
    "minus": _binary(mg.minus),
    "element_times": _binary(mg.element_times),
    "element_divide": _binary(mg.element_divide, 0.5, 2.0),
    "squared_error": _loss(mg.squared_error),
    "binary_cross_entropy": _loss(mg.binary_cross_entropy, 0.1, 0.9),
    "binary_cross_entropy_with_logits": _loss(mg.binary_cross_entropy_with_logits),
    "cross_entropy_with_softmax": _loss(mg.cross_entropy_with_softmax, 0.0, 1.0),
    "classification_error": _loss(mg.classification_error),
    "convolution": _conv(mg.convolution),
    "convolution_transpose": _conv(mg.convolution_transpose),
    "pooling": _pooling(mg.pooling, "average", (2, 2)),
    "max_pooling": _pooling(mg.max_pooling, (3, 3), 2, True),
    "average_pooling": _pooling(mg.average_pooling, (3, 3), 1, True),
    "batch_normalization": _batch_normalization,
    "layer_normalization": _layer_normalization,
    "times": _times,
    "splice": _splice,
    "reshape": _shaped(lambda v: mg.reshape(v, (4, 6))),
    "transpose": _shaped(lambda v: mg.transpose(v, (2, 0, 1))),
    "swapaxes": _shaped(lambda v: mg.swapaxes(v, 0, 2)),
    "slice": _shaped(lambda v: mg.slice(v, [1, 2], [1, 0], [3, -1])),
    "getitem": _shaped(lambda v: v[1, ::2]),
    "cast": _shaped(lambda v: mg.cast(mg.cast(v, np.float64), F32)),  # float64 in between, float32 gradients out
}

NOT_DIFFERENTIABLE = {
    "classification_error": "a metric (0/1 counts): it has no gradient, only its forward value is checked",
}


def test_every_exported_op_has_a_builder():
    assert sorted(BUILDERS) == sorted(EXPORTS)


@pytest.mark.parametrize("training", [False, True], ids=["eval", "training"])
@pytest.mark.parametrize("op", sorted(BUILDERS))
def test_float32_in_float32_out(op, training):
    global RNG
    RNG = np.random.default_rng(0)
    root, feed = BUILDERS[op]()
    y = root.eval(feed, training=training, seed=1)
    assert y.dtype == F32, f"{op}: forward gives {y.dtype}"
    assert np.all(np.isfinite(y)), f"{op}: forward gives non-finite values"
    if op in NOT_DIFFERENTIABLE:
        return
    wrt = [*root.arguments, *root.parameters]
    assert root.parameters, f"{op}: the builder should give a parameter a gradient"
    # a random output gradient: with ones, softmax and the normalizations have an exactly zero input gradient
    grads = root.grad(feed, wrt=wrt, grad_root=RNG.standard_normal(y.shape).astype(F32), training=training, seed=1)
    for node in wrt:
        g = grads[node]
        assert g.dtype == F32, f"{op}: gradient w.r.t. {node.label} is {g.dtype}"
        assert np.all(np.isfinite(g)), f"{op}: gradient w.r.t. {node.label} has non-finite values"
        assert np.any(g != 0), f"{op}: gradient w.r.t. {node.label} is all zeros (the check would be vacuous)"
