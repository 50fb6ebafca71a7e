"""model.summary(): rows per layer call, shapes (symbolic too), parameters, pads, totals."""
import doctest
import importlib

import pytest

import minigraph as mg
from minigraph import layers as L


def _generator():
    z = mg.input_variable(16, name="z")
    return L.Sequential([
        L.Dense((32, 2, 2), activation=mg.relu, name="fc"),
        L.ConvolutionTranspose((3, 3), 8, strides=2, pad=True, output_shape=(4, 4), activation=mg.relu, name="up1"),
        L.ConvolutionTranspose((4, 4), 1, strides=2, pad=True, output_shape=(8, 8), activation=mg.sigmoid,
                               name="up2")], name="generator")(z)


def test_generator_summary_table():
    lines = L.summary(_generator()).splitlines()
    assert lines[0].split() == ["Layer", "Type", "Output", "shape", "Parameters", "Count", "Pads", "(lo,", "hi)",
                                "per", "axis"]
    rows = {line.split()[0]: line for line in lines[2:-1]}
    assert list(rows) == ["z", "generator", "fc", "up1", "up2"]
    assert "(16,)" in rows["z"] and "Input" in rows["z"]
    assert rows["fc"].startswith("  fc ") and "(32, 2, 2)" in rows["fc"]
    assert "W (16, 32, 2, 2), b (32, 2, 2)" in rows["fc"] and "2,176" in rows["fc"]
    assert "W (32, 8, 3, 3), b (8, 1, 1)" in rows["up1"] and rows["up1"].rstrip().endswith("(1, 0), (1, 0)")
    assert "(1, 8, 8)" in rows["up2"] and rows["up2"].rstrip().endswith("(1, 1), (1, 1)")
    assert lines[-1] == "Total: 4,617 parameters in 6 tensors"


def test_model_summary_method_prints(capsys):
    img = _generator()
    assert img.summary() is None
    assert capsys.readouterr().out.strip() == L.summary(img)


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


def test_summary_needs_a_node():
    with pytest.raises(TypeError, match="pass a node"):
        L.summary(L.Dense(3))


@pytest.mark.parametrize("module", ["base", "conv", "defaults", "dense", "misc", "normalization", "pooling",
                                    "sequential", "spec", "summary", "__init__"])
def test_docstring_examples(module):
    mod = importlib.import_module("minigraph.layers" if module == "__init__" else f"minigraph.layers.{module}")
    result = doctest.testmod(mod)
    assert result.failed == 0
