"""ONNX export: every op family, whole networks and symbolic sizes run in ONNX Runtime and give what
``model.eval`` gives (float32 tolerance); the file passes the ONNX checker; errors name the cause."""
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minigraph as mg
from minigraph import layers as L
from minigraph.onnx_export import CONVERTERS, ExportError, OnnxNotInstalledError, export_onnx
from minigraph.ops import conv_geometry as geo

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(0)
GENERATOR_SPEC = Path(__file__).parent.parent / "examples" / "specs" / "generator.toml"


def data(*shape, low=-2.0, high=2.0):
    return RNG.uniform(low, high, shape).astype(np.float32)


def session(proto):
    onnx.checker.check_model(proto, full_check=True)
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def check(model, *arrays, opset=17, atol=1e-5):
    """Export ``model``, run it in ONNX Runtime on ``arrays`` (one per argument) and compare with eval."""
    sess = session(export_onnx(model, opset=opset))
    feed = dict(zip(model.arguments, arrays))
    got = sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), arrays)})[0]
    want = model.eval(feed)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=atol)
    return got


# elementwise -------------------------------------------------------------------------------------
UNARY = {
    "negate": mg.negate, "relu": mg.relu, "sigmoid": mg.sigmoid, "tanh": mg.tanh, "exp": mg.exp,
    "square": mg.square, "abs": mg.abs, "leaky_relu": lambda x: mg.leaky_relu(x, 0.2),
    "clip": lambda x: mg.clip(x, -0.5, 0.7), "dropout": lambda x: mg.dropout(x, 0.5),
}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op):
    x = mg.input_variable((3, 4), name="x")
    check(UNARY[op](x), data(2, 3, 4))


@pytest.mark.parametrize("op", [mg.log, mg.sqrt])
def test_unary_of_positive_inputs(op):
    x = mg.input_variable((5,), name="x")
    check(op(x), data(3, 5, low=0.1, high=4.0))


def test_softplus_stays_finite_for_large_inputs():
    x = mg.input_variable((4,), name="x")
    got = check(mg.softplus(x), np.array([[-100.0, -1.0, 3.0, 100.0]], np.float32))
    assert np.isfinite(got).all()


@pytest.mark.parametrize("op", [mg.plus, mg.minus, mg.element_times, mg.element_divide])
def test_binary_with_broadcasting(op):
    x = mg.input_variable((3, 4), name="x")
    row = mg.input_variable((4,), name="row")  # a fed input of lower rank: size-1 axes after the batch axis
    w = mg.parameter((3, 1), init=data(3, 1, low=0.5, high=1.5), name="w")
    check(op(op(x, row), w), data(2, 3, 4), data(2, 4, low=0.5, high=1.5))


def test_binary_of_two_initializers_gets_a_batch_axis():
    x = mg.input_variable((2, 3), name="x")
    c = mg.constant(data(3), name="c")
    w = mg.parameter((2, 1), init=data(2, 1), name="w")
    check(mg.splice(x, c * w, axis=0), data(4, 2, 3))


# tensor products and shape ops ---------------------------------------------------------------------
@pytest.mark.parametrize("x_shape, w_shape, output_rank", [
    ((16,), (16, 8, 2, 2), 3),   # Dense to a tensor
    ((2, 3, 4), (3, 4, 5), 1),   # two contracted axes
    ((3, 4), (4,), 0),           # output_rank 0
    ((4,), (2, 3), 2),           # nothing contracted: outer product
    ((2, 6), (6, 5), 1),         # a plain matrix over the last axis
])
def test_times(x_shape, w_shape, output_rank):
    x = mg.input_variable(x_shape, name="x")
    w = mg.parameter(w_shape, init=data(*w_shape), name="w")
    check(mg.times(x, w, output_rank=output_rank), data(3, *x_shape))


def test_times_of_two_fed_inputs():
    a, b = mg.input_variable((2, 3), name="a"), mg.input_variable((3, 4), name="b")
    check(mg.times(a, b), data(3, 2, 3), data(3, 3, 4))


def test_times_with_a_computed_weight():
    x = mg.input_variable((6,), name="x")
    w = mg.parameter((2, 3, 4), init=data(2, 3, 4), name="w")
    check(mg.times(x, mg.reshape(w * 2.0, (6, 4))), data(2, 6))


