"""Aliasing: what eval, forward and grad return is the caller's own array: writing into it never changes
a parameter, a constant or the caller's fed data; Constant.value and initial values are copied."""
from __future__ import annotations

import numpy as np
import pytest

import minigraph as mg

from tally import record


def _graphs():
    """(name, root, feed builder) cases whose result could be a view of a leaf."""
    w = mg.parameter((2, 3), init=np.arange(6.0).reshape(2, 3), dtype=np.float64, name="W")
    c = mg.constant(np.arange(6.0).reshape(2, 3), name="c")
    x = mg.input_variable((2, 3), dtype=np.float64, name="x")
    cases = {
        "W.eval()": (w, False), "reshape(W)": (mg.reshape(w, (6,)), False), "W[0]": (w[0], False),
        "transpose(W)": (mg.transpose(w, (1, 0)), False), "c.eval()": (c, False),
        "reshape(c)": (mg.reshape(c, (3, 2)), False),
        "x.eval()": (x, True), "reshape(x)": (mg.reshape(x, (6,)), True), "x[1]": (x[1], True),
        "transpose(x)": (mg.transpose(x, (1, 0)), True),
        "dropout(x) (evaluation: identity)": (mg.dropout(x, 0.5), True),
        "cast(x, float64)": (mg.cast(x, np.float64), True), "slice(x)": (mg.slice(x, 0, 0, 1), True),
    }
    return w, c, x, cases


@pytest.mark.parametrize("how", ["eval", "forward", "forward_keep"])
def test_results_are_never_views_of_leaves(how):
    w, c, x, cases = _graphs()
    tried = garbage = 0
    for name, (root, fed) in cases.items():
        data = np.arange(12.0).reshape(2, 2, 3)
        before = (w.value.copy(), c.value.copy(), data.copy())
        feed = {x: data} if fed else {}
        if how == "eval":
            out = root.eval(feed)
        elif how == "forward":
            out = root.forward(feed).values[root]
        else:
            loss = mg.reduce_sum(w) + (mg.reduce_sum(x) if fed else 0)
            out = loss.forward(feed if fed else {}, keep=[root]).values[root]
        out[...] = -7.0
        tried += 1
        unchanged = all(np.array_equal(a, b) for a, b in zip(before, (w.value, c.value, data)))
        garbage += not unchanged
        assert unchanged, f"{name} ({how}): writing into the result changed a leaf"
    record("aliasing: results vs leaves", tried, 0, garbage=garbage)


def test_gradients_never_alias_the_root_gradient_or_fed_arrays():
    x = mg.input_variable((3,), dtype=np.float64, name="x")
    data, seed = np.ones((2, 3)), np.full((2, 3), 2.0)
    cases = {"x w.r.t. x, grad_root": lambda: x.grad({x: data}, wrt=x, grad_root=seed),
             "reshape(x) w.r.t. x": lambda: mg.reshape(x, (3, 1)).grad({x: data}, wrt=x,
                                                                        grad_root=seed.reshape(2, 3, 1)),
             "x w.r.t. x": lambda: x.grad({x: data}, wrt=x)}
    for name, run in cases.items():
        g = run()
        g[...] = 99.0
        assert np.array_equal(data, np.ones((2, 3))) and np.array_equal(seed, np.full((2, 3), 2.0)), name
    record("aliasing: results vs leaves", len(cases), 0)


def test_constant_values_and_initial_values_are_copies():
    source = np.ones(3)
    c = mg.constant(source)
    source[0] = 5.0
    assert c.value.tolist() == [1.0, 1.0, 1.0]
    c.value = source
    source[1] = 9.0
    assert c.value.tolist() == [5.0, 1.0, 1.0]
    with pytest.raises(mg.ShapeError, match=r"cannot assign a value of shape \(4,\); expected \(3,\)"):
        c.value = np.ones(4)
    init = np.ones((2, 3))
    p = mg.parameter((2, 3), init=init)
    lazy = mg.parameter((mg.InferredDimension, 3), init=init)
    init[...] = 4.0
    mg.times(mg.input_variable((2,)), lazy)
    assert p.value.sum() == 6.0 and lazy.value.sum() == 6.0
    record("aliasing: constants and initial values", 4, 1)


def test_batch_normalization_updates_its_own_statistics_not_the_callers_array():
    x = mg.input_variable((2, 4, 4), dtype=np.float64)
    y = mg.layers.BatchNormalization()(x)
    mean = next(c for c in y.constants if c.name == "running_mean")
    callers = np.zeros(mean.shape)
    mean.value = callers
    y.eval({x: np.random.default_rng(0).standard_normal((3, 2, 4, 4)) + 5.0}, training=True)
    assert np.array_equal(callers, np.zeros(mean.shape)) and not np.allclose(mean.value, 0)
    record("aliasing: constants and initial values", 1, 0)
