"""model.summary(): rows per layer call, shapes (symbolic too), parameters, pads, totals."""
import doctest
import importlib

import pytest

import minigraph as mg
from minigraph import layers as L

from helpers import small_generator


def _generator():
    return small_generator(fc_channels=32, up1_filters=8)


def test_generator_summary_table():
    table = L.summary(_generator())
    lines = table.splitlines()
    assert lines[0].split() == ["Layer", "Type", "Output", "shape", "Parameters", "Count", "Mult-adds/sample",
                                "Activations/sample", "Pads", "(lo,", "hi)", "per", "axis"]
    rows = {line.split()[0]: line for line in lines[2:7]}
    assert list(rows) == ["z", "generator", "fc", "up1", "up2"]
    assert "(16,)" in rows["z"] and "Input" in rows["z"]
    assert rows["fc"].startswith("  fc ") and "(32, 2, 2)" in rows["fc"]
    assert "W (16, 32, 2, 2), b (32, 2, 2)" in rows["fc"] and "2,176" in rows["fc"]
    assert "W (32, 8, 3, 3), b (8, 1, 1)" in rows["up1"] and rows["up1"].rstrip().endswith("(1, 0), (1, 0)")
    assert "(1, 8, 8)" in rows["up2"] and rows["up2"].rstrip().endswith("(1, 1), (1, 1)")
    assert lines[7] == "Total: 4,617 parameters in 6 tensors (18 KiB)"
    # per sample: fc 16*128 MACs, up1 2*2 inputs x 32 x 8 x 9 taps, up2 4*4 x 8 x 1 x 16
    assert table.rows[2][5:7] == ("2,048", "1.5 KiB") and table.rows[3][5] == "9,216"
    assert lines[8] == ("Per sample: 13,312 multiply-adds; activations 3.75 KiB (every op output), 2.5 KiB kept for "
                        "training; convolution workspace 1.25 KiB")
    assert lines[9] == "Lint: 1 finding" and "uneven overlap" in lines[10]


def test_summary_for_a_batch_scales_the_columns_and_adds_the_peak():
    table = L.summary(_generator(), batch=64)
    assert "Mult-adds (N=64)" in table.splitlines()[0]
    assert table.rows[2][5] == f"{2048 * 64:,}"
    assert "Batch 64: 851,968 multiply-adds" in table
    assert "Peak memory of a run (simulated):" in table and "training step" in table


def test_symbolic_sizes_give_expressions():
    x = mg.input_variable((4, "H", "W"), name="x")
    table = L.summary(L.ConvolutionTranspose((4, 4), 8, strides=2, pad=True, name="up")(x))
    assert table.rows[1][5:7] == ("512*H*W", "64*(2*H - 1)*(2*W - 1) B")
    assert "convolution workspace 544*H*W B" in table
    assert "Peak" not in L.summary(L.Convolution((3, 3), 2)(x), batch=2)  # no peak without sizes


def test_summary_is_text_with_an_html_form():
    img = _generator()
    table = img.summary()
    assert isinstance(table, str) and table == L.summary(img) and repr(table) == str(table)
    page = table._repr_html_()
    assert page.startswith('<table class="minigraph-summary">') and "<th" in page and "up1" in page
    assert "uneven overlap" in page and "Per sample" in page


def test_print_summary_prints(capsys):
    img = _generator()
    L.print_summary(img, batch=2)
    assert capsys.readouterr().out.strip() == L.summary(img, batch=2)


def test_symbolic_shapes_shared_layers_and_unscoped_ops():
    x = mg.input_variable((2, "H", "W"), name="x")
    conv = L.Convolution((3, 3), 4, pad=True, name="c")
    y = conv(mg.relu(conv(L.Convolution((1, 1), 4)(x))))
    text = L.summary(mg.tanh(y, name="out"))
    rows = text.splitlines()
    assert any("(4, H, W)" in r for r in rows)
    assert sum(r.startswith("c ") for r in rows) == 2
    assert "(shared with c)" in text
    assert any(r.startswith("out") and "Tanh" in r for r in rows)
    assert any(r.startswith("-") and "ReLU" in r for r in rows[2:])


def test_pooling_pads_are_shown():
    x = mg.input_variable((1, 5, 5), name="x")
    text = L.summary(L.MaxPooling((3, 3), strides=2, pad=True, name="pool")(x))
    assert text.splitlines()[3].rstrip().endswith("(1, 1), (1, 1)")


def test_summary_needs_a_node_and_a_positive_batch():
    with pytest.raises(TypeError, match="pass a node"):
        L.summary(L.Dense(3))
    with pytest.raises(ValueError, match="batch must be a positive int"):
        L.summary(_generator(), batch=0)


@pytest.mark.parametrize("module", ["base", "conv", "defaults", "dense", "misc", "normalization", "pooling",
                                    "sequential", "spec", "summary", "__init__"])
def test_docstring_examples(module):
    mod = importlib.import_module("minigraph.layers" if module == "__init__" else f"minigraph.layers.{module}")
    result = doctest.testmod(mod)
    assert result.failed == 0
