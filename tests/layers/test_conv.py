"""ConvolutionTranspose (every seed argument, each in its own test) and Convolution layers: shapes,
values against the op-level functions and a direct loop oracle, gradients, errors."""
import math

import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L

import oracles
from gradcheck import check_gradients, variable
from helpers import normal


def shp(node):
    return tuple(int(d) for d in node.shape)


def transpose_oracle(x, W, strides, pads, out_spatial):
    """Scatter loop (tests/oracles.py) with ``pad=True``'s centred lower pads; x (N, C, *n), W (C, O, *K)."""
    lows = [oracles.centred_lower_pad(n, k, s, big) if pad else 0
            for n, k, s, big, pad in zip(x.shape[2:], W.shape[2:], strides, out_spatial, pads)]
    return oracles.scatter(x, W, out_spatial, strides=strides, lower=lows)


def conv_oracle(x, W, strides, pads):
    """Gather loop (tests/oracles.py); x (N, C, *n), W (O, C, *K); out ``ceil(n/s)`` for ``pad=True``."""
    outs, lows = [], []
    for n, k, s, pad in zip(x.shape[2:], W.shape[2:], strides, pads):
        out = math.ceil(n / s) if pad else (n - k) // s + 1
        outs.append(out)
        lows.append(oracles.centred_lower_pad(out, k, s, n) if pad else 0)
    return oracles.gather(x, W, outs, strides=strides, lower=lows)


# ConvolutionTranspose: the seed's arguments --------------------------------------------------------
def test_cntk_docstring_example():
    f = L.ConvolutionTranspose((3, 4), 128, activation=mg.relu)
    h = f(mg.input_variable((3, 480, 640)))
    assert shp(h) == (128, 482, 643) and shp(f.W) == (3, 128, 3, 4) and shp(f.b) == (128, 1, 1)


@pytest.mark.parametrize("pad,strides,out", [(False, 1, (1, 5, 5)), (False, 2, (1, 7, 7)), (True, 1, (1, 3, 3)),
                                             (True, 2, (1, 5, 5))])
def test_cntk_layers_test_ones_input(pad, strides, out):
    f = L.ConvolutionTranspose((3, 3), num_filters=1, pad=pad, strides=strides, init=mg.initializers.normal(seed=1))
    x = variable((1, 3, 3))
    r = f(x).eval({x: np.ones((1, 1, 3, 3))})
    W = f.W.value
    assert r.shape == (1,) + out
    np.testing.assert_allclose(r, transpose_oracle(np.ones((1, 1, 3, 3)), W, (strides,) * 2, (pad,) * 2, out[1:]))


def test_filter_shape_int_means_1d():
    f = L.ConvolutionTranspose(3, 2)
    assert f.filter_shape == (3,)
    assert shp(f(mg.input_variable((4, 5)))) == (2, 7) and shp(f.W) == (4, 2, 3)


@pytest.mark.parametrize("pad,out", [(False, (4, 5, 9, 15)), (True, (4, 3, 7, 13))])
def test_3d_shapes_from_semantics(pad, out):
    f = L.ConvolutionTranspose((3, 3, 3), 4, strides=(1, 2, 3), pad=pad)
    x = mg.input_variable((2, 3, 4, 5))
    h = f(x)
    assert shp(h) == out and shp(f.W) == (2, 4, 3, 3, 3) and shp(f.b) == (4, 1, 1, 1)
    assert h.eval({x: np.ones((2, 2, 3, 4, 5), np.float32)}).shape == (2,) + out


def test_4d_filter_works():
    f = L.ConvolutionTranspose((2, 2, 2, 2), 1)
    assert shp(f(mg.input_variable((1, 2, 2, 2, 2)))) == (1, 3, 3, 3, 3)