def test_shape_ops():
    x = mg.input_variable((2, 3, 4), name="x")
    y = mg.transpose(x, (2, 0, 1))                         # (4, 2, 3)
    y = mg.reshape(y, (8, 3))
    y = mg.slice(y, [0, 1], [-7, 0], [0, 3], strides=[2, 1])  # rows 1, 3, 5, 7; columns 0..2
    y = y[1:, -1]                                           # int index drops the axis
    y = mg.splice(y, mg.constant(np.arange(3, dtype=np.float32)), axis=0)
    check(mg.cast(y, np.float64), data(2, 2, 3, 4))


def test_reshape_with_symbolic_sizes():
    x = mg.input_variable((3, "H", "W"), name="x")
    y = mg.reshape(mg.transpose(x, (1, 2, 0)), ("H*W", 3))
    back = mg.reshape(y, (3, "W", "H"))
    sess = session(export_onnx(back))
    for size in ((4, 6), (5, 2)):
        a = data(2, 3, *size)
        np.testing.assert_array_equal(sess.run(None, {"x": a})[0], back.eval({x: a}))


# reductions and softmax ----------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("reduce", [mg.reduce_sum, mg.reduce_mean, mg.reduce_max])
@pytest.mark.parametrize("axis, keepdims", [(None, True), (1, True), ([0, 2], False), (-1, False)])
def test_reductions(reduce, axis, keepdims, opset):
    x = mg.input_variable((2, 3, 4), name="x")
    check(reduce(x, axis=axis, keepdims=keepdims), data(3, 2, 3, 4), opset=opset)


def test_reduction_of_a_scalar_keeps_the_batch_axis():
    x = mg.input_variable((), name="x")
    check(mg.reduce_sum(x) + 1.0, data(4))


@pytest.mark.parametrize("op", [mg.softmax, mg.log_softmax])
def test_softmax(op):
    x = mg.input_variable((3, 5), name="x")
    check(op(x, axis=0) + op(x), data(2, 3, 5, low=-20, high=20), atol=1e-4)


# normalization -------------------------------------------------------------------------------------
@pytest.mark.parametrize("map_rank, shape", [(1, (3, 4, 5)), (1, (3,)), (None, (3, 4))])
def test_batch_normalization_in_eval_mode(map_rank, shape):
    x = mg.input_variable(shape, name="x")
    bn = L.BatchNormalization(map_rank=map_rank, name="bn")
    y = bn(x)
    for node in (bn.scale, bn.bias):
        node.value = data(*node.shape)
    bn.running_mean.value[...] = data(*bn.running_mean.shape)
    bn.running_var.value[...] = data(*bn.running_var.shape, low=0.5, high=2.0)
    check(y, data(2, *shape))


@pytest.mark.parametrize("scale_shape", [(), (4,), (3, 4)])
def test_layer_normalization(scale_shape):
    x = mg.input_variable((3, 4), name="x")
    scale = mg.parameter(scale_shape, init=data(*scale_shape) if scale_shape else 1.5)
    bias = mg.parameter(scale_shape, init=data(*scale_shape) if scale_shape else -0.5)
    check(mg.layer_normalization(x, scale, bias), data(2, 3, 4))


# convolutions ---------------------------------------------------------------------------------------
def conv_check(op, w_shape, x_shape, **options):
    x = mg.input_variable(x_shape, name="x")
    w = mg.parameter(w_shape, init=data(*w_shape), name="W")
    check(op(w, x, **options), data(2, *x_shape), atol=1e-4)


