"""Dense: tensor-shaped outputs, input_rank/map_rank, init/bias options, values and gradients."""
import math

import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L

from gradcheck import check_gradients, variable


def test_cntk_docstring_example():
    f = L.Dense(5, activation=mg.relu)
    h = f(mg.input_variable(3))
    assert h.shape == (5,) and f.W.shape == (3, 5)
    np.testing.assert_array_equal(f.b.value, np.zeros(5, np.float32))


def test_tuple_output_shape_values_and_gradients():
    f = L.Dense((4, 3, 3), activation=mg.tanh, init_bias=mg.initializers.normal(0.1, seed=0))
    x = variable(6, "z")
    h = f(x)
    assert h.shape == (4, 3, 3) and f.W.shape == (6, 4, 3, 3) and f.b.shape == (4, 3, 3)
    data = np.random.default_rng(0).standard_normal((3, 6))
    expected = np.tanh(np.einsum("ni,ijkl->njkl", data, f.W.value) + f.b.value)
    np.testing.assert_allclose(h.eval({x: data}), expected, rtol=1e-12)
    check_gradients(h, {x: data})


def test_generator_dense_shape():
    f = L.Dense((128, 7, 7))
    f(mg.input_variable(100))
    assert f.W.shape == (100, 128, 7, 7)


def test_glorot_fans_use_the_whole_output_shape():
    f = L.Dense((8, 2, 2), init=mg.initializers.glorot_uniform(seed=1))
    f(mg.input_variable(16))
    limit = math.sqrt(6.0 / (16 + 32))
    assert np.abs(f.W.value).max() <= limit and np.abs(f.W.value).max() > 0.8 * limit


def test_default_contracts_every_input_axis_and_creates_W_on_the_first_call():
    f = L.Dense(5)
    with pytest.raises(AttributeError, match="W does not exist yet.*input_rank"):
        getattr(f, "W")  # noqa: B009 (the attribute access is the test)
    assert f(mg.input_variable((3, 4))).shape == (5,) and f.W.shape == (3, 4, 5)


def test_input_rank_creates_W_at_once_and_maps_leading_axes():
    f = L.Dense(5, input_rank=1)
    assert f.W.shape == (-1, 5)
    x = variable((3, 4))
    h = f(x)
    assert h.shape == (3, 5) and f.W.shape == (4, 5)
    data = np.random.default_rng(1).standard_normal((2, 3, 4))
    np.testing.assert_allclose(h.eval({x: data}), data @ f.W.value + f.b.value, rtol=1e-12)


def test_map_rank_keeps_leading_axes():
    f = L.Dense(2, map_rank=1)
    assert f(mg.input_variable((3, 4, 5))).shape == (3, 2) and f.W.shape == (4, 5, 2)


def test_input_rank_and_map_rank_are_exclusive():
    with pytest.raises(ValueError, match="input_rank or map_rank"):
        L.Dense(2, input_rank=1, map_rank=1)
    with pytest.raises(ValueError, match="input_rank"):
        L.Dense(2, input_rank=-1)


def test_init_array_fixes_W_and_wrong_shapes_are_errors():
    W = np.arange(12.0).reshape(3, 4)
    f = L.Dense(4, init=W)
    assert f.W.shape == (3, 4)
    x = variable(3)
    np.testing.assert_allclose(f(x).eval({x: np.ones((1, 3))}), [W.sum(0)])
    with pytest.raises(ValueError, match=r"init array has shape \(3, 5\); expected \(\?, 4\)"):
        L.Dense(4, init=np.zeros((3, 5)))


def test_bias_false_and_init_bias():
    f = L.Dense(3, bias=False)
    f(mg.input_variable(2))
    assert [p.name for p in f.parameters] == ["W"]
    g = L.Dense(3, init_bias=[1.0, 2.0, 3.0])
    np.testing.assert_allclose(g.b.value, [1, 2, 3])


@pytest.mark.parametrize("kwargs,match", [({"shape": 0}, "shape"), ({"shape": (3, -1)}, "shape"),
                                          ({"shape": 3, "activation": "rleu"}, "did you mean 'relu'"),
                                          ({"shape": 3, "bias": 1}, "bias")])
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        L.Dense(**kwargs)


def test_misspelt_keyword_suggests_the_argument():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'activaton'; did you mean 'activation'"):
        L.Dense(3, activaton="relu")


def test_shared_parameters_across_calls():
    f = L.Dense(4)
    a, b = mg.input_variable(3), mg.input_variable(3)
    total = f(a) + f(b)
    assert {id(p) for p in total.parameters} == {id(f.W), id(f.b)}
    with pytest.raises(mg.ShapeError):
        f(mg.input_variable(5))