@pytest.mark.parametrize("num_filters", [None, ()])
def test_num_filters_none_or_empty_gives_no_depth_axis(num_filters):
    f = L.ConvolutionTranspose((3, 3), num_filters=num_filters, init_bias=0.25)
    x = variable((2, 4, 4))
    h = f(x)
    assert shp(h) == (6, 6) and shp(f.W) == (2, 3, 3) and shp(f.b) == ()
    data = normal((3, 2, 4, 4))
    expected = transpose_oracle(data, f.W.value[:, None], (1, 1), (False, False), (6, 6))[:, 0] + 0.25
    np.testing.assert_allclose(h.eval({x: data}), expected)
    check_gradients(h, {x: data})


def test_num_filters_int_gives_depth_axis():
    f = L.ConvolutionTranspose((2, 2), num_filters=5)
    assert shp(f(mg.input_variable((3, 4, 4)))) == (5, 5, 5) and shp(f.W) == (3, 5, 2, 2)


@pytest.mark.parametrize("activation,reference", [(mg.relu, lambda v: np.maximum(v, 0)), ("tanh", np.tanh),
                                                  (None, lambda v: v)])
def test_activation_is_applied_last(activation, reference):
    f = L.ConvolutionTranspose((2, 2), 3, activation=activation, init_bias=-0.1)
    x = variable((2, 3, 3))
    data = normal((2, 2, 3, 3), 1)
    out = f(x).eval({x: data})
    plain = transpose_oracle(data, f.W.value, (1, 1), (False, False), (4, 4)) - 0.1
    np.testing.assert_allclose(out, reference(plain), rtol=1e-12)


def test_default_activation_is_identity():
    f = L.ConvolutionTranspose((2, 2), 1, bias=False)
    x = mg.input_variable((1, 2, 2))
    assert f(x).op_name == "ConvolutionTranspose"


def test_unknown_activation_is_rejected_at_construction():
    with pytest.raises(ValueError, match=r"unknown activation 'sigmoidd'; did you mean 'sigmoid'"):
        L.ConvolutionTranspose((3, 3), 1, activation="sigmoidd")
    with pytest.raises(TypeError, match="activation must be a function"):
        L.ConvolutionTranspose((3, 3), 1, activation=3)


def test_init_scalar():
    f = L.ConvolutionTranspose((2, 3), 4, init=0.5)
    f(mg.input_variable((3, 5, 5)))
    np.testing.assert_array_equal(f.W.value, np.full((3, 4, 2, 3), 0.5, np.float32))


def test_init_array():
    W = normal((3, 4, 2, 2), 2)
    f = L.ConvolutionTranspose((2, 2), 4, init=W)
    assert shp(f.W) == (3, 4, 2, 2)  # the array fixes the input depth at once
    x = variable((3, 3, 3))
    f(x)
    np.testing.assert_array_equal(f.W.value, W)


def test_init_array_of_wrong_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"init array has shape \(3, 5, 2, 2\); expected \(\?, 4, 2, 2\)"):
        L.ConvolutionTranspose((2, 2), 4, init=np.zeros((3, 5, 2, 2)))


def test_init_array_input_depth_must_match_the_input():
    f = L.ConvolutionTranspose((2, 2), 4, init=np.zeros((3, 4, 2, 2)))
    with pytest.raises(mg.ShapeError, match="channel mismatch"):
        f(mg.input_variable((2, 5, 5)))


def test_init_initializer_uses_cntk_transposed_fans():
    f = L.ConvolutionTranspose((3, 3), 2, init=mg.initializers.he_uniform(seed=4))
    f(mg.input_variable((8, 4, 4)))
    limit = math.sqrt(6.0 / (2 * 9))  # fan_in = num_filters * prod(filter_shape), as CNTK
    assert np.abs(f.W.value).max() <= limit and np.abs(f.W.value).max() > 0.8 * limit


def test_init_seed_is_reproducible():
    a, b = (L.ConvolutionTranspose((3, 3), 2, init=mg.initializers.glorot_normal(seed=7)) for _ in range(2))
    for f in (a, b):
        f(mg.input_variable((3, 4, 4)))
    np.testing.assert_array_equal(a.W.value, b.W.value)