CONV_CASES = {
    "1d": ((4, 3, 3), (3, 9), {}),
    "2d stride 2 pad": ((4, 3, 3, 3), (3, 7, 8), {"strides": 2}),
    "2d no pad": ((4, 3, 2, 3), (3, 7, 8), {"strides": (2, 1), "auto_padding": False}),
    "3d": ((2, 1, 3, 2, 3), (1, 5, 4, 6), {"strides": (1, 2, 2)}),
    "dilation": ((4, 3, 3, 3), (3, 9, 9), {"dilation": 2, "auto_padding": False}),
    "groups": ((6, 2, 3, 3), (4, 6, 6), {"groups": 2}),
    "explicit pads": ((4, 3, 3, 3), (3, 6, 6), {"lower_pad": (2, 0), "upper_pad": (1, 3)}),
    "stride beyond kernel": ((4, 3, 1, 2), (3, 8, 9), {"strides": 4}),  # negative (cropping) pads
    "same_lower": ((4, 3, 4, 4), (3, 7, 6), {"strides": 2, "auto_padding": "same_lower"}),
    "no channel axis": ((4, 1, 3, 3), (6, 6), {"reduction_rank": 0}),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_convolution(case):
    w_shape, x_shape, options = CONV_CASES[case]
    conv_check(mg.convolution, w_shape, x_shape, **options)


TRANSPOSE_CASES = {
    "1d": ((3, 4, 3), (3, 5), {"strides": 2}),
    "pad": ((3, 4, 3, 3), (3, 4, 5), {"strides": 2}),
    "no pad": ((3, 4, 3, 2), (3, 4, 5), {"strides": (2, 3), "auto_padding": False}),
    "output_shape": ((3, 4, 3, 3), (3, 4, 4), {"strides": 2, "output_shape": (8, 8)}),
    "no pad output_shape": ((3, 4, 3, 3), (3, 4, 4), {"strides": 3, "auto_padding": False, "output_shape": (13, 14)}),
    "asymmetric pads": ((3, 4, 3, 3), (3, 4, 5), {"strides": 2, "lower_pad": (2, 0), "upper_pad": (0, 1)}),
    "negative lower pad": ((3, 4, 2, 2), (3, 3, 3), {"strides": 4, "output_shape": (12, 12)}),
    "3d": ((2, 3, 2, 3, 2), (2, 3, 2, 4), {"strides": 2, "output_shape": (6, 4, 8)}),
    "dilation": ((3, 4, 3, 3), (3, 4, 4), {"strides": 2, "dilation": 2, "auto_padding": False}),
    "groups": ((4, 3, 3, 3), (4, 4, 4), {"groups": 2, "strides": 2}),
    "same_upper": ((3, 4, 4, 4), (3, 3, 5), {"strides": 2, "auto_padding": "same_upper"}),
    "no channel axis": ((1, 4, 3, 3), (4, 5), {"reduction_rank": 0, "strides": 2, "output_shape": (8, 10)}),
}


@pytest.mark.parametrize("case", sorted(TRANSPOSE_CASES))
def test_convolution_transpose(case):
    w_shape, x_shape, options = TRANSPOSE_CASES[case]
    conv_check(mg.convolution_transpose, w_shape, x_shape, **options)


def test_negative_upper_pads_become_output_padding():
    x = mg.input_variable((3, 4, 4), name="x")
    w = mg.parameter((3, 2, 3, 3), init=data(3, 2, 3, 3))
    y = mg.convolution_transpose(w, x, strides=3, auto_padding=False, output_shape=(14, 13))
    assert min(y.attributes["upper_pad"]) < 0
    (node,) = [n for n in export_onnx(y).graph.node if n.op_type == "ConvTranspose"]
    attrs = {a.name: list(a.ints) for a in node.attribute}
    assert attrs["output_padding"] == [2, 1]
    check(y, data(2, 3, 4, 4))


@pytest.mark.parametrize("layer, shape", [
    (L.Convolution2D(3, None, pad=True, strides=2, name="c"), (3, 5, 6)),
    (L.Convolution2D(3, 5, reduction_rank=0, name="c"), (5, 6)),
    (L.ConvolutionTranspose2D(3, None, pad=True, strides=2, name="t"), (3, 5, 6)),
    (L.ConvolutionTranspose2D(4, 2, strides=2, reduction_rank=0, output_shape=(13, 15), name="t"), (5, 6)),
    (L.ConvolutionTranspose1D(3, None, strides=2, reduction_rank=0, name="t"), (5,)),
], ids=lambda v: repr(v) if isinstance(v, L.Layer) else "")
def test_layers_without_depth_axes(layer, shape):
    check(layer(mg.input_variable(shape, name="x")), data(2, *shape), atol=1e-4)


@st.composite
def conv_geometry(draw, explicit: bool):
    """One spatial axis of a (transposed) convolution: sizes, stride, dilation, pad mode, output size."""
    n, k, s, d = draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 2))
    if explicit:
        mode = (draw(st.integers(0, k)), draw(st.integers(0, k)))
    else:
        mode = draw(st.sampled_from([True, False, "same_upper", "same_lower"]))
    first, last = geo.transpose_sizes(n, k, s, d, mode)
    assume(last >= 1)
    return n, k, s, d, mode, draw(st.integers(max(first, 1), last))


@given(st.booleans().flatmap(lambda explicit: st.lists(conv_geometry(explicit), min_size=1, max_size=2)),
       st.sampled_from([1, 2]), st.booleans())
