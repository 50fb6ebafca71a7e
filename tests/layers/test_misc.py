"""Pooling, normalization and parameter-free layers; Sequential; scopes, names, errors."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L

from gradcheck import check_gradients, variable
from helpers import normal


@pytest.mark.parametrize("layer,kind", [(L.MaxPooling, "max"), (L.AveragePooling, "average")])
def test_pooling_layers_match_the_op(layer, kind):
    f = layer((3, 3), strides=2, pad=True, name="pool")
    x = variable((2, 5, 6))
    h = f(x)
    assert h.shape == (2, 3, 3) and h.name == "pool" and f.parameters == []
    data = normal((2, 2, 5, 6))
    np.testing.assert_allclose(h.eval({x: data}), mg.pooling(x, kind, (3, 3), 2, True).eval({x: data}))
    with pytest.raises(ValueError, match="strides"):
        layer((3, 3), strides=(1, 2, 3))
    with pytest.raises(ValueError, match="pad"):
        layer((3, 3), pad=[True])


def test_batch_normalization_spatial_train_and_eval():
    bn = L.BatchNormalization(map_rank=1, momentum=0.5, init_scale=2.0)
    x = variable((3, 4, 4))
    h = bn(x)
    assert bn.scale.shape == bn.bias.shape == bn.running_mean.shape == bn.running_var.shape == (3,)
    assert set(h.parameters) == {bn.scale, bn.bias}
    data = normal((5, 3, 4, 4)) * 2 + 3
    train = h.eval({x: data}, training=True)
    np.testing.assert_allclose(train.mean((0, 2, 3)), 0, atol=1e-9)
    np.testing.assert_allclose(train.std((0, 2, 3)), 2, rtol=1e-4)
    np.testing.assert_allclose(bn.running_mean.value, 0.5 * data.mean((0, 2, 3)))
    evaluated = h.eval({x: data})
    stats = (bn.running_mean.value.reshape(3, 1, 1), bn.running_var.value.reshape(3, 1, 1))
    np.testing.assert_allclose(evaluated, 2 * (data - stats[0]) / np.sqrt(stats[1] + 1e-5), rtol=1e-10)


def test_batch_normalization_per_element_and_gradients():
    bn = L.BatchNormalization(momentum=0.0)
    x = variable((2, 3))
    h = bn(x)
    assert bn.scale.shape == (2, 3)
    data = normal((4, 2, 3), 1)
    check_gradients(h, {x: data}, training=True)
    check_gradients(h, {x: data})


def test_batch_normalization_arguments_and_lazy_attributes():
    bn = L.BatchNormalization(map_rank=1)
    with pytest.raises(AttributeError, match="running_mean does not exist yet"):
        getattr(bn, "running_mean")  # noqa: B009 (the attribute access is the test)
    with pytest.raises(ValueError, match="map_rank"):
        L.BatchNormalization(map_rank=2)
    with pytest.raises(ValueError, match="momentum"):
        L.BatchNormalization(momentum=2)
    with pytest.raises(ValueError, match="statistics shape"):
        L.BatchNormalization()(mg.input_variable((3, "H")))
    assert L.BatchNormalization(map_rank=1)(mg.input_variable((3, "H"))).shape[0] == 3


def test_layer_normalization():
    ln = L.LayerNormalization(initial_scale=1.5, initial_bias=0.5)
    x = variable((3, 4))
    h = ln(x)
    assert ln.scale.shape == () and ln.bias.shape == ()
    data = normal((2, 3, 4), 2)
    mean, var = data.mean((1, 2), keepdims=True), data.var((1, 2), keepdims=True)
    np.testing.assert_allclose(h.eval({x: data}), 1.5 * (data - mean) / np.sqrt(var + 1e-5) + 0.5, rtol=1e-10)
    check_gradients(h, {x: data})


def test_dropout_layer():
    x = variable(1000)
    d = L.Dropout(0.25)
    h = d(x)
    ones = np.ones((1, 1000))
    np.testing.assert_array_equal(h.eval({x: ones}), ones)
    kept = h.eval({x: ones}, training=True, seed=0) != 0
    assert 0.65 < kept.mean() < 0.85
    assert L.Dropout(keep_prob=0.9).dropout_rate == pytest.approx(0.1)
    for kwargs in ({}, {"dropout_rate": 0.1, "keep_prob": 0.9}, {"dropout_rate": 1.5}, {"keep_prob": 0}):
        with pytest.raises(ValueError):
            L.Dropout(**kwargs)


def test_activation_reshape_flatten_identity():
    x = variable((2, 3, 4))
    data = normal((2, 2, 3, 4), 3)
    np.testing.assert_allclose(L.Activation("tanh")(x).eval({x: data}), np.tanh(data))
    assert L.Reshape((6, 4))(x).shape == (6, 4)
    assert L.Flatten()(x).shape == (24,)
    assert [str(d) for d in L.Flatten()(mg.input_variable((3, "H"))).shape] == ["3*H"]
    assert L.Identity()(x) is x
    with pytest.raises(ValueError, match="unknown activation"):
        L.Activation("gelu")


def test_sequential_flattens_lists_allows_functions_and_names_its_output():
    net = L.Sequential([[L.Dense(8, name="a"), mg.relu], L.Dense(3, name="b")], name="net")
    x = variable(4)
    y = net(x)
    assert len(net.layers) == 3 and y.name == "b"  # the last layer's name stays on its node
    first, second = net.layers[0], net.layers[2]
    assert len(net.parameters) == 4 and set(net.parameters) == {first.W, first.b, second.W, second.b}
    data = normal((2, 4), 4)
    expected = np.maximum(data @ first.W.value + first.b.value, 0) @ second.W.value + second.b.value
    np.testing.assert_allclose(y.eval({x: data}), expected, rtol=1e-12)
    assert L.Sequential([L.Dense(2), L.Identity()], name="s")(x).name == "s"
    with pytest.raises(TypeError, match="not a layer"):
        L.Sequential([3])


def test_nested_scopes_and_error_paths():
    up = L.ConvolutionTranspose((3, 3), 1, output_shape=(3, 3), name="up2")
    net = L.Sequential([L.Dense((4, 2, 2), name="fc"), up], name="decoder")
    with pytest.raises(mg.ShapeError, match=r"^ConvolutionTranspose layer 'decoder/up2': ") as info:
        net(mg.input_variable(5))
    assert info.value.layer is up
    assert " #" not in str(info.value).splitlines()[0]  # no op-node id: the layer path says where
    y = L.Sequential([L.Dense((4, 2, 2), name="fc")], name="decoder")(mg.input_variable(5))
    times = next(n for n in y.topological_order() if n.op_name == "Times")
    assert ([s.name for s in times.scope] == ["decoder", "fc"]
            and [s.kind for s in times.scope] == ["Sequential", "Dense"])


def test_calling_a_layer_on_a_non_node():
    with pytest.raises(TypeError, match="call the layer on a node"):
        L.Dense(3)(np.ones(3))


def test_repr_shows_explicit_arguments():
    assert repr(L.Dense(3, activation="relu")) == "Dense(shape=3, activation='relu')"


def test_parameters_created_on_the_first_call_sit_in_that_calls_scope():
    d = L.Dense(3, name="d")
    y = d(mg.input_variable((2, 2)))
    times = next(n for n in y.topological_order() if n.op_name == "Times")
    assert d.W.scope == times.scope and len(d.W.scope) == 1
    assert len(d.b.scope) == 1 and d.b.scope[0].owner is d  # created by the constructor, in its own scope
