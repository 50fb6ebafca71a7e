"""``python -m minigraph explain`` and ``summary --batch``: derivations of a spec's shapes on the command line."""
import os

import pytest

from minigraph import layers as L

from helpers import run_cli, spec_file

SPEC = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "specs", "generator.toml")
SYMBOLIC = """name = "g"
[input]
shape = [4, "H", "W"]
name = "x"
[[layer]]
type = "ConvolutionTranspose"
filter_shape = [4, 4]
num_filters = 2
strides = 2
pad = true
name = "up2"
"""


@pytest.fixture
def symbolic(tmp_path):
    return spec_file(tmp_path, SYMBOLIC, "sym.toml")


def test_explain_whole_spec(capsys):
    status, out, err = run_cli(["explain", SPEC], capsys)
    assert status == 0 and err == ""
    assert "[generator/up1] ConvolutionTranspose" in out and "[generator/fc] Times" in out
    assert "valid output_shape on this axis: 3, 4" in out


def test_explain_one_layer_with_bindings(symbolic, capsys):
    status, out, _ = run_cli(["explain", symbolic, "--node", "up2", "--bind", "H=7", "W=5"], capsys)
    assert status == 0
    assert out.startswith("layer 'up2' with H=7, W=5")
    assert "N_min = (n - 1)*s + 1 = (H - 1)*2 + 1 = 2*H - 1 -> 13" in out
    assert "valid output_shape on this axis: 2*W - 1 .. 2*W = 9, 10" in out


@pytest.mark.parametrize("argv, message", [
    (["--node", "nope"], "--node nope: no layer of that name"),
    (["--bind", "H=0"], "'H=0' is not NAME=SIZE"),
    (["--bind", "H"], "'H' is not NAME=SIZE"),
])
def test_explain_bad_arguments_exit_2(symbolic, capsys, argv, message):
    status, _, err = run_cli(["explain", symbolic, *argv], capsys)
    assert status == 2 and message in err


def test_summary_batch(capsys):
    status, out, _ = run_cli(["summary", SPEC, "--batch", "64"], capsys)
    assert status == 0 and out == str(L.summary(L.from_spec(SPEC), batch=64)) + "\n"
    assert "Peak memory of a run (simulated)" in out
    status, _, err = run_cli(["summary", SPEC, "--batch", "0"], capsys)
    assert status == 2 and "not a positive integer" in err
