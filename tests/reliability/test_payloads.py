"""Code-execution payloads in every file entry point: load_model, restore_from_checkpoint, from_spec
(TOML and JSON), the CLI (``python -m minigraph summary FILE``) and ONNX import. Each payload would
create a marker file if any text from the file reached eval, exec, sympify/parse_expr, pickle or an
import; the marker must never appear. A file either loads (the text was only a name) or is refused
with a minigraph error. Counts go to the reliability tally (``markers`` must stay 0)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from archive_mutations import entries, json_paths, manifest_of, pack, raw_npy, with_manifest

import minigraph as mg
from minigraph.errors import MinigraphError
from minigraph.layers import from_spec
from minigraph.layers.spec import dumps_toml

from tally import record

PAYLOADS = [  # each creates the marker when evaluated as Python (sympy's parse_expr evaluates Python too)
    "__import__('pathlib').Path({marker!r}).touch()",
    "H + __import__('os').system('touch ' + {marker!r})",
    "exec(\"open({marker!r}, 'w').close()\")",
    "(lambda: __import__('pathlib').Path({marker!r}).write_text('x'))()",
]


class _Touch:
    """A pickle that creates the marker when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _texts(marker):
    return [p.format(marker=str(marker)) for p in PAYLOADS]


def _attempt(fn, marker) -> tuple[int, int, int]:
    """``(clean, escape, marker)`` of one attempt (a load that succeeds is neither)."""
    try:
        fn()
        outcome = (0, 0)
    except MinigraphError:
        outcome = (1, 0)
    except Exception:  # noqa: BLE001 - counted, and asserted to be zero
        outcome = (0, 1)
    made = marker.exists()
    if made:
        marker.unlink()
    return (*outcome, int(made))


def _tally(category, results):
    clean, escapes, markers = (sum(r[i] for r in results) for i in range(3))
    record(category, len(results), clean, escapes, markers=markers)
    assert markers == 0 and escapes == 0, (category, clean, escapes, markers)


# model files ------------------------------------------------------------------------------------------
def _model_file(tmp_path):
    x = mg.input_variable((2, 4, 4), name="x")
    y = mg.layers.Convolution((3, 3), 2, pad=True)(mg.reshape(x, (2, 4, 4)))
    y.save(tmp_path / "model.mgm")
    return (tmp_path / "model.mgm").read_bytes()


def _text_places(manifest):
    """Paths to every string and number in a manifest a payload may replace."""
    return [p for p in json_paths(manifest, leaves_only=True) if p[0] != "format"]


def _replaced(manifest, path, text):
    out = json.loads(json.dumps(manifest))
    target = out
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = text
    return out


def test_payloads_in_model_files_never_run(tmp_path):
    marker = tmp_path / "pwned"
    data = _model_file(tmp_path)
    manifest = manifest_of(data)
    results = []
    path = tmp_path / "payload.mgm"
    for text in _texts(marker):
        for place in _text_places(manifest):  # every name, dim text, attribute, op name, dtype...
            path.write_bytes(with_manifest(data, json.dumps(_replaced(manifest, place, text))))
            results.append(_attempt(lambda: mg.load_model(path), marker))
        items = entries(data)  # an object array whose pickle would create the marker
        pickled = pickle.dumps(np.array([_Touch(str(marker))], dtype=object), protocol=2)
        for i, (name, _) in enumerate(items):
            if name.endswith(".npy"):
                path.write_bytes(pack(items[:i] + [(name, raw_npy(
                    "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", pickled))] + items[i + 1:]))
                results.append(_attempt(lambda: mg.load_model(path), marker))
    _tally("code payloads: load_model", results)


