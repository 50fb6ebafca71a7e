"""Shape inference: symbolic output shapes at build time, build-time errors, binding and feed checks at run time."""
import numpy as np
import pytest

import minigraph as mg

F32 = np.float32


def _strs(shape):
    return [str(d) for d in shape]


def test_symbolic_shapes_come_out_as_expressions():
    x = mg.input_variable((3, "H", "W"), name="x")
    cropped = x[:, 1:, :]
    assert _strs(cropped.shape) == ["3", "H - 1", "W"]
    grown = mg.splice(x, cropped, axis=1)
    assert _strs(grown.shape) == ["3", "2*H - 1", "W"]
    strided = mg.slice(grown, 1, 0, 0, strides=2)
    assert _strs(strided.shape) == ["3", "H", "W"]  # ceil((2H - 1) / 2) simplifies to H
    flat = mg.reshape(mg.transpose(x, (1, 2, 0)), (-1,))
    assert _strs(flat.shape) == ["3*H*W"]
    assert _strs(mg.reduce_mean(x, axis=(1, 2)).shape) == ["3", "1", "1"]
    assert _strs((x + mg.parameter((3, 1, 1))).shape) == ["3", "H", "W"]


def test_symbolic_graph_runs_for_several_bindings():
    x = mg.input_variable((3, "H", "W"), name="x")
    y = mg.splice(x, x[:, 1:, :], axis=1)
    for h, w in ((4, 5), (6, 2), (4, 5)):
        data = np.ones((2, 3, h, w), F32)
        assert y.eval({x: data}).shape == (2, 3, 2 * h - 1, w)


@pytest.mark.parametrize("build,match", [
    (lambda: mg.plus(mg.input_variable((3, 4)), mg.input_variable((5, 4))),
     r"cannot broadcast shapes \(3, 4\) and \(5, 4\)"),
    (lambda: mg.plus(mg.input_variable(("H",)), mg.input_variable(("W",))), "sizes H and W"),
    (lambda: mg.times(mg.input_variable((4,)), mg.parameter((3, 2))), "size 4 in left but 3 in right"),
    (lambda: mg.reduce_sum(mg.input_variable((2,)), axis=1), "axis 1 is out of range"),
])
def test_incompatible_shapes_fail_at_build_time(build, match):
    with pytest.raises(mg.ShapeError, match=match):
        build()


def test_checks_that_need_a_size_fire_once_bound():
    x = mg.input_variable(("H",), name="x")
    y = mg.slice(x, 0, 0, 5, name="first5")
    with pytest.raises(mg.ShapeError, match=r"Slice 'first5': slice \[0:5\] of axis 0 \(size 3\)"):
        y.eval({x: np.ones((1, 3), F32)})
    assert y.eval({x: np.ones((1, 6), F32)}).shape == (1, 5)


def test_conflicting_bindings_name_both_inputs():
    a = mg.input_variable(("H",), name="a")
    b = mg.input_variable(("H",), name="b")
    s = a + b
    with pytest.raises(mg.ShapeError, match=r"dimension H is bound to 3 by Input 'a' .* but to 4 by Input 'b'"):
        s.eval({a: np.ones((1, 3), F32), b: np.ones((1, 4), F32)})


def test_batch_sizes_must_agree():
    a, b = mg.input_variable((2,), name="a"), mg.input_variable((2,), name="b")
    with pytest.raises(mg.ShapeError, match="batch sizes differ: Input 'a' has 2 samples, Input 'b' has 3"):
        (a + b).eval({a: np.ones((2, 2), F32), b: np.ones((3, 2), F32)})


def test_missing_feed():
    a, b = mg.input_variable((2,), name="a"), mg.input_variable((2,), name="b")
    with pytest.raises(mg.GraphError, match="needs a value for Input 'b' \\(no feed given for it\\)"):
        (a + b).eval({a: np.ones((1, 2), F32)})


def test_unknown_feed_keys():
    a = mg.input_variable((2,), name="a")
    other = mg.input_variable((2,), name="other")
    y = a * 2
    with pytest.raises(mg.GraphError, match=r"feed key 'zz': no input of that name .* inputs: \['a'\]"):
        y.eval({"zz": np.ones((1, 2))})
    with pytest.raises(mg.GraphError, match="feed key Input 'other' is not an input of"):
        y.eval({a: np.ones((1, 2)), other: np.ones((1, 2))})
    with pytest.raises(mg.GraphError, match="is not an input variable"):
        y.eval({y: np.ones((1, 2))})


def test_ambiguous_feed_name():
    y = mg.input_variable((1,), name="a") + mg.input_variable((1,), name="a")
    with pytest.raises(mg.GraphError, match="feed key 'a': 2 inputs of that name"):
        y.eval({"a": np.ones((1, 1))})


@pytest.mark.parametrize("data,exc,match", [
    (np.ones((3, 4), F32), mg.ShapeError, r"array of shape \(3, 4\) does not match static shape \(3, H\); "
                                          r"expected \(batch, 3, H\) with a leading batch axis"),
    (np.ones((1, 2, 4), F32), mg.ShapeError, r"axis 1: expected 3, got 2"),
    (np.array([["a"]]), mg.GraphError, "dtype <U1 is not numeric"),
    (object(), mg.GraphError, "is not numeric"),
])
def test_bad_feeds_never_reach_numpy(data, exc, match):
    x = mg.input_variable((3, "H"), name="x")
    with pytest.raises(exc, match=match):
        mg.relu(x).eval({x: data})


def test_expression_dims_must_be_bound_by_a_plain_name():
    x = mg.input_variable(("2*H",), name="x")
    with pytest.raises(mg.ShapeError, match="dimension 2\\*H cannot be bound from data"):
        x.__neg__().eval({x: np.ones((1, 4), F32)})
    y = mg.input_variable(("H",), name="y")
    z = mg.input_variable(("2*H",), name="z")
    s = mg.splice(y, z, axis=0)
    assert s.eval({y: np.ones((1, 3), F32), z: np.ones((1, 6), F32)}).shape == (1, 9)
    with pytest.raises(mg.ShapeError, match=r"feed for Input 'z': .*axis 1: expected 6, got 5"):
        s.eval({y: np.ones((1, 3), F32), z: np.ones((1, 5), F32)})


def test_feeds_are_converted_to_the_variable_dtype_and_lists_accepted():
    x = mg.input_variable((2,), name="x")
    out = (x * 2).eval({"x": [[1, 2]]})
    assert out.dtype == np.float32 and out.tolist() == [[2.0, 4.0]]


def test_values_without_fed_inputs_have_batch_one():
    w = mg.parameter((2, 3), init=1.0)
    assert mg.reduce_sum(w, axis=0).eval().shape == (1, 1, 3)


def test_nodes_computed_from_dtypeless_parameters_adopt_the_dtype_they_meet():
    p = mg.parameter((2, 3), init=1.0)          # no dtype yet
    reshaped = mg.reshape(p, (3, 2))            # computed from p alone: no dtype either
    assert reshaped.dtype is None
    x = mg.input_variable((3, 2), dtype=np.float64)
    y = x + reshaped                            # meets float64: both follow
    assert (y.dtype, reshaped.dtype, p.dtype) == (np.float64, np.float64, np.float64)
    assert y.eval({x: np.zeros((1, 3, 2))}).dtype == np.float64


def test_a_graph_of_parameters_alone_runs_in_float32():
    p = mg.parameter((2,), init=1.0)
    q = p * 2.0 + p
    assert q.eval().dtype == np.float32 and q.dtype == np.float32
