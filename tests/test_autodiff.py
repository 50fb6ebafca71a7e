"""Reverse-mode autodiff: eval/grad/forward/backward API, fan-out, pruning of branches, memory freeing."""
import numpy as np
import pytest

import minigraph as mg
from minigraph.graph import Function, Inferred, Op

from gradcheck import check_gradients, param, variable

RNG = np.random.default_rng(0)


class _Tripwire(Op):
    """Identity whose vjp must never run (to prove that backward skips branches)."""

    name = "TestTripwire"

    def infer(self, in_shapes, in_dtypes, attrs, label):
        return Inferred(tuple(in_shapes[0]))

    def forward(self, step, xs, ctx):
        return xs[0], None

    def vjp(self, step, g, xs, y, residual, needs):
        raise AssertionError("vjp of a branch that needs no gradient was called")


def test_eval_returns_batch_first_values():
    x = mg.input_variable((2, 3), name="x")
    data = RNG.standard_normal((4, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(mg.square(x).eval({x: data}), data ** 2)
    np.testing.assert_allclose(mg.square(x).eval({"x": data}), data ** 2)


def test_grad_return_types():
    x = variable((3,), "x")
    w = param(np.ones(3), "w")
    y = x * w
    feed = {x: np.arange(6.0).reshape(2, 3)}
    single = y.grad(feed, wrt=x)
    assert isinstance(single, np.ndarray) and single.shape == (2, 3)
    both = y.grad(feed, wrt=[x, w])
    assert set(both) == {x, w}
    np.testing.assert_allclose(both[w], feed[x].sum(axis=0))  # parameter gradients are summed over the batch
    assert set(y.grad(feed)) == {w}  # default: every parameter


def test_grad_root_seeds_the_output_gradient():
    x = variable((2,), "x")
    y = 3.0 * x
    seed = np.array([[1.0, -2.0]])
    np.testing.assert_allclose(y.grad({x: np.ones((1, 2))}, wrt=x, grad_root=seed), 3.0 * seed)
    with pytest.raises(mg.ShapeError, match=r"root gradient for .* has shape \(2,\); expected \(1, 2\)"):
        y.grad({x: np.ones((1, 2))}, wrt=x, grad_root=np.ones(2))


def test_fan_out_gradients_accumulate():
    x = variable((3,), "x")
    y = x * x + x + mg.exp(x) * x
    data = RNG.standard_normal((2, 3))
    np.testing.assert_allclose(y.grad({x: data}, wrt=x), 2 * data + 1 + np.exp(data) * (1 + data), rtol=1e-12)
    check_gradients(y, {x: data})


def test_gradient_with_respect_to_intermediate_and_constant_nodes():
    x = variable((2,), "x")
    c = mg.constant(np.array([2.0, 3.0]), name="c")
    h = x * c
    y = mg.square(h)
    data = np.array([[1.0, 1.0], [2.0, 0.5]])
    g = y.grad({x: data}, wrt=[h, c])
    np.testing.assert_allclose(g[h], 2 * data * [2.0, 3.0])
    np.testing.assert_allclose(g[c], (2 * (data * [2.0, 3.0]) * data).sum(axis=0))


def test_branches_that_need_no_gradient_are_skipped():
    x = variable((2,), "x")
    w = param(np.ones(2), "w")
    frozen = Function(_Tripwire(), [x])
    y = frozen * w
    feed = {x: np.ones((1, 2))}
    np.testing.assert_allclose(y.grad(feed, wrt=w), [1.0, 1.0])
    with pytest.raises(AssertionError, match="must never run|needs no gradient"):
        y.grad(feed, wrt=x)


def test_non_differentiable_ops_stop_gradients():
    o, t = variable((3,), "o"), variable((3,), "t")
    metric = mg.classification_error(o, t) + mg.reduce_sum(o)
    g = metric.grad({o: np.eye(3)[:2], t: np.eye(3)[:2]}, wrt=o)
    np.testing.assert_array_equal(g, np.ones((2, 3)))


def test_forward_keeps_requested_values_and_backward_uses_the_state():
    x = variable((2, 3), "x")
    w = param(RNG.standard_normal((3, 4)), "w")
    h = mg.times(x, w, name="h")
    y = mg.reduce_sum(mg.tanh(mg.reshape(mg.transpose(h, (1, 0)), (-1,))))
    data = RNG.standard_normal((5, 2, 3))
    state = y.forward({x: data}, keep=[h])
    np.testing.assert_allclose(state[h], data @ w.value)
    grads = y.backward(state, wrt=[x, w])
    expected = y.grad({x: data}, wrt=[x, w])
    for n in (x, w):
        np.testing.assert_allclose(grads[n], expected[n])
    again = y.backward(state, root_gradient=2 * np.ones((5,)), wrt=[w])
    np.testing.assert_allclose(again[w], 2 * expected[w])
    check_gradients(y, {x: data})


def test_evaluation_frees_intermediate_values():
    x = variable((2,), "x")
    h1 = mg.exp(x)
    h2 = mg.tanh(h1)
    y = mg.reshape(h2 * 2.0, (2, 1))
    state = y.forward({x: np.ones((1, 2))}, keep=[h1], for_backward=False)
    assert set(state.values) == {y, h1}
    with pytest.raises(mg.GraphError, match="needs a forward state made with for_backward=True"):
        y.backward(state)
    full = y.forward({x: np.ones((1, 2))})
    assert h2 in full.values  # tanh's vjp reads its output: kept for backward


def test_wrt_must_belong_to_the_graph_and_kept_strangers_need_their_feeds():
    x = variable((2,), "x")
    stranger = variable((2,), "stranger")
    y = mg.relu(x)
    with pytest.raises(mg.GraphError, match="needs a value for Input 'stranger'"):
        y.forward({x: np.ones((1, 2))}, keep=[stranger])
    with pytest.raises(mg.GraphError, match="wrt: Input 'stranger' is not a node of the graph"):
        y.grad({x: np.ones((1, 2))}, wrt=[stranger])
    with pytest.raises(mg.GraphError, match="keep: 3 is not a node"):
        y.forward({x: np.ones((1, 2))}, keep=[3])


def test_kept_nodes_outside_the_root_graph_run_in_the_same_pass():
    x, t = variable((3,), "x"), variable((3,), "t")
    w = param(np.array([1.0, -2.0, 3.0]), "w")
    y = x * w
    loss = mg.reduce_sum(mg.square(y - t))
    metric = mg.reduce_mean(mg.abs(y - t))           # shares y, not an ancestor of loss
    feed = {x: np.ones((2, 3)), t: np.zeros((2, 3))}
    calls = []
    original = type(y.op).forward
    type(y.op).forward = lambda self, step, xs, ctx: calls.append(step.label) or original(self, step, xs, ctx)
    try:
        state = loss.forward(feed, keep=[metric])
    finally:
        type(y.op).forward = original
    assert calls.count(y.label) == 1                  # y computed once for both outputs
    np.testing.assert_allclose(state[metric], [2.0, 2.0])
    np.testing.assert_allclose(state[loss], [14.0, 14.0])
    grads = loss.backward(state, wrt=[w])             # backward follows the loss only
    np.testing.assert_allclose(grads[w], loss.grad(feed, wrt=[w])[w])


def test_programs_are_cached_per_feed_signature():
    x = mg.input_variable(("H",), name="x")
    y = mg.relu(x)
    y.eval({x: np.ones((1, 3), np.float32)})
    y.eval({x: np.ones((1, 3), np.float32)})
    assert len(y.program_cache) == 1
    y.eval({x: np.ones((2, 3), np.float32)})
    assert len(y.program_cache) == 2


def test_training_flag_and_seed_reach_random_ops():
    x = mg.input_variable((200,), name="x")
    y = mg.dropout(x, 0.5)
    data = np.ones((1, 200), np.float32)
    assert np.array_equal(y.eval({x: data}), data)
    mg.set_seed(7)
    first = y.eval({x: data}, training=True)
    mg.set_seed(7)
    np.testing.assert_array_equal(first, y.eval({x: data}, training=True))
    assert 0 < np.count_nonzero(first) < 200


def test_returned_gradients_are_writeable_arrays_of_their_own():
    x = mg.input_variable((3,), name="x")
    g = mg.reduce_sum(x).grad({x: np.ones((2, 3), np.float32)}, wrt=x)
    g += 1                                       # broadcast views would be read-only
    assert g.dtype == np.float32 and np.all(g == 2)


def test_a_vjp_that_changes_the_dtype_is_reported_as_an_op_bug():
    class Leaky(Op):
        name = "LeakyDtype"

        def infer(self, in_shapes, in_dtypes, attrs, label):
            return Inferred(tuple(in_shapes[0]))

        def forward(self, step, xs, ctx):
            return xs[0] * 2, None

        def vjp(self, step, g, xs, y, residual, needs):
            return [(g * 2).astype(np.float64)]

    x = mg.input_variable((2,), name="x")
    y = Function(Leaky(), [x])
    with pytest.raises(mg.GraphError, match="float64 gradient .* a float32 value .*op bug"):
        y.grad({x: np.ones((1, 2), np.float32)}, wrt=x)


def test_the_feed_must_be_a_mapping():
    x = mg.input_variable((2,), name="x")
    with pytest.raises(mg.GraphError, match="must be a dict of input -> array"):
        mg.relu(x).eval([np.ones((1, 2))])