def test_pad_bool_and_per_axis():
    x = mg.input_variable((1, 4, 4))
    assert shp(L.ConvolutionTranspose((3, 3), 1, strides=2, pad=True)(x)) == (1, 7, 7)
    assert shp(L.ConvolutionTranspose((3, 3), 1, strides=2, pad=False)(x)) == (1, 9, 9)
    f = L.ConvolutionTranspose((3, 3), 1, strides=2, pad=[True, False])
    xv = variable((1, 4, 4))
    h = f(xv)
    assert shp(h) == (1, 7, 9)
    data = normal((2, 1, 4, 4), 3)
    np.testing.assert_allclose(h.eval({xv: data}), transpose_oracle(data, f.W.value, (2, 2), (True, False), (7, 9)))


def test_strides_int_and_per_axis():
    xv = variable((2, 3, 4))
    f = L.ConvolutionTranspose((3, 2), 2, strides=(1, 3))
    h = f(xv)
    assert shp(h) == (2, 5, 11)
    data = normal((2, 2, 3, 4), 4)
    np.testing.assert_allclose(h.eval({xv: data}), transpose_oracle(data, f.W.value, (1, 3), (False,) * 2, (5, 11)))
    assert shp(L.ConvolutionTranspose((3, 2), 2, strides=2)(mg.input_variable((2, 3, 4)))) == (2, 7, 8)


def test_sharing_true_is_accepted_and_false_is_rejected_naming_it():
    L.ConvolutionTranspose((3, 3), 1, sharing=True)
    L.ConvolutionTranspose((3, 3), 1, sharing=[True, True])
    for sharing in (False, [True, False]):
        with pytest.raises(NotImplementedError, match="sharing="):
            L.ConvolutionTranspose((3, 3), 1, sharing=sharing)


def test_bias_false_creates_no_b():
    f = L.ConvolutionTranspose((2, 2), 3, bias=False)
    x = mg.input_variable((2, 3, 3))
    h = f(x)
    assert [p.name for p in f.parameters] == ["W"] and [p.name for p in h.parameters] == ["W"]
    with pytest.raises(AttributeError, match="no attribute 'b'"):
        getattr(f, "b")  # noqa: B009 (the attribute access is the test)


@pytest.mark.parametrize("init_bias", [0.5, np.array([[[0.1]], [[0.2]], [[0.3]]]), mg.initializers.ones()])
def test_init_bias(init_bias):
    f = L.ConvolutionTranspose((2, 2), 3, init_bias=init_bias)
    f(mg.input_variable((1, 2, 2)))
    value = init_bias((3, 1, 1)) if callable(init_bias) else init_bias
    np.testing.assert_allclose(f.b.value, np.broadcast_to(value, (3, 1, 1)))


def test_init_bias_array_of_wrong_shape():
    with pytest.raises(ValueError, match=r"init_bias array has shape \(3,\); expected \(3, 1, 1\)"):
        L.ConvolutionTranspose((2, 2), 3, init_bias=np.zeros(3))


def test_output_shape_accepted():
    f = L.ConvolutionTranspose((3, 3), 2, strides=2, pad=True, output_shape=(8, 7))
    xv = variable((1, 4, 4))
    h = f(xv)
    assert shp(h) == (2, 8, 7)
    data = normal((2, 1, 4, 4), 5)
    np.testing.assert_allclose(h.eval({xv: data}), transpose_oracle(data, f.W.value, (2, 2), (True,) * 2, (8, 7)))


def test_output_shape_int_applies_to_every_axis_and_pad_false_extra_rows():
    assert shp(L.ConvolutionTranspose((3, 3), 1, strides=2, pad=True, output_shape=8)(mg.input_variable((1, 4, 4)))) \
        == (1, 8, 8)
    assert shp(L.ConvolutionTranspose((3, 3), 1, strides=2, output_shape=10)(mg.input_variable((1, 4, 4)))) \
        == (1, 10, 10)


