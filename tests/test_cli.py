"""The ``minigraph`` command line: plot and summary of spec files, errors with exit status 2."""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import minigraph as mg
from minigraph import layers as L

from helpers import run_cli, spec_file

GENERATOR_TOML = """\
[input]
shape = [16]
name = "z"

[[layer]]
type = "Dense"
shape = [32, 2, 2]
activation = "relu"
name = "fc"

[[layer]]
type = "ConvolutionTranspose"
filter_shape = [3, 3]
num_filters = 8
strides = 2
pad = true
output_shape = [4, 4]
activation = "relu"
name = "up1"

[[layer]]
type = "ConvolutionTranspose"
filter_shape = [4, 4]
num_filters = 1
strides = 2
pad = true
output_shape = [8, 8]
activation = "sigmoid"
name = "up2"
"""


@pytest.fixture
def spec(tmp_path):
    return spec_file(tmp_path, GENERATOR_TOML, "generator.toml")


def test_plot_writes_a_png(spec, tmp_path, capsys):
    from PIL import Image
    target = tmp_path / "pictures" / "net.png"
    status, out, err = run_cli(["plot", spec, "-o", str(target)], capsys)
    assert (status, out, err) == (0, f"wrote {target}\n", "")
    with Image.open(target) as im:
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100


def test_plot_svg_left_to_right(spec, tmp_path, capsys):
    target = tmp_path / "net.picture"
    status, _, _ = run_cli(["plot", spec, "-o", str(target), "--format", "svg", "--rankdir", "LR"], capsys)
    assert status == 0
    text = " ".join(ET.parse(target).getroot().itertext())
    assert "up1" in text and "ConvolutionTranspose" in text and "(1, 8, 8)" in text
    root = ET.parse(target).getroot()
    assert float(root.get("width").rstrip("pt")) > float(root.get("height").rstrip("pt"))  # LR is wide


def test_plot_without_output_prints_the_dot_text(spec, capsys):
    status, out, _ = run_cli(["plot", spec], capsys)
    assert status == 0 and out == mg.plot(L.from_spec(spec))
    status, out, _ = run_cli(["plot", spec, "--collapse-layers", "--rankdir", "BT"], capsys)
    assert status == 0 and out == mg.plot(L.from_spec(spec), collapse_layers=True, rankdir="BT")


def test_summary_prints_the_layers_table(spec, capsys):
    status, out, err = run_cli(["summary", spec], capsys)
    assert status == 0 and err == ""
    assert out == L.summary(L.from_spec(spec)) + "\n"
    assert "up1" in out and "ConvolutionTranspose" in out and "(8, 4, 4)" in out


def test_json_specs_work_too(tmp_path, capsys):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"input": {"shape": [4], "name": "x"},
                                "layer": [{"type": "Dense", "shape": 3, "activation": "tanh", "name": "d"}]}))
    status, out, _ = run_cli(["plot", str(path)], capsys)
    assert status == 0 and "<B>d</B> <I>Dense</I>" in out


def test_missing_spec_is_a_one_line_error_with_status_2(tmp_path, capsys):
    missing = str(tmp_path / "nope.toml")
    status, out, err = run_cli(["summary", missing], capsys)
    assert status == 2 and out == ""
    assert err == f"minigraph summary: error: {missing}: No such file or directory\n"


def test_bad_spec_names_the_file_and_the_closest_type(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[input]\nshape = [4]\n[[layer]]\ntype = "Dense2"\nshape = 3\n')
    status, _, err = run_cli(["plot", str(path), "-o", str(tmp_path / "x.png")], capsys)
    assert status == 2
    assert err.startswith("minigraph plot: error: bad.toml: layer 1:") and "did you mean 'Dense'?" in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("argv, expected", [
    ([], "the following arguments are required: COMMAND"),
    (["draw", "x.toml"], "invalid choice: 'draw'"),
    (["plot", "x.toml", "--rankdir", "UP"], "argument --rankdir: invalid choice: 'UP'"),
    (["plot", "x.toml", "--format", "gif", "-o", "x.gif"], "argument --format: invalid choice: 'gif'"),
    (["plot", "x.toml", "--format", "png"], "--format png needs an output file: add -o FILE"),
])
def test_usage_errors_exit_with_status_2(argv, expected, capsys):
    status, _, err = run_cli(argv, capsys)
    assert status == 2 and expected in err


def test_unknown_picture_extension_is_a_clear_error(spec, tmp_path, capsys):
    status, _, err = run_cli(["plot", spec, "-o", str(tmp_path / "net.gif")], capsys)
    assert status == 2 and "cannot tell the picture format" in err and ".png" in err


def test_missing_dot_program_exits_with_status_1_and_the_install_hint(spec, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    status, _, err = run_cli(["plot", spec, "-o", str(tmp_path / "net.svg")], capsys)
    assert status == 1 and "'dot' program was not found" in err and "apt-get install graphviz" in err
    status, _, _ = run_cli(["plot", spec, "-o", str(tmp_path / "net.dot")], capsys)
    assert status == 0 and (tmp_path / "net.dot").read_text().startswith("digraph")


def test_python_dash_m_minigraph(spec, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(mg.__file__)))}
    target = tmp_path / "net.pdf"
    done = subprocess.run([sys.executable, "-m", "minigraph", "plot", spec, "-o", str(target)],
                          check=False, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes()[:5] == b"%PDF-"
    done = subprocess.run([sys.executable, "-m", "minigraph", "summary", str(tmp_path / "nope.toml")],
                          check=False, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("minigraph summary: error:")
