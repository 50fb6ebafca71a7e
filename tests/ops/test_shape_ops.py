"""reshape, transpose, swapaxes, slice, x[...], splice, cast: values, gradients, symbolic shapes, errors."""
import numpy as np
import pytest

import minigraph as mg

from gradcheck import check_gradients, param, variable

RNG = np.random.default_rng(0)


def _feed(x, batch=2):
    return {x: RNG.standard_normal((batch, *x.shape))}


@pytest.mark.parametrize("target,expected", [((6, 4), (6, 4)), ((-1,), (24,)), ((2, -1, 3), (2, 4, 3)), (24, (24,))])
def test_reshape_values_and_gradient(target, expected):
    x = variable((2, 3, 4), "x")
    y = mg.reshape(x, target)
    assert y.shape == expected
    feed = _feed(x)
    np.testing.assert_array_equal(y.eval(feed), feed[x].reshape((2, *expected)))
    check_gradients(y * y, feed)


def test_reshape_symbolic_targets():
    x = mg.input_variable((3, "H", "W"), name="x")
    merged = mg.reshape(x, ("H*W", 3))
    assert [str(d) for d in merged.shape] == ["H*W", "3"]
    flat = mg.reshape(x, (-1,))
    assert str(flat.shape[0]) == "3*H*W"
    halves = mg.reshape(x, (3, "H", -1))
    assert [str(d) for d in halves.shape] == ["3", "H", "W"]
    data = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(merged.eval({x: data}), data.reshape(2, 20, 3))
    assert flat.eval({x: data}).shape == (2, 60)


def test_reshape_symbolic_errors():
    x = mg.input_variable((3, "H"), name="x")
    with pytest.raises(mg.ShapeError, match=r"uses W, which does not occur in the input shape \(3, H\)"):
        mg.reshape(x, ("W", -1))
    with pytest.raises(mg.ShapeError, match=r"Reshape #\d+: cannot reshape \(3, H\) \(3\*H elements\) to \(2, -1\)"):
        mg.reshape(x, (2, -1))


@pytest.mark.parametrize("target,match,exc", [((5, 5), r"24 elements\) to \(5, 5\) \(25 elements\)", mg.ShapeError),
                                              ((5, -1), "24 is not a multiple of 5", mg.ShapeError),
                                              ((-1, -1), "more than one -1", ValueError),
                                              ((0, 24), "invalid size 0", ValueError)])
def test_reshape_errors(target, match, exc):
    with pytest.raises(exc, match=match):
        mg.reshape(mg.input_variable((2, 3, 4)), target)


@pytest.mark.parametrize("perm", [(1, 2, 0), (2, 0, 1), (0, 1, 2), (-1, 0, 1)])
def test_transpose_values_and_gradient(perm):
    x = variable((2, 3, 4), "x")
    y = mg.transpose(x, perm)
    feed = _feed(x)
    np.testing.assert_array_equal(y.eval(feed), np.transpose(feed[x], (0, *(p % 3 + 1 for p in perm))))
    check_gradients(y, feed)


def test_transpose_symbolic_and_swapaxes():
    x = mg.input_variable((3, "H", "W"))
    assert [str(d) for d in mg.transpose(x, (1, 2, 0)).shape] == ["H", "W", "3"]
    assert [str(d) for d in mg.swapaxes(x, 0, 2).shape] == ["W", "H", "3"]
    v = variable((2, 5), "v")
    feed = _feed(v)
    np.testing.assert_array_equal(mg.swapaxes(v).eval(feed), feed[v].transpose(0, 2, 1))


@pytest.mark.parametrize("perm,match", [((0, 0, 1), "not a permutation"), ((0, 1), "not a permutation"),
                                        ((0, 1, 3), "axis 3 is out of range")])
def test_transpose_errors(perm, match):
    with pytest.raises(mg.ShapeError, match=match):
        mg.transpose(mg.input_variable((2, 3, 4)), perm)
    with pytest.raises(TypeError, match="sequence of ints"):
        mg.transpose(mg.input_variable((2, 3)), "ab")


@pytest.mark.parametrize("args,index", [
    ((0, 1, 3), np.s_[:, 1:3]),
    ((1, -3, 0), np.s_[:, :, -3:]),
    ((1, 0, -1), np.s_[:, :, 0:-1]),
    ((1, 0, 5, 2), np.s_[:, :, 0:5:2]),
    (([0, 1], [1, 1], [4, 4], [2, 1]), np.s_[:, 1:4:2, 1:4]),
])
def test_slice_values_and_gradient(args, index):
    x = variable((4, 5), "x")
    y = mg.slice(x, *args)
    feed = _feed(x, 3)
    np.testing.assert_array_equal(y.eval(feed), feed[x][index])
    check_gradients(y, feed, elementwise=True)


