"""explain: per-axis derivations of convolution geometry (numbers and text), one-line rules, bindings."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L
from minigraph.explain import explain


def _up(x, **kw):
    return L.ConvolutionTranspose((3, 3), 8, name="up", **kw)(x)


def test_transposed_pad_true_stride_2_symbolic():
    y = _up(mg.input_variable((4, "H", "W"), name="x"), strides=2, pad=True)
    axis = y.explain().layer("up").axes[0]
    assert str(axis.output_size) == "2*H - 1"
    assert tuple(map(str, axis.valid_output_sizes)) == ("2*H - 1", "2*H")
    assert (axis.effective_kernel, axis.lower_pad, axis.upper_pad) == (3, 1, 1)
    assert axis.quantity("N_min").formula == "(n - 1)*s + 1"
    assert "smallest valid size" in axis.choice and "output_shape=2*H" in axis.choice
    text = str(mg.explain(y))
    assert "N_min = (n - 1)*s + 1 = (H - 1)*2 + 1 = 2*H - 1" in text
    assert "valid output_shape on this axis: 2*H - 1 .. 2*H" in text


def test_bindings_and_feed_give_numbers():
    x = mg.input_variable((4, "H", "W"), name="x")
    y = _up(x, strides=2, pad=True)
    by_bindings = mg.explain(y, bindings={"H": 7, "W": 5})
    by_feed = mg.explain(y, {x: np.zeros((2, 4, 7, 5), np.float32)})
    for e in (by_bindings, by_feed):
        axis = e.axes[0]
        assert axis.quantity("N").bound == 13 and axis.quantity("N_max").bound == 14
        assert axis.last_row.row == 12 and axis.last_row.rows == (6,) and axis.last_row.taps == (1,)
    assert "-> 13" in str(by_bindings) and "13, 14" in str(by_bindings)
    assert e.bindings == {"H": 7, "W": 5}


def test_output_shape_choice_and_centring_rule():
    y = L.ConvolutionTranspose((4, 4), 1, strides=2, pad=True, output_shape=(8, 8), name="up2")(
        mg.input_variable((32, 4, 4)))
    axis = explain(y).axes[1]
    assert (axis.output_size, axis.valid_output_sizes, axis.requested) == (8, (7, 8), 8)
    assert axis.quantity("extra").value == 1
    assert (axis.lower_pad, axis.upper_pad) == (1, 1)
    assert "output_shape asks for it" in axis.choice
    assert (axis.first_row.rows, axis.first_row.taps) == ((0,), (1,))
    assert (axis.last_row.row, axis.last_row.rows, axis.last_row.taps) == (7, (3,), (2,))


def test_odd_extra_row_goes_to_the_upper_pad():
    y = L.ConvolutionTranspose(3, 2, strides=2, pad=True, output_shape=4, name="u")(mg.input_variable((1, 2)))
    axis = explain(y).axes[0]
    assert (axis.lower_pad, axis.upper_pad) == (1, 0)


def test_negative_pad_is_zero_rows():
    y = mg.ops.convolution_transpose(mg.parameter((1, 1, 2)), mg.input_variable((1, 3)), strides=1,
                                     auto_padding=False, lower_pad=0, upper_pad=0)
    assert y.shape == (1, 4)
    wide = mg.ops.convolution_transpose(mg.parameter((1, 1, 2)), mg.input_variable((1, 3)), strides=2,
                                        auto_padding=False, output_shape=7)
    axis = explain(wide, chain=False).axes[0]
    assert axis.upper_pad == -1 and axis.zero_rows == (0, 1)
    assert axis.last_row.rows == ()
    assert "only padding reaches" in str(axis)


def test_convolution_rows_and_padding():
    c = mg.ops.convolution(mg.parameter((8, 3, 3, 3)), mg.input_variable((3, 8, 9)), strides=2, auto_padding=True)
    axis = explain(c, chain=False).axes[0]
    assert (axis.output_size, axis.lower_pad, axis.upper_pad) == (4, 1, 0)
    assert axis.first_row.rows == (None, 0, 1)   # tap 0 reads padding
    assert axis.last_row.row == 3 and axis.last_row.rows == (5, 6, 7)
    assert "ceil(N/s)" in axis.quantity("n").formula


def test_pooling_axes():
    p = L.MaxPooling((3, 3), strides=2, pad=True, name="pool")(mg.input_variable((4, 9, 9)))
    axis = explain(p).layer("pool").axes[0]
    assert (axis.output_size, axis.lower_pad, axis.upper_pad) == (5, 1, 1)


@pytest.mark.parametrize("build, words", [
    (lambda x: x + mg.constant(np.ones((1, 5), np.float32)), "broadcasting"),
    (lambda x: mg.times(x, mg.parameter((5, 7))), "times with output_rank=1"),
    (lambda x: mg.reshape(x, (15,)), "reshape"),
    (lambda x: mg.relu(x), "elementwise ReLU"),
    (lambda x: mg.reduce_sum(x, axis=1), "sum over axes (1,)"),
])
def test_other_ops_have_a_one_line_rule(build, words):
    node = build(mg.input_variable((3, 5)))
    e = explain(node, chain=False)
    assert words in e[0].rule and e.axes == []


def test_model_explain_walks_every_op_in_order():
    z = mg.input_variable(16, name="z")
    g = L.Sequential([L.Dense((64, 2, 2), activation=mg.relu, name="fc"),
                      L.ConvolutionTranspose((3, 3), 32, strides=2, pad=True, output_shape=(4, 4), name="up1")],
                     name="generator")(z)
    e = g.explain()
    assert [n.op for n in e] == ["Times", "Plus", "ReLU", "ConvolutionTranspose", "Plus"]
    assert e.layer("up1").axes[0].output_size == 4
    assert e["fc"].output_shape == (64, 2, 2)
    assert str(e).count("[generator/up1]") == 2
    with pytest.raises(KeyError, match="layers: .*'fc'"):
        e.layer("nope")


def test_bad_arguments():
    with pytest.raises(TypeError, match="pass a graph node"):
        explain(L.Dense(3))
    with pytest.raises(TypeError, match="positive ints"):
        explain(mg.input_variable(("H",)), bindings={"H": 0})