def test_output_shape_rejected_at_build_listing_valid_sizes():
    f = L.ConvolutionTranspose((3, 3), 1, strides=2, pad=True, output_shape=(9, 9), name="up")
    with pytest.raises(mg.ShapeError, match=r"(?s)ConvolutionTranspose layer 'up'.*valid output sizes on axis 0: 7, 8"):
        f(mg.input_variable((1, 4, 4)))


@pytest.mark.parametrize("output_shape,error", [((8, 8, 8), ValueError), ((0, 8), ValueError), ((8.5, 8), TypeError)])
def test_output_shape_malformed(output_shape, error):
    with pytest.raises(error, match="output_shape"):
        L.ConvolutionTranspose((3, 3), 1, output_shape=output_shape)


def test_max_temp_mem_size_in_samples_is_passed_to_the_op():
    x = variable((2, 4, 4))
    f = L.ConvolutionTranspose((3, 3), 3, strides=2, max_temp_mem_size_in_samples=2)
    h = f(x)
    op = next(n for n in h.topological_order() if n.op_name == "ConvolutionTranspose")
    assert op.attributes["max_temp_mem_size_in_samples"] == 2
    unlimited = mg.ops.convolution_transpose(f.W, x, strides=2, auto_padding=False) + f.b
    data = normal((5, 2, 4, 4), 6)
    np.testing.assert_allclose(h.eval({x: data}), unlimited.eval({x: data}), rtol=1e-12)
    with pytest.raises(ValueError, match="max_temp_mem_size_in_samples"):
        L.ConvolutionTranspose((3, 3), 3, max_temp_mem_size_in_samples=-1)


def test_reduction_rank_zero_input_has_no_depth_axis():
    f = L.ConvolutionTranspose((3, 3), 2, reduction_rank=0)
    x = variable((4, 4))
    h = f(x)
    assert shp(h) == (2, 6, 6) and shp(f.W) == (1, 2, 3, 3)
    data = normal((3, 4, 4), 7)
    np.testing.assert_allclose(h.eval({x: data}),
                               transpose_oracle(data[:, None], f.W.value, (1, 1), (False,) * 2, (6, 6)) + f.b.value)
    check_gradients(h, {x: data})


def test_reduction_rank_zero_with_scalar_output_and_cntk_array_form():
    W = normal((3, 3), 8)  # CNTK's form for reduction_rank=0: no depth axis of size 1
    f = L.ConvolutionTranspose((3, 3), (), reduction_rank=0, init=W)
    assert shp(f(mg.input_variable((4, 4)))) == (6, 6) and shp(f.W) == (1, 3, 3)
    np.testing.assert_allclose(f.W.value[0], W, rtol=1e-6)  # float32: the dtype of the input


def test_reduction_rank_must_be_0_or_1():
    with pytest.raises(ValueError, match="reduction_rank"):
        L.ConvolutionTranspose((3, 3), 1, reduction_rank=2)


def test_name_names_the_output_node_and_the_scope():
    f = L.ConvolutionTranspose((3, 3), 2, activation=mg.relu, name="up1")
    h = f(mg.input_variable((1, 4, 4)))
    assert h.name == "up1" and h.op_name == "ReLU"
    for node in h.topological_order():
        if node.op_name in ("ConvolutionTranspose", "Plus", "ReLU") or node in f.parameters:
            assert node.scope[-1].name == "up1" and node.scope[-1].owner is f
            assert node.scope[-1].kind == "ConvolutionTranspose"


@pytest.mark.parametrize("kwargs,match", [
    ({"strides": (1, 2, 3)}, "strides"), ({"pad": [True, False, True]}, "pad"), ({"strides": 0}, "strides"),
    ({"filter_shape": (3, 0)}, "filter_shape"), ({"num_filters": 0}, "num_filters"),
    ({"num_filters": (2, 3)}, "num_filters"), ({"pad": 1}, "pad"), ({"bias": "yes"}, "bias"),
    ({"name": 3}, "name"), ({"init": "glorot"}, "init")])
