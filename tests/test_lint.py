"""lint: each finding has a network that triggers it and one that does not."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L
from minigraph.lint import lint, phase_taps


def codes(model, loss=None):
    return [f.code for f in mg.lint(model, loss=loss)]


def x4(name="x"):
    return mg.input_variable((4, 5, 5), name=name)


def test_phase_taps():
    assert phase_taps(3, 2) == [2, 1]
    assert phase_taps(4, 2) == [2, 2]
    assert phase_taps(3, 2, lo=1) == [1, 2]
    assert phase_taps(1, 2) == [1, 0]
    assert phase_taps(2, 2, d=2) == [2, 0]


def test_uneven_overlap():
    bad = L.ConvolutionTranspose((3, 3), 8, strides=2, pad=True, output_shape=10, name="up")(x4())
    (finding,) = [f for f in mg.lint(bad) if f.code == "uneven-overlap"]
    assert finding.severity == "warning" and finding.layer == "up"
    assert "1/2 taps per output phase" in finding.message and "checkerboard" in finding.message
    assert "2 or 4" in finding.suggestion
    good = L.ConvolutionTranspose((4, 4), 8, strides=2, pad=True, output_shape=10, name="up")(x4())
    assert "uneven-overlap" not in codes(good)


def test_gaps_in_transposed_and_strided_convolutions():
    assert "gaps" in codes(L.ConvolutionTranspose((1, 1), 8, strides=2, name="up")(x4()))
    assert "gaps" in codes(mg.ops.convolution_transpose(mg.parameter((4, 2, 2, 2)), x4(), strides=2, dilation=2,
                                                        auto_padding=False))
    assert "gaps" not in codes(L.ConvolutionTranspose((2, 2), 8, strides=2, name="up")(x4()))
    assert "gaps" in codes(L.Convolution((1, 1), 8, strides=2)(x4()))
    assert "gaps" not in codes(L.Convolution((3, 3), 8, strides=2, pad=True)(x4()))


def test_padding_only_rows():
    wide = mg.ops.convolution_transpose(mg.parameter((4, 2, 2, 2)), x4(), strides=2, auto_padding=False,
                                        output_shape=(11, 11))
    (finding,) = [f for f in mg.lint(wide) if f.code == "padding-only-rows"]
    assert "axis 0: 1 row(s)" in finding.message
    full = mg.ops.convolution_transpose(mg.parameter((4, 2, 2, 2)), x4(), strides=2, auto_padding=False,
                                        output_shape=(10, 10))
    assert "padding-only-rows" not in codes(full)


def test_crops_that_discard_input_rows():
    cropped = mg.ops.convolution_transpose(mg.parameter((4, 2, 3, 3)), x4(), strides=1, auto_padding=False,
                                           lower_pad=(4, 0), upper_pad=(0, 0))
    (finding,) = [f for f in mg.lint(cropped) if f.code == "discarded-input-rows"]
    assert "axis 0: 2 at the start, 0 at the end" in finding.message
    mild = mg.ops.convolution_transpose(mg.parameter((4, 2, 3, 3)), x4(), strides=1, auto_padding=False,
                                        lower_pad=(2, 0), upper_pad=(0, 0))
    assert "discarded-input-rows" not in codes(mild)


def test_convolution_windows_that_stop_early():
    x = mg.input_variable((3, 8, 8))
    assert "discarded-input-rows" in codes(L.Convolution((3, 3), 4, strides=2)(x))   # rows 7 unused
    assert "discarded-input-rows" not in codes(L.Convolution((3, 3), 4, strides=2, pad=True)(x))
    assert "discarded-input-rows" not in codes(L.Convolution((4, 4), 4, strides=2)(x))


def test_pad_true_stride_2_without_output_shape_is_2n_minus_1():
    x = mg.input_variable((4, "H", 5), name="x")
    bad = L.ConvolutionTranspose((4, 4), 8, strides=2, pad=True, name="up")(x)
    (finding,) = [f for f in mg.lint(bad) if f.code == "2n-1"]
    assert "2n - 1" in finding.message and "2*H" in finding.message
    assert "use pad='same_upper', which gives n*s = (2*H, 10)" in finding.suggestion
    fixed_size = L.ConvolutionTranspose((4, 4), 8, strides=2, pad=True, name="up")(x4())
    (finding,) = [f for f in mg.lint(fixed_size) if f.code == "2n-1"]
    assert "(9, 9), not n*s = (10, 10)" in finding.message
    assert finding.suggestion == "pass output_shape=(10, 10) (or pad='same_upper') to get n*s"
    fixed = L.ConvolutionTranspose((4, 4), 8, strides=2, pad=True, output_shape=(10, 10), name="up")(x4())
    same = L.ConvolutionTranspose((4, 4), 8, strides=2, pad="same_upper", name="up")(x4())
    unit = L.ConvolutionTranspose((3, 3), 8, pad=True, name="up")(x4())
    for model in (fixed, same, unit):
        assert "2n-1" not in codes(model)


def test_bias_before_batch_norm():
    bad = L.BatchNormalization(map_rank=1)(L.Convolution((3, 3), 8, pad=True, name="c")(x4()))
    (finding,) = [f for f in mg.lint(bad) if f.code == "bias-before-batch-norm"]
    assert "bias=False on layer 'c'" in finding.suggestion
    good = L.BatchNormalization(map_rank=1)(L.Convolution((3, 3), 8, pad=True, bias=False, name="c")(x4()))
    assert codes(good) == []
    activated = L.BatchNormalization(map_rank=1)(L.Convolution((3, 3), 8, pad=True, activation=mg.relu)(x4()))
    assert "bias-before-batch-norm" not in codes(activated)


def test_per_element_batch_norm_after_a_convolution():
    conv = L.ConvolutionTranspose((4, 4), 8, strides=2, pad=True, output_shape=10, bias=False, activation=mg.relu)
    bad = L.BatchNormalization()(conv(x4()))
    (finding,) = [f for f in mg.lint(bad) if f.code == "per-element-batch-norm"]
    assert "map_rank=1" in finding.suggestion and "BatchNorm2d" in finding.suggestion
    assert "800 means" in finding.message
    assert "per-element-batch-norm" not in codes(L.BatchNormalization(map_rank=1)(conv(x4())))
    dense = L.BatchNormalization()(L.Dense(8, bias=False)(mg.input_variable(5)))
    assert "per-element-batch-norm" not in codes(dense)


def test_parameters_the_loss_does_not_reach():
    x = mg.input_variable(3, name="x")
    hidden, side = L.Dense(2, name="used")(x), L.Dense(2, name="unused")(x)
    both = mg.splice(hidden, side, axis=0)
    loss = mg.squared_error(hidden, mg.input_variable(2, name="t"))
    found = [f for f in mg.lint(both, loss=loss) if f.code == "unreached-parameter"]
    assert sorted(f.message.split()[1] for f in found) == ["W", "b"]
    assert all(f.layer == "unused" and "cannot train" in f.message for f in found)
    assert codes(both, loss=mg.squared_error(both, mg.input_variable(4, name="t4"))) == []


def test_findings_print_and_bad_arguments():
    y = L.ConvolutionTranspose((3, 3), 8, strides=2, pad=True, name="up")(x4())
    text = str(mg.lint(y))
    assert text.startswith("warning: layer 'up': uneven overlap") and "Suggestion:" in text
    assert str(lint(mg.relu(x4()))) == "no findings"
    with pytest.raises(TypeError, match="network's output node"):
        lint(L.Dense(3))
    with pytest.raises(TypeError, match="loss must be a graph node"):
        lint(y, loss=np.zeros(3))


def test_plot_marks_flagged_nodes_with_a_badge():
    y = L.ConvolutionTranspose((3, 3), 8, strides=2, pad=True, output_shape=10, name="up")(x4())
    conv_line = next(line for line in mg.plot(y).splitlines() if "<B>ConvolutionTranspose</B>" in line)
    assert "&#9888; uneven-overlap" in conv_line and 'color="#b35900", penwidth=2.2' in conv_line
    plain_line = next(line for line in mg.plot(y).splitlines() if "<B>Plus</B>" in line)
    assert "&#9888;" not in plain_line and "#b35900" not in plain_line
    assert "&#9888;" not in mg.plot(y, show_lint=False)
    collapsed = mg.plot(y, collapse_layers=True)
    assert "&#9888; uneven-overlap" in collapsed
    assert "&#9888;" not in mg.plot(L.ConvolutionTranspose((4, 4), 8, strides=2, pad=True, output_shape=10)(x4()))