def test_random_convolution_geometry(axes, groups, transposed):
    n, k, s, d, modes, out = zip(*axes)
    if isinstance(modes[0], tuple):
        options = {"lower_pad": tuple(m[0] for m in modes), "upper_pad": tuple(m[1] for m in modes)}
    else:
        options = {"auto_padding": modes}
    options.update(strides=s, dilation=d, groups=groups)
    w_shape = (2 * groups, 2, *k)
    if transposed:
        x_shape = (2 * groups, *n)
        options["output_shape"] = out
    else:  # the convolution reads what the transposed convolution would write
        x_shape = (2 * groups, *out)
        assume(all(geo.conv_axis(o, *g[1:5])[0] >= 1 for o, g in zip(out, axes)))
    conv_check(mg.convolution_transpose if transposed else mg.convolution, w_shape, x_shape, **options)


# pooling -----------------------------------------------------------------------------------------
POOL_CASES = {
    "2d": ((3, 6, 7), {"pooling_window_shape": (2, 2), "strides": 2}),
    "2d pad": ((3, 7, 7), {"pooling_window_shape": (3, 3), "strides": 2, "auto_padding": True}),
    "1d pad": ((2, 9), {"pooling_window_shape": (4,), "strides": 1, "auto_padding": True}),
    "3d": ((2, 4, 5, 6), {"pooling_window_shape": (2, 3, 2), "strides": (2, 1, 2), "auto_padding": True}),
    "no channel axis": ((6, 7), {"pooling_window_shape": (3, 3), "strides": 2, "auto_padding": True}),
    "two leading axes": ((2, 3, 6, 7), {"pooling_window_shape": (3, 3), "auto_padding": True}),
    "stride beyond window": ((2, 9, 8), {"pooling_window_shape": (2, 2), "strides": 4, "auto_padding": True}),
}


@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_pooling(case, kind):
    shape, options = POOL_CASES[case]
    x = mg.input_variable(shape, name="x")
    check(mg.pooling(x, kind, **options), data(2, *shape))


# whole networks --------------------------------------------------------------------------------------
def test_readme_generator_through_a_file(tmp_path):
    net = mg.layers.from_spec(GENERATOR_SPEC)
    path = tmp_path / "gen.onnx"
    net.export_onnx(path)
    sess = session(onnx.load(path))
    z = data(5, 16)
    np.testing.assert_allclose(sess.run(None, {"z": z})[0], net.eval({net.arguments[0]: z}), rtol=1e-4, atol=1e-5)
    names = [t.name for t in onnx.load(path).graph.initializer]
    assert {"fc/W", "fc/b", "up1/W", "up1/b", "up2/W", "up2/b"} <= set(names)
    assert names == [t.name for t in export_onnx(net).graph.initializer]  # stable


def discriminator(shape):
    x = mg.input_variable(shape, name="image")
    net = L.Sequential([
        L.Convolution2D(3, 8, pad=True, strides=2, activation="leaky_relu", name="c1"),
        L.BatchNormalization(map_rank=1, name="bn1"),
        L.MaxPooling((2, 2), strides=2, name="pool"),
        L.Convolution2D(3, 4, pad=True, activation="relu", name="c2"),
        L.AveragePooling((3, 3), strides=2, pad=True, name="avg"),
        L.LayerNormalization(name="ln"),
        L.Dropout(0.3),
    ])
    return x, net(x)


def trained(y):
    """Give every parameter and running statistic values other than their initial ones."""
    for p in y.parameters:
        p.value = data(*p.shape, low=-0.5, high=0.5) + (1.0 if p.name == "scale" else 0.0)
    for c in y.constants:
        if c.name in ("running_mean", "running_var"):
            c.value[...] = data(*c.shape, low=0.5, high=1.5)
    return y


@pytest.mark.parametrize("opset", [17, 21])
def test_conv_discriminator(opset):
    _, h = discriminator((3, 16, 16))
    y = L.Dense(1, activation="sigmoid", name="fc")(h)
    check(trained(y), data(4, 3, 16, 16), opset=opset)


def test_symbolic_sizes_through_one_file(tmp_path):
    x, h = discriminator((3, "H", "W"))
    y = L.ConvolutionTranspose2D(4, 2, strides=2, pad=True, name="up")(h)
    y = trained(mg.reduce_mean(y, axis=[1, 2], keepdims=False) + y[:, 0, 0])
    pads = [p for n in y.topological_order() if n.op_name in ("Convolution", "Pooling")
            for p in n.attributes["upper_pad"]]
    assert any(isinstance(p, mg.Dim) for p in pads)  # pads known only at run time (stride 2 on H, W)
    path = tmp_path / "disc.onnx"
    proto = y.export_onnx(path, batch_dim="batch")
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "H", "W"]
    sess = session(onnx.load(path))
    for size in ((16, 16), (13, 22)):
        a = data(2, 3, *size)
        np.testing.assert_allclose(sess.run(None, {"image": a})[0], y.eval({x: a}), rtol=1e-4, atol=1e-5)