# checkpoints --------------------------------------------------------------------------------------------
def test_payloads_in_checkpoints_never_run(tmp_path):
    marker = tmp_path / "pwned"
    x = mg.input_variable((3,), name="x")
    t = mg.input_variable((2,), name="t")
    y = mg.layers.Dense(2, init=mg.initializers.glorot_uniform(seed=0))(x)
    trainer = mg.Trainer(y, mg.squared_error(y, t), mg.learners.adam(y.parameters, 0.01))
    trainer.train_minibatch({x: np.ones((2, 3), np.float32), t: np.zeros((2, 2), np.float32)})
    trainer.save_checkpoint(tmp_path / "ck")
    data = (tmp_path / "ck").read_bytes()
    manifest = manifest_of(data)
    path = tmp_path / "payload.ckpt"
    results = []
    for text in _texts(marker):
        for place in _text_places(manifest):  # names, shapes, dtypes, learner names, random state...
            path.write_bytes(with_manifest(data, json.dumps(_replaced(manifest, place, text))))
            results.append(_attempt(lambda: trainer.restore_from_checkpoint(path), marker))
    _tally("code payloads: restore_from_checkpoint", results)


# specs ----------------------------------------------------------------------------------------------------
SPEC = {"name": "net", "input": {"shape": [1, "H", 8], "name": "x", "dtype": "float32"},
        "layer": [{"type": "Convolution", "filter_shape": [3, 3], "num_filters": 2, "pad": True,
                   "activation": "relu", "init": {"type": "he_normal", "seed": 1}},
                  {"type": "Reshape", "shape": [2, "H", 8]}, {"type": "Dense", "shape": 3, "init": "glorot_uniform"}]}


def _spec_variants(text):
    for place in _text_places(SPEC):
        yield _replaced(SPEC, place, text)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_payloads_in_specs_never_run(tmp_path, suffix):
    marker = tmp_path / "pwned"
    path = tmp_path / f"payload{suffix}"
    results = []
    for text in _texts(marker):
        for spec in _spec_variants(text):
            path.write_text(json.dumps(spec) if suffix == ".json" else dumps_toml(spec))
            results.append(_attempt(lambda: from_spec(path), marker))
    _tally(f"code payloads: from_spec ({suffix[1:].upper()})", results)


_CLI = """
import contextlib, io, json, runpy, sys
results = []
for path in sys.argv[1:]:
    sys.argv = ["minigraph", "summary", path]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            runpy.run_module("minigraph", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def test_payloads_through_the_command_line_never_run(tmp_path):
    """``python -m minigraph summary FILE`` (the same module run as ``__main__``, one process for all
    files) on specs carrying a payload in a dimension text, the layer type and the activation."""
    marker = tmp_path / "pwned"
    paths = []
    for k, text in enumerate(_texts(marker)):
        for j, place in enumerate([("input", "shape", 1), ("layer", 0, "type"), ("layer", 0, "activation")]):
            paths.append(tmp_path / f"payload{k}_{j}.toml")
            paths[-1].write_text(dumps_toml(_replaced(SPEC, place, text)))
    out = subprocess.run([sys.executable, "-c", _CLI, *map(str, paths)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    results = []
    for path, (code, err) in zip(paths, json.loads(out.stdout.strip().splitlines()[-1])):
        clean = code not in (0, None) and err.startswith("minigraph summary: error:") and path.name in err
        results.append((int(clean), int(not clean), int(marker.exists())))
        if marker.exists():
            marker.unlink()
    _tally("code payloads: CLI summary", results)


def test_payloads_in_onnx_files_never_run(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    marker = tmp_path / "pwned"
    results = []
    for text in _texts(marker):
        for dims, op, attrs in ((["N", 3, text], "Relu", {}), (["N", 3, 4], text, {}),
                                (["N", 3, 4], "Softmax", {"axis": text}), (["N", 3, 4], "Relu", {text: 1})):
            x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
            out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
            graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], "g", [x], [out])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
            onnx.save(model, str(tmp_path / "payload.onnx"))
            results.append(_attempt(lambda: mg.import_onnx(str(tmp_path / "payload.onnx")), marker))
    _tally("code payloads: import_onnx", results)


def test_the_marker_would_appear_if_the_text_were_evaluated(tmp_path):
    """The payloads are live: given to Python's exec or to sympy's parse_expr (what dimension text
    once went through), each one creates the marker."""
    import sympy
    marker = tmp_path / "pwned"
    for text in _texts(marker):
        for run in (exec, sympy.parse_expr):
            try:
                run(text, {"H": 1}) if run is exec else run(text)
            except TypeError:  # H + None: the marker is made before the addition fails
                pass
            assert marker.exists(), text
            os.unlink(marker)