def test_malformed_arguments_fail_at_construction_naming_the_argument(kwargs, match):
    args = {"filter_shape": (3, 3), "num_filters": 1, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        L.ConvolutionTranspose(**args)


def test_input_of_wrong_rank():
    with pytest.raises(mg.ShapeError, match=r"input of shape \(5,\) has rank 1; filter_shape \(3, 3\) needs rank 3"):
        L.ConvolutionTranspose((3, 3), 1)(mg.input_variable((5,)))


def test_calling_twice_shares_W_and_b():
    f = L.ConvolutionTranspose((2, 2), 3)
    a, b = mg.input_variable((2, 3, 3)), mg.input_variable((2, 5, 5))
    ha, hb = f(a), f(b)
    assert shp(ha) == (3, 4, 4) and shp(hb) == (3, 6, 6)
    assert {id(p) for p in ha.parameters} == {id(p) for p in hb.parameters} == {id(f.W), id(f.b)}
    with pytest.raises(mg.ShapeError, match="channel mismatch"):
        f(mg.input_variable((4, 3, 3)))


def test_layer_agrees_with_op_level_functions_values_and_gradients():
    f = L.ConvolutionTranspose((3, 2), 2, strides=(2, 1), pad=(True, False), activation=mg.tanh,
                               output_shape=(6, 4), init_bias=mg.initializers.normal(0.1, seed=2))
    x = variable((3, 3, 3))
    h = f(x)
    manual = mg.tanh(mg.ops.convolution_transpose(f.W, x, strides=(2, 1), auto_padding=(True, False),
                                                  output_shape=(6, 4)) + f.b)
    data = normal((2, 3, 3, 3), 9)
    np.testing.assert_allclose(h.eval({x: data}), manual.eval({x: data}), rtol=1e-12)
    u = normal((2, 2, 6, 4), 10)
    g_layer = h.grad({x: data}, wrt=[x, f.W, f.b], grad_root=u)
    g_op = manual.grad({x: data}, wrt=[x, f.W, f.b], grad_root=u)
    for node in (x, f.W, f.b):
        np.testing.assert_allclose(g_layer[node], g_op[node], rtol=1e-12)
    check_gradients(h, {x: data})


@pytest.mark.parametrize("kernel,strides,pad,n", [((3,), (2,), (True,), (5,)), ((2, 3), (1, 2), (False, True), (3, 3)),
                                                  ((2, 2, 2), (2, 1, 2), (True, False, False), (2, 3, 2))])
def test_1d_2d_3d_values_against_the_loop_oracle_and_gradients(kernel, strides, pad, n):
    f = L.ConvolutionTranspose(kernel, 2, strides=strides, pad=pad, init_bias=0.3)
    x = variable((2, *n))
    h = f(x)
    data = normal((2, 2, *n), 11)
    expected = transpose_oracle(data, f.W.value, strides, pad, shp(h)[1:]) + 0.3
    np.testing.assert_allclose(h.eval({x: data}), expected, rtol=1e-12)
    check_gradients(h, {x: data})


def test_symbolic_input_sizes():
    f = L.ConvolutionTranspose((3, 3), 4, strides=2, pad=True)
    x = mg.input_variable((3, "H", "W"))
    h = f(x)
    assert [str(d) for d in h.shape] == ["4", "2*H - 1", "2*W - 1"]
    assert h.eval({x: np.ones((1, 3, 3, 5), np.float32)}).shape == (1, 4, 5, 9)


def test_float32_end_to_end():
    f = L.ConvolutionTranspose((3, 3), 2, activation=mg.sigmoid)
    x = mg.input_variable((1, 3, 3))
    out = f(x).eval({x: np.ones((2, 1, 3, 3), np.float32)})
    assert out.dtype == np.float32 and f.W.value.dtype == np.float32


@pytest.mark.parametrize("factory,rank", [(L.ConvolutionTranspose1D, 1), (L.ConvolutionTranspose2D, 2),
                                          (L.ConvolutionTranspose3D, 3)])
def test_rank_conveniences(factory, rank):
    f = factory(3, 2)
    assert f.filter_shape == (3,) * rank and f.kind == f"ConvolutionTranspose{rank}D"
    assert isinstance(f, L.ConvolutionTranspose)
    assert shp(f(mg.input_variable((1,) + (4,) * rank))) == (2,) + (6,) * rank
    with pytest.raises(ValueError, match=f"must be an int or have {rank} entries"):
        factory((3,) * (rank + 1), 2)


# Convolution -----------------------------------------------------------------------------------------
def test_convolution_cntk_docstring_examples():
    f = L.Convolution((5, 4), 128, activation=mg.relu)
    assert shp(f(mg.input_variable((3, 480, 640)))) == (128, 476, 637) and shp(f.W) == (128, 3, 5, 4)
    g = L.Convolution((3, 3), 128, reduction_rank=0, pad=True, strides=(1, 2), activation=mg.relu)
    assert shp(g(mg.input_variable((480, 640)))) == (128, 480, 320) and shp(g.W) == (128, 1, 3, 3)


@pytest.mark.parametrize("kernel,strides,pad,n", [((3,), (2,), (True,), (7,)), ((3, 2), (2, 1), (True, False), (5, 4)),
                                                  ((2, 2, 3), (1, 2, 2), (False, True, True), (3, 4, 5))])
def test_convolution_values_against_the_loop_oracle_and_gradients(kernel, strides, pad, n):
    f = L.Convolution(kernel, 3, strides=strides, pad=pad, activation=mg.tanh, init_bias=0.1)
    x = variable((2, *n))
    h = f(x)
    data = normal((2, 2, *n), 12)
    np.testing.assert_allclose(h.eval({x: data}), np.tanh(conv_oracle(data, f.W.value, strides, pad) + 0.1),
                               rtol=1e-12)
    check_gradients(h, {x: data})


def test_convolution_scalar_output_and_its_fans():
    f = L.Convolution((3, 3), (), init=mg.initializers.he_uniform(seed=1))
    x = variable((4, 5, 5))
    h = f(x)
    assert shp(h) == (3, 3) and shp(f.W) == (4, 3, 3) and shp(f.b) == ()
    assert np.abs(f.W.value).max() <= math.sqrt(6.0 / (4 * 9))  # fan_in = input depth * filter size
    data = normal((2, 4, 5, 5), 13)
    np.testing.assert_allclose(h.eval({x: data}), conv_oracle(data, f.W.value[None], (1, 1), (False,) * 2)[:, 0])


def test_convolution_dilation_and_groups_reach_the_op():
    f = L.Convolution((3, 3), 4, dilation=2, groups=2, pad=True)
    x = variable((6, 7, 7))
    h = f(x)
    assert shp(f.W) == (4, 3, 3, 3) and shp(h) == (4, 7, 7)
    manual = mg.ops.convolution(f.W, x, dilation=2, groups=2, auto_padding=True) + f.b
    data = normal((1, 6, 7, 7), 14)
    np.testing.assert_allclose(h.eval({x: data}), manual.eval({x: data}), rtol=1e-12)
    with pytest.raises(ValueError, match="groups"):
        L.Convolution((3, 3), 4, groups=0)


def test_convolution_rank_conveniences():
    assert L.Convolution2D(3, 8).filter_shape == (3, 3)
    assert shp(L.Convolution1D(3, 8)(mg.input_variable((2, 9)))) == (8, 7)
    with pytest.raises(ValueError, match="filter_shape"):
        L.Convolution3D((3, 3), 8)
