"""ExponentialMovingAverage: the shadow formula, swapping the averages in and out, and its arguments."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L

from gradcheck import param, variable


def _params():
    return [param(np.array([1.0, 2.0]), "a"), param(np.array([[3.0]]), "b")]


def test_update_follows_the_formula():
    a, b = _params()
    ema = mg.ExponentialMovingAverage([a, b], decay=0.9)
    expected = [a.value.copy(), b.value.copy()]
    for step in range(1, 4):
        a.value = a.value + step
        b.value = b.value * 2
        ema.update()
        expected = [0.9 * e + 0.1 * p.value for e, p in zip(expected, (a, b))]
    for shadow, e in zip(ema.shadow, expected):
        np.testing.assert_allclose(shadow, e, rtol=1e-15)
    assert ema.num_updates == 3


def test_average_parameters_swaps_in_and_restores_even_on_errors():
    a, b = _params()
    ema = mg.ExponentialMovingAverage([a, b], decay=0.5)
    a.value = np.array([3.0, 4.0])
    ema.update()  # shadow of a: (1, 2) / 2 + (3, 4) / 2 = (2, 3)
    array = a.value
    with ema.average_parameters():
        np.testing.assert_array_equal(a.value, [2.0, 3.0])
        assert a.value is array  # written in place: a learner's reference stays valid
    np.testing.assert_array_equal(a.value, [3.0, 4.0])
    with pytest.raises(RuntimeError), ema.average_parameters():
        raise RuntimeError("inside")
    np.testing.assert_array_equal(a.value, [3.0, 4.0])
    ema.copy_to()
    np.testing.assert_array_equal(a.value, [2.0, 3.0])
    assert a.value is array


def test_averages_a_trained_network_and_keeps_dtypes():
    x = mg.input_variable(3, name="x")
    net = L.Dense(2, name="d")(x)
    loss = mg.reduce_sum(mg.square(net))
    trainer = mg.Trainer(net, loss, mg.learners.sgd(net.parameters, 0.1))
    ema = mg.ExponentialMovingAverage(net, decay=0.0)  # 0: the shadow is the last value
    data = np.ones((4, 3), np.float32)
    for _ in range(3):
        trainer.train_minibatch({x: data})
        ema.update()
    for shadow, p in zip(ema.shadow, ema.parameters):
        assert shadow.dtype == p.value.dtype == np.float32
        np.testing.assert_array_equal(shadow, p.value)
    assert len(ema.parameters) == len(net.parameters)


@pytest.mark.parametrize("args, error, message", [
    (([],), ValueError, "at least one parameter"),
    ((3,), TypeError, "a node, a layer or a list of Parameters, got int"),
    (([variable(2, "v")],), TypeError, "averages Parameters; got Input 'v'"),
    ((_params(), 1.5), ValueError, "decay"),
    ((_params(), "0.9"), TypeError, "decay"),
])
def test_bad_arguments(args, error, message):
    with pytest.raises(error, match=message):
        mg.ExponentialMovingAverage(*args)


def test_parameters_of_two_dtypes_keep_their_own_averages():
    """Shadows are grouped by dtype (one flat array each); every shadow keeps its parameter's
    shape and dtype and follows its own values."""
    a = mg.parameter(init=np.array([[1.0, 2.0]], np.float32), name="a")
    b = mg.parameter(init=np.array([10.0]), name="b")  # float64
    c = mg.parameter(init=np.array([3.0, 4.0, 5.0], np.float32), name="c")
    ema = mg.ExponentialMovingAverage([a, b, c], decay=0.75)
    a.value, b.value, c.value = a.value * 3, b.value + 4, c.value - 1
    ema.update()
    expected = {"a": [[1.5, 3.0]], "b": [11.0], "c": [2.75, 3.75, 4.75]}
    for shadow, p in zip(ema.shadow, (a, b, c)):
        assert shadow.shape == p.value.shape and shadow.dtype == p.value.dtype
        np.testing.assert_allclose(shadow, expected[p.name], rtol=1e-7)


def test_state_dict_round_trip_and_all_or_nothing_loading():
    a, b = _params()
    ema = mg.ExponentialMovingAverage([a, b], decay=0.5)
    a.value = np.array([3.0, 4.0])
    ema.update()
    state = ema.state_dict()
    assert state["num_updates"] == 1 and state["decay"] == 0.5
    state["shadow"][0][0] = 99.0  # a copy: the averages are not touched
    np.testing.assert_array_equal(ema.shadow[0], [2.0, 3.0])
    other = mg.ExponentialMovingAverage([a, b], decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.5 and other.num_updates == 1
    for x, y in zip(other.shadow, ema.shadow):
        np.testing.assert_array_equal(x, y)
    bad = ema.state_dict()
    bad["shadow"] = [np.zeros(2), np.zeros((2, 2))]
    with pytest.raises(mg.ShapeError, match=r"shadow of Parameter 'b' has shape \(2, 2\)"):
        other.load_state_dict(bad)
    np.testing.assert_array_equal(other.shadow[0], [2.0, 3.0])  # nothing was written
    with pytest.raises(ValueError, match="keys decay, num_updates, shadow"):
        other.load_state_dict({"shadow": []})
    with pytest.raises(TypeError, match="shadow of Parameter 'a' must hold numbers"):
        other.load_state_dict({**ema.state_dict(), "shadow": [np.array(["x", "y"]), np.zeros((1, 1))]})
    with pytest.raises(ValueError, match="1 shadows for 2 parameters"):
        other.load_state_dict({**ema.state_dict(), "shadow": [np.zeros(2)]})


def _bn_net():
    """Dense -> per-channel BN -> relu -> per-element BN (biased running variance), float64."""
    z = mg.input_variable(3, dtype=np.float64, name="z")
    h = L.Dense((2, 2, 2), name="d")(z)
    bns = [L.BatchNormalization(map_rank=1, momentum=0.1),
           L.BatchNormalization(momentum=0.1, unbiased_running_variance=False)]
    return h, bns[1](mg.relu(bns[0](h))), bns


def test_update_bn_averages_the_minibatch_statistics_and_touches_nothing_else():
    rng = np.random.default_rng(0)
    h, y, (spatial, element) = _bn_net()
    feeds = [{"z": rng.standard_normal((n, 3))} for n in (5, 7, 4)]
    params = [p.value.copy() for p in y.parameters]
    assert mg.update_bn(y, feeds) == 2
    means, variances, e_means, e_vars = [], [], [], []
    for feed in feeds:
        x = h.eval(feed)  # the first normalization's input (N, 2, 2, 2)
        means.append(x.mean(axis=(0, 2, 3)))
        variances.append(x.var(axis=(0, 2, 3), ddof=1))  # unbiased: 4 * N values per channel
        xn = (x - means[-1][:, None, None]) / np.sqrt(x.var(axis=(0, 2, 3))[:, None, None] + 1e-5)
        r = np.maximum(xn * spatial.scale.value[:, None, None] + spatial.bias.value[:, None, None], 0)
        e_means.append(r.mean(axis=0))
        e_vars.append(r.var(axis=0))  # this node keeps the biased variance
    np.testing.assert_allclose(spatial.running_mean.value, np.mean(means, axis=0), rtol=1e-12)
    np.testing.assert_allclose(spatial.running_var.value, np.mean(variances, axis=0), rtol=1e-12)
    np.testing.assert_allclose(element.running_mean.value, np.mean(e_means, axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(element.running_var.value, np.mean(e_vars, axis=0), rtol=1e-12, atol=1e-15)
    for before, p in zip(params, y.parameters):
        np.testing.assert_array_equal(before, p.value)
    # one feed dict is one minibatch: its statistics exactly
    assert mg.update_bn(y, feeds[1]) == 2
    np.testing.assert_allclose(spatial.running_mean.value, means[1], rtol=1e-12)


def test_update_bn_writes_nothing_when_a_feed_fails():
    _, y, (spatial, element) = _bn_net()
    before = [bn.running_mean.value.copy() for bn in (spatial, element)]
    good = {"z": np.ones((4, 3))}
    with pytest.raises(Exception, match="z"):
        mg.update_bn(y, [good, {"z": np.ones((4, 5))}])
    for b, bn in zip(before, (spatial, element)):
        np.testing.assert_array_equal(b, bn.running_mean.value)


def test_update_bn_without_batch_normalization_and_bad_arguments():
    z = mg.input_variable(3, name="z")
    y = L.Dense(2)(z)
    assert mg.update_bn(y, [{"z": np.ones((2, 3), np.float32)}]) == 0
    with pytest.raises(ValueError, match="feeds is empty"):
        mg.update_bn(y, [])
    with pytest.raises(TypeError, match="model must be a node"):
        mg.update_bn("y", [])
    with pytest.raises(TypeError, match="feed 1 must be a dict"):
        mg.update_bn(y, [{"z": np.ones((2, 3), np.float32)}, 3])
    with pytest.raises(TypeError, match="iterable of feed dicts"):
        mg.update_bn(y, 3)


def test_update_bn_counts_every_call_of_a_shared_layer():
    """A layer run twice (shared weights) averages both calls' statistics, each call one minibatch."""
    rng = np.random.default_rng(1)
    x = mg.input_variable(4, dtype=np.float64, name="x")
    bn = L.BatchNormalization(momentum=0.1)
    inner = bn(x)
    y = bn(inner * 3.0 + 7.0)
    feeds = [{"x": rng.standard_normal((n, 4)) * 3 + 2} for n in (6, 5)]
    firsts = [f["x"] for f in feeds]
    seconds = [inner.eval(f, training=True) * 3.0 + 7.0 for f in feeds]  # (moves the running values: rewritten below)
    assert mg.update_bn(y, feeds) == 1
    np.testing.assert_allclose(bn.running_mean.value, np.mean([a.mean(0) for a in firsts + seconds], axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.value, np.mean([a.var(0, ddof=1) for a in firsts + seconds], axis=0),
                               rtol=1e-12)
