"""The command line on ONNX files: summary (with resolved pads), plot and convert to a model file."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L
from minigraph.cli import main

pytest.importorskip("onnx")


@pytest.fixture
def onnx_file(tmp_path):
    x = mg.input_variable((3, 16, 16), name="x")
    y = L.Sequential([L.Convolution2D(4, 8, strides=2, lower_pad=1, upper_pad=1, activation="relu", name="c1"),
                      L.ConvolutionTranspose2D(4, 3, strides=2, lower_pad=1, upper_pad=2, name="up")])(x)
    path = tmp_path / "m.onnx"
    y.export_onnx(path)
    return path, y


def test_summary_of_an_onnx_file_shows_resolved_pads(onnx_file, capsys):
    path, _ = onnx_file
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    conv_row = next(line for line in out.splitlines() if line.split()[1:2] == ["ConvTranspose"])
    assert "(1, 2), (1, 2)" in conv_row and "up/W (8, 3, 4, 4)" in conv_row


def test_convert_writes_a_model_file_that_loads(onnx_file, tmp_path, capsys):
    path, y = onnx_file
    out = tmp_path / "m.mgz"
    assert main(["convert", str(path), "-o", str(out)]) == 0
    back = mg.load_model(out)
    x = np.random.default_rng(0).normal(size=(2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(back.eval({back.arguments[0]: x}), y.eval({y.arguments[0]: x}), rtol=1e-5, atol=1e-6)


def test_plot_of_an_onnx_file(onnx_file, capsys):
    path, _ = onnx_file
    assert main(["plot", str(path)]) == 0
    assert "ConvolutionTranspose" in capsys.readouterr().out


def test_bad_onnx_files_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["summary", str(bad)]) == 2
    assert "not an ONNX model" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "m.mgz")]) == 2
    assert not (tmp_path / "m.mgz").exists()
