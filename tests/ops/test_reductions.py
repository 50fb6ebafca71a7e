"""reduce_sum/mean/max and softmax/log_softmax: values vs numpy, CNTK shape defaults, gradients, errors."""
import numpy as np
import pytest

import minigraph as mg

from gradcheck import check_gradients, param, variable

REDUCTIONS = [(mg.reduce_sum, np.sum), (mg.reduce_mean, np.mean), (mg.reduce_max, np.max)]


@pytest.mark.parametrize("fn,ref", REDUCTIONS)
@pytest.mark.parametrize("axis,keepdims", [(None, True), (0, True), (-1, True), ((0, 2), True), (1, False),
                                           ([0, 2], False)])
def test_reduction_values_shapes_and_gradient(fn, ref, axis, keepdims):
    x = variable((3, 4, 5), "x")
    y = fn(x, axis=axis, keepdims=keepdims)
    data = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    np_axis = tuple(range(1, 4)) if axis is None else tuple(np.atleast_1d(axis) % 3 + 1)
    expected = ref(data, axis=np_axis, keepdims=keepdims and axis is not None)
    assert y.shape == expected.shape[1:]
    np.testing.assert_allclose(y.eval({x: data}), expected, rtol=1e-12)
    check_gradients(y, {x: data})


def test_default_reduces_everything_to_a_scalar_per_sample():
    x = mg.input_variable((3, "H", "W"))
    y = mg.reduce_sum(x)
    assert y.shape == ()
    assert y.eval({x: np.ones((2, 3, 4, 5), np.float32)}).tolist() == [60.0, 60.0]
    assert mg.reduce_mean(x, axis=1).shape[1] == 1


def test_reduce_max_splits_gradient_between_ties():
    x = variable((4,), "x")
    g = mg.reduce_max(x).grad({x: np.array([[1.0, 3.0, 3.0, 2.0]])}, wrt=x)
    np.testing.assert_array_equal(g, [[0.0, 0.5, 0.5, 0.0]])


def test_reduction_of_parameter_broadcasts_over_batch():
    w = param(np.arange(6.0).reshape(2, 3), "w")
    x = variable((2,), "x")
    y = mg.reduce_sum(w, axis=1, keepdims=False) * x
    check_gradients(y, {x: np.random.default_rng(1).standard_normal((3, 2))}, wrt=[w, x])


@pytest.mark.parametrize("axis,exc,match", [(3, mg.ShapeError, "axis 3 is out of range"),
                                            ("0", TypeError, "axis must be None, an int or a sequence"),
                                            ([0.5], TypeError, "axis must be None")])
def test_reduction_axis_errors(axis, exc, match):
    with pytest.raises(exc, match=match):
        mg.reduce_sum(mg.input_variable((2, 3)), axis=axis)


def test_reduction_keepdims_must_be_bool():
    with pytest.raises(TypeError, match="keepdims must be a bool"):
        mg.reduce_mean(mg.input_variable((2,)), axis=0, keepdims=1)


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_and_log_softmax(axis):
    x = variable((3, 4), "x")
    data = np.random.default_rng(2).standard_normal((2, 3, 4))
    expected = _np_softmax(data, axis % 2 + 1)
    np.testing.assert_allclose(mg.softmax(x, axis).eval({x: data}), expected, rtol=1e-12)
    np.testing.assert_allclose(mg.log_softmax(x, axis).eval({x: data}), np.log(expected), rtol=1e-12)
    check_gradients(mg.softmax(x, axis), {x: data}, elementwise=True)
    check_gradients(mg.log_softmax(x, axis), {x: data}, elementwise=True)


def test_softmax_is_stable_for_large_inputs():
    x = mg.input_variable((3,))
    data = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1000.0, -1000.0]], np.float32)
    out = mg.softmax(x).eval({x: data})
    log_out = mg.log_softmax(x).eval({x: data})
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(log_out))
    np.testing.assert_allclose(out[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(log_out[0], [-2.407606, -1.407606, -0.407606], rtol=1e-5)


def test_softmax_errors():
    with pytest.raises(mg.ShapeError, match=r"Softmax #\d+: axis 2 is out of range .* rank 2"):
        mg.softmax(mg.input_variable((2, 3)), axis=2)
    with pytest.raises(TypeError, match="LogSoftmax: axis must be an int"):
        mg.log_softmax(mg.input_variable((2, 3)), axis=None)