SYMBOLIC_CASES = {
    "conv pad stride 2": lambda x: mg.convolution(mg.constant(data(2, 3, 3, 3)), x, strides=2),
    "conv same_upper": lambda x: mg.convolution(mg.constant(data(2, 3, 2, 2)), x, strides=3, auto_padding="same_upper"),
    "conv stride beyond kernel": lambda x: mg.convolution(mg.constant(data(2, 3, 1, 1)), x, strides=3),
    "max pool pad": lambda x: mg.max_pooling(x, (3, 3), strides=2, auto_padding=True),
    "average pool pad": lambda x: mg.average_pooling(x, (2, 3), strides=(3, 2), auto_padding=True),
    "transpose pad": lambda x: mg.convolution_transpose(mg.constant(data(3, 2, 3, 3)), x, strides=2),
    "transpose same_lower": lambda x: mg.convolution_transpose(mg.constant(data(3, 2, 3, 3)), x, strides=2,
                                                                auto_padding="same_lower"),
}


@pytest.mark.parametrize("case", sorted(SYMBOLIC_CASES))
def test_symbolic_geometry(case):
    x = mg.input_variable((3, "H", "W"), name="x")
    y = SYMBOLIC_CASES[case](x)
    sess = session(export_onnx(y))
    for size in ((7, 8), (9, 5), (4, 4)):
        a = data(2, 3, *size)
        np.testing.assert_allclose(sess.run(None, {"x": a})[0], y.eval({x: a}), rtol=1e-4, atol=1e-5)


# errors and options ------------------------------------------------------------------------------------
def test_every_op_but_the_losses_has_a_converter():
    from minigraph.ops.base import OPS
    losses = {"SquaredError", "BinaryCrossEntropy", "BinaryCrossEntropyWithLogits", "CrossEntropyWithSoftmax",
              "ClassificationError"}
    assert set(OPS) - set(CONVERTERS) == losses


def test_op_without_converter_is_named():
    x = mg.input_variable((3,), name="x")
    loss = mg.squared_error(x, mg.constant(np.zeros(3, np.float32)), name="mse")
    assert "SquaredError" not in CONVERTERS
    with pytest.raises(ExportError, match=r"SquaredError 'mse'.*no ONNX converter"):
        export_onnx(loss)


def test_missing_onnx_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes ``import onnx`` fail
    with pytest.raises(ImportError, match="pip install onnx") as info:
        export_onnx(mg.relu(mg.input_variable(2)))
    assert isinstance(info.value, OnnxNotInstalledError) and isinstance(info.value, mg.MinigraphError)


def test_per_sample_weights_are_refused():
    x = mg.input_variable((1, 5, 5), name="x")
    w = mg.reshape(x[:, :3, :3], (1, 1, 3, 3))
    with pytest.raises(ExportError, match="depends on a fed input"):
        export_onnx(mg.convolution(w, x))


@pytest.mark.parametrize("options, message", [
    ({"opset": 13}, "opset"),
    ({"input_names": ["a", "b"]}, "one name per model argument"),
    ({"output_name": "x"}, "distinct"),
    ({"batch_dim": "H"}, "also a named dim"),
    ({"batch_dim": 0}, "positive int"),
])
def test_bad_options(options, message):
    y = mg.relu(mg.input_variable((2, "H"), name="x"))
    with pytest.raises(ValueError, match=message):
        export_onnx(y, **options)


def test_names_fixed_batch_and_failed_write_keeps_the_old_file(tmp_path):
    x = mg.input_variable((2,), name="x")
    y = mg.tanh(x)
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    with pytest.raises(ValueError):
        export_onnx(y, path, output_name="x")
    assert path.read_bytes() == b"old"
    proto = export_onnx(y, path, input_names=["inp"], output_name="out", batch_dim=3)
    assert [i.name for i in proto.graph.input] == ["inp"] and proto.graph.output[0].name == "out"
    sess = session(onnx.load(path))
    a = data(3, 2)
    np.testing.assert_allclose(sess.run(None, {"inp": a})[0], np.tanh(a), rtol=1e-6)