def test_slice_symbolic_axis_checked_when_bound():
    x = mg.input_variable(("H",), name="x")
    tail = mg.slice(x, 0, -2, 0)
    head = mg.slice(x, 0, 1, 4)
    assert str(tail.shape[0]) == "2" and head.shape == (3,)
    assert tail.eval({x: np.arange(5.0)[None]}).tolist() == [[3.0, 4.0]]
    with pytest.raises(mg.ShapeError, match=r"Slice #\d+: slice \[1:4\] of axis 0 \(size 3\)"):
        head.eval({x: np.ones((1, 3))})


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"axis": 0, "begin_index": 3, "end_index": 2}, mg.ShapeError, r"valid: -4 <= begin < end <= 4"),
    ({"axis": 0, "begin_index": 0, "end_index": 9}, mg.ShapeError, "out of range"),
    ({"axis": 2, "begin_index": 0, "end_index": 1}, mg.ShapeError, "axis 2 is out of range"),
    ({"axis": [0, 1], "begin_index": 0, "end_index": 1}, ValueError, "one entry per axis"),
    ({"axis": 0, "begin_index": 0, "end_index": 2, "strides": 0}, ValueError, "strides .* must be positive"),
    ({"axis": 0, "begin_index": 0.5, "end_index": 2}, TypeError, "begin_index must be an int"),
    ({"axis": [0, 0], "begin_index": [0, 0], "end_index": [1, 1]}, ValueError, "axis 0 is sliced twice"),
])
def test_slice_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mg.slice(mg.input_variable((4, 5)), **kwargs)


@pytest.mark.parametrize("key", [np.s_[1:3, :, 0], np.s_[-1], np.s_[..., 1:], np.s_[0, ..., -2], np.s_[::2, 1, 1:4:2],
                                 np.s_[-2:], 2])
def test_getitem_matches_numpy(key):
    x = variable((3, 4, 5), "x")
    y = x[key]
    feed = _feed(x)
    expected = feed[x][(np.s_[:],) + (key if isinstance(key, tuple) else (key,))]
    assert y.shape == expected.shape[1:]
    np.testing.assert_array_equal(y.eval(feed), expected)
    check_gradients(y, feed)


def test_getitem_full_slice_is_identity():
    x = mg.input_variable((3, 4))
    assert x[:, :] is x and x[...] is x


@pytest.mark.parametrize("key,exc,match", [
    (np.s_[0, 0, 0], IndexError, "3 indices for a static shape of rank 2"),
    (np.s_[..., 0, ...], IndexError, "only one ellipsis"),
    (np.s_[::-1], IndexError, "non-positive step"),
    (np.s_[2:0], IndexError, "empty"),
    (np.s_[None], TypeError, "not supported"),
    (np.s_[5], mg.ShapeError, "out of range"),
])
def test_getitem_errors(key, exc, match):
    with pytest.raises(exc, match=match):
        mg.input_variable((3, 4))[key]


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_splice_values_and_gradient_with_shared_parameter(axis):
    a = variable((2, 3), "a")
    shape_b = [2, 3]
    shape_b[axis] = 4
    b = param(RNG.standard_normal(shape_b), "b")
    y = mg.splice(a, b, a, axis=axis)
    feed = _feed(a, 3)
    bb = np.broadcast_to(b.value, (3, *shape_b))
    np.testing.assert_array_equal(y.eval(feed), np.concatenate([feed[a], bb, feed[a]], axis=axis % 2 + 1))
    check_gradients(y, feed, wrt=[a, b])


def test_splice_symbolic_sizes_add_up():
    x = mg.input_variable((3, "H"))
    assert str(mg.splice(x, x, axis=1).shape[1]) == "2*H"


@pytest.mark.parametrize("shapes,axis,match", [([(2, 3), (2, 3, 1)], 0, "different ranks"),
                                               ([(2, 3), (3, 3)], 1, r"axis 0 has sizes 2 and 3"),
                                               ([(2, 3), (2, 3)], 2, "axis 2 is out of range")])
def test_splice_errors(shapes, axis, match):
    with pytest.raises(mg.ShapeError, match=match):
        mg.splice(*[mg.input_variable(s) for s in shapes], axis=axis)


def test_splice_argument_errors():
    with pytest.raises(ValueError, match="at least one input"):
        mg.splice()
    with pytest.raises(TypeError, match="axis must be an int"):
        mg.splice(mg.input_variable((2,)), axis="0")


def test_cast_mixes_precisions_explicitly():
    x32 = mg.input_variable((3,), name="x32")
    x64 = variable((3,), "x64")
    with pytest.raises(mg.GraphError, match="mix dtypes.*mg.cast"):
        mg.plus(x32, x64)
    y = mg.cast(x32, np.float64) * x64
    assert y.dtype == np.float64
    feed = {x32: np.ones((2, 3), np.float32), x64: np.full((2, 3), 2.0)}
    out = y.eval(feed)
    assert out.dtype == np.float64 and np.all(out == 2.0)
    gx = y.grad(feed, wrt=x32)
    assert gx.dtype == np.float32 and np.all(gx == 2.0)
    check_gradients(mg.cast(mg.cast(x64, np.float32), np.float64), {x64: feed[x64]}, rtol=1e-3, eps=1e-3)


def test_cast_rejects_other_dtypes():
    with pytest.raises(TypeError, match="not supported"):
        mg.cast(mg.input_variable((2,)), np.int32)
    with pytest.raises(TypeError, match="dtype is required"):
        mg.cast(mg.input_variable((2,)), None)


def test_shape_ops_refuse_uninferred_parameters():
    with pytest.raises(mg.ShapeError, match="InferredDimension"):
        mg.reshape(mg.parameter((mg.InferredDimension, 2)), (-1,))
