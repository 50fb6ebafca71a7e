"""times: values against numpy.tensordot, gradients (shared and per-sample weights), inference, errors."""
import numpy as np
import pytest

import minigraph as mg

from gradcheck import check_gradients, param, variable


@pytest.mark.parametrize("ls,rs,out_rank,expected", [
    ((4, 6, 3), (3, 5), 1, (4, 6, 5)),
    ((16,), (16, 2, 3, 3), 3, (2, 3, 3)),
    ((2, 3, 4), (3, 4, 5), 1, (2, 5)),
    ((3,), (3,), 0, ()),
    ((2,), (4,), 1, (2, 4)),  # reduction rank 0: outer product
])
def test_times_matches_tensordot_and_gradients(ls, rs, out_rank, expected):
    rng = np.random.default_rng(0)
    x = variable(ls, "x")
    w = param(rng.standard_normal(rs), "w")
    y = mg.times(x, w, output_rank=out_rank)
    assert y.shape == expected
    data = rng.standard_normal((3, *ls))
    k = len(rs) - out_rank
    ref = np.stack([np.tensordot(d, w.value, axes=k) for d in data])
    np.testing.assert_allclose(y.eval({x: data}), ref, rtol=1e-12)
    check_gradients(y, {x: data})


@pytest.mark.parametrize("left_batched,right_batched", [(True, True), (False, True), (True, False)])
def test_times_with_batched_right_operand(left_batched, right_batched):
    rng = np.random.default_rng(1)
    a = variable((2, 3), "a") if left_batched else param(rng.standard_normal((2, 3)), "a")
    b = variable((3, 4), "b") if right_batched else param(rng.standard_normal((3, 4)), "b")
    feed = {}
    if left_batched:
        feed[a] = rng.standard_normal((5, 2, 3))
    if right_batched:
        feed[b] = rng.standard_normal((5, 3, 4))
    y = a @ b
    av = feed[a] if left_batched else a.value[None]
    bv = feed[b] if right_batched else b.value[None]
    np.testing.assert_allclose(y.eval(feed), np.matmul(av, bv), rtol=1e-12)
    check_gradients(y, feed, wrt=[a, b])


def test_times_fan_out_of_weight():
    rng = np.random.default_rng(2)
    x = variable((3,), "x")
    w = param(rng.standard_normal((3, 3)), "w")
    y = mg.times(mg.times(x, w), w) + mg.times(x, w)
    check_gradients(y, {x: rng.standard_normal((4, 3))}, elementwise=True)


def test_times_float32_stays_float32():
    x = mg.input_variable((3,))
    w = mg.parameter((3, 2), init=1.0)
    out = (x @ w).eval({x: np.ones((2, 3), np.float32)})
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.full((2, 2), 3.0, np.float32))


def test_times_symbolic_leading_axes():
    x = mg.input_variable(("H", "W", 3), name="x")
    y = mg.times(x, mg.parameter((3, 5)))
    assert [str(d) for d in y.shape] == ["H", "W", "5"]
    assert y.eval({x: np.ones((2, 4, 6, 3), np.float32)}).shape == (2, 4, 6, 5)


def test_times_infers_parameter_dims():
    p = mg.parameter((mg.InferredDimension, 4), init=mg.initializers.glorot_uniform(seed=0))
    assert not p.is_initialized
    z = mg.times(mg.input_variable((7,)), p)
    assert p.shape == (7, 4) and z.shape == (4,) and p.value.shape == (7, 4)
    left = mg.parameter((2, mg.InferredDimension))
    assert mg.times(left, mg.input_variable((5, 3))).shape == (2, 3) and left.shape == (2, 5)


def test_times_cannot_infer_from_symbolic_dims():
    p = mg.parameter((mg.InferredDimension, 4))
    with pytest.raises(mg.ShapeError, match="must be concrete"):
        mg.times(mg.input_variable(("H",)), p)


def test_times_cannot_infer_output_axes():
    with pytest.raises(mg.ShapeError, match="keeps an InferredDimension"):
        mg.times(mg.input_variable((3,)), mg.parameter((3, mg.InferredDimension)))


def test_times_mismatch_names_shapes():
    with pytest.raises(mg.ShapeError, match=r"Times 'bad': .*\(4, 3\) by \(2, 5\).*size 3 in left but 2 in right"):
        mg.times(mg.input_variable((4, 3)), mg.parameter((2, 5)), name="bad")


def test_times_rank_too_small():
    with pytest.raises(mg.ShapeError, match="0 <= k <= rank"):
        mg.times(mg.input_variable((3,)), mg.parameter((3, 4, 5)), output_rank=0)


def test_times_symbolic_against_int_is_an_error():
    with pytest.raises(mg.ShapeError, match="size H in left but 3"):
        mg.times(mg.input_variable(("H",)), mg.parameter((3, 2)))


@pytest.mark.parametrize("kwargs,error,match", [
    ({"output_rank": -1}, ValueError, "output_rank must be an int >= 0"),
    ({"output_rank": 1.0}, TypeError, "output_rank must be an int >= 0"),
    ({"infer_input_rank_to_map": 0}, ValueError, "infer_input_rank_to_map"),
])
def test_times_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        mg.times(mg.input_variable((3,)), mg.parameter((3, 2)), **kwargs)
