"""dropout: identity in evaluation, inverted-dropout statistics and masked gradients in training."""
import numpy as np
import pytest

import minigraph as mg

from gradcheck import check_gradients, param, variable


def test_dropout_is_identity_in_evaluation():
    x = mg.input_variable((4, 5))
    data = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    y = mg.dropout(x, 0.5)
    np.testing.assert_array_equal(y.eval({x: data}), data)
    np.testing.assert_array_equal(y.grad({x: data}, wrt=x), np.ones_like(data))


def test_dropout_training_scales_survivors_and_keeps_the_mean():
    x = mg.input_variable((100, 100))
    data = np.ones((2, 100, 100), np.float32)
    out = mg.dropout(x, 0.3).eval({x: data}, training=True, seed=1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.7], rtol=1e-6)
    assert abs((out == 0).mean() - 0.3) < 0.02
    assert abs(out.mean() - 1.0) < 0.03


def test_dropout_masks_depend_on_the_seed():
    x = mg.input_variable((50,))
    y = mg.dropout(x)
    data = np.ones((1, 50), np.float32)
    a = y.eval({x: data}, training=True, seed=3)
    np.testing.assert_array_equal(a, y.eval({x: data}, training=True, seed=3))
    assert not np.array_equal(a, y.eval({x: data}, training=True, seed=4))


def test_dropout_gradient_uses_the_same_mask():
    x = variable((6, 7), "x")
    data = np.random.default_rng(2).standard_normal((3, 6, 7))
    y = mg.dropout(x * x, 0.4)
    state = y.forward({x: data}, training=True, seed=5)
    g = y.backward(state, wrt=[x])[x]
    kept = state.values[y] != 0
    np.testing.assert_allclose(g, np.where(kept, 2 * data / 0.6, 0.0))
    grads = check_gradients(y, {x: data}, run_seed=5, training=True)
    assert np.count_nonzero(grads[x]) < data.size


def test_zero_rate_is_identity_when_training():
    x = mg.input_variable((3,))
    data = np.arange(3, dtype=np.float32)[None]
    np.testing.assert_array_equal(mg.dropout(x, 0.0).eval({x: data}, training=True), data)


@pytest.mark.parametrize("rate,exc,match", [(1.0, ValueError, r"must be in \[0, 1\)"), (-0.1, ValueError, "must be in"),
                                            ("0.5", TypeError, "must be a number")])
def test_dropout_rate_errors(rate, exc, match):
    with pytest.raises(exc, match=match):
        mg.dropout(mg.input_variable((2,)), rate)


def test_dropout_of_a_parameter_value_shares_one_mask_across_the_batch():
    x, w = variable((40,), "x"), param(np.linspace(0.5, 1.5, 40), "w")
    y = x * mg.dropout(w * 2.0, 0.5)  # dropout sees a parameter-only value: one tensor, one mask
    data = np.random.default_rng(3).uniform(1.0, 2.0, (5, 40))
    out = y.eval({x: data}, training=True, seed=7)
    dropped = out == 0
    assert 0 < dropped[0].sum() < 40
    assert np.all(dropped == dropped[0])  # the same entries are dropped for every sample
    check_gradients(y, {x: data}, run_seed=7, training=True)
