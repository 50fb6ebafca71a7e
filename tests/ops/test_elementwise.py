"""Elementwise ops: values against numpy, gradients against finite differences (incl. broadcasting)."""
import numpy as np
import pytest

import minigraph as mg
from minigraph.ops.elementwise import BINARY

from gradcheck import check_gradients, param, recording, variable
from helpers import uniform

UNARY_CASES = {
    "negate": (mg.negate, np.negative, {}),
    "relu": (mg.relu, lambda x: np.maximum(x, 0), {}),
    "leaky_relu": (lambda x: mg.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x), {}),
    # slopes outside [0, 1] take the other branch of the forward (min) and of the derivative
    "leaky_relu_steep": (lambda x: mg.leaky_relu(x, 1.5), lambda x: np.where(x > 0, x, 1.5 * x), {}),
    "leaky_relu_negative": (lambda x: mg.leaky_relu(x, -0.3), lambda x: np.where(x > 0, x, -0.3 * x), {}),
    "sigmoid": (mg.sigmoid, lambda x: 1 / (1 + np.exp(-x)), {}),
    "tanh": (mg.tanh, np.tanh, {}),
    "softplus": (mg.softplus, lambda x: np.log1p(np.exp(x)), {}),
    "exp": (mg.exp, np.exp, {}),
    "log": (mg.log, np.log, {"positive": True}),
    "sqrt": (mg.sqrt, np.sqrt, {"positive": True}),
    "square": (mg.square, np.square, {}),
    "abs": (mg.abs, np.abs, {}),
    "clip": (lambda x: mg.clip(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), {}),
}


def _data(shape, positive=False, seed=0):
    x = uniform(shape, 0.5, 2.0, seed) if positive else uniform(shape, -2, 2, seed)
    if not positive:  # keep away from kinks (0 for relu/abs, clip bounds) where differences lie
        x = np.where(np.abs(x) < 0.05, 0.3, x)
        x = np.where(np.abs(np.abs(x) - 0.6) < 0.15, 1.1, x)
    return x


@pytest.mark.parametrize("name", sorted(UNARY_CASES))
def test_unary_value_and_gradient(name):
    build, ref, opts = UNARY_CASES[name]
    x = variable((3, 4), "x")
    y = build(x)
    data = _data((2, 3, 4), **opts)
    np.testing.assert_allclose(y.eval({x: data}), ref(data), rtol=1e-12)
    assert y.shape == (3, 4)
    check_gradients(y, {x: data}, elementwise=True)


@pytest.mark.parametrize("fn,ref", [(mg.plus, np.add), (mg.minus, np.subtract), (mg.element_times, np.multiply),
                                    (mg.element_divide, np.divide)])
@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1))])
def test_binary_broadcasting(fn, ref, sa, sb):
    a, b = variable(sa, "a"), variable(sb, "b")
    y = fn(a, b)
    assert y.shape == np.broadcast_shapes(sa, sb)
    rng = np.random.default_rng(1)
    da, db = rng.uniform(0.5, 2, (2, *sa)), rng.uniform(0.5, 2, (2, *sb))
    expected = ref(da.reshape((2,) + (1,) * (len(y.shape) - len(sa)) + sa),
                   db.reshape((2,) + (1,) * (len(y.shape) - len(sb)) + sb))
    np.testing.assert_allclose(y.eval({a: da, b: db}), expected)
    check_gradients(y, {a: da, b: db})


def test_leaky_relu_derivative_is_exactly_one_or_alpha_in_float32():
    x = mg.input_variable((4,), dtype=np.float32, name="x")
    data = np.array([[-2.0, -0.0, 0.0, 3.0]], np.float32)
    for alpha in (0.01, 0.2, 0.3):
        (g,) = mg.leaky_relu(x, alpha).grad({x: data}, wrt=[x]).values()
        np.testing.assert_array_equal(g, [[np.float32(alpha)] * 3 + [1.0]])


def test_sigmoid_saturates_without_overflow_in_float32():
    x = mg.input_variable((5,), dtype=np.float32, name="x")
    data = np.array([[-200.0, -30.0, 0.0, 30.0, 200.0]], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = mg.sigmoid(x).eval({x: data})
    expected = 1 / (1 + np.exp(-data.astype(np.float64)))
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-37)  # float32 underflows below ~1e-38


def test_parameter_broadcast_over_batch_and_fan_out():
    x = variable((3, 4), "x")
    w = param(np.linspace(0.5, 1.5, 4), "w")
    y = x * w + w * w - x  # w and x each used twice
    data = np.random.default_rng(2).standard_normal((5, 3, 4))
    check_gradients(y, {x: data})


def test_scalar_constants_adopt_dtype():
    x = variable((2,), "x")
    y = 2.0 * x + 1
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.eval({x: np.ones((1, 2))}), [[3.0, 3.0]])


def test_operators_build_nodes():
    a, b = variable((2,), "a"), variable((2,), "b")
    da, db = np.array([[1.0, 2.0]]), np.array([[3.0, 5.0]])
    assert np.allclose((a - b).eval({a: da, b: db}), da - db)
    assert np.allclose((a / b).eval({a: da, b: db}), da / db)
    assert np.allclose((-a).eval({a: da}), -da)
    assert np.allclose((1 - a).eval({a: da}), 1 - da)


def test_incompatible_broadcast_names_shapes():
    with pytest.raises(mg.ShapeError, match=r"\(3, 4\) and \(5, 4\)"):
        mg.plus(mg.input_variable((3, 4)), mg.input_variable((5, 4)))


def test_clip_rejects_inverted_bounds():
    with pytest.raises(ValueError, match="min_value"):
        mg.clip(mg.input_variable((2,)), 1.0, 0.0)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("wanted", [0, 1])
def test_binary_computes_only_the_wanted_gradient(name, wanted, monkeypatch):
    op, calls = BINARY[name], []
    monkeypatch.setattr(op, "grads", recording(op.grads, calls))
    x, p = variable((3,), "x"), param([1.0, 2.0, 4.0], "p")
    y = mg.ops.EXPORTS[name](x, p)
    y.grad({x: _data((2, 3), positive=True)}, wrt=[(x, p)[wanted]])
    assert calls == [wanted]
