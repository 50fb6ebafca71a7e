"""Interrupted saves: whatever stops a write (an exception half-way, a failing rename or flush, a
read-only folder, a file-size limit), every file minigraph writes -- model files, checkpoints,
specs (TOML and JSON), pictures, ONNX -- is either completely new or exactly the previous file, and
no temporary file is left behind. Counts go to the reliability tally (``garbage``: a damaged file)."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minigraph as mg
import minigraph.files

from tally import record

L = mg.layers


def _network(width):
    x = mg.input_variable((3,), name="x")
    y = L.Sequential([L.Dense(width, activation="relu", init=mg.initializers.glorot_uniform(seed=width)),
                      L.Dense(2, init=mg.initializers.glorot_uniform(seed=1))])(x)
    return x, y


def _checkpoint(y, path):
    t = mg.input_variable((2,), name="t")
    trainer = mg.Trainer(y, mg.squared_error(y, t), mg.learners.momentum_sgd(y.parameters, 0.1, 0.9))
    trainer.train_minibatch({y.arguments[0]: np.ones((2, 3), np.float32), t: np.zeros((2, 2), np.float32)})
    trainer.save_checkpoint(path)


WRITERS = {
    "model file": lambda y, path: y.save(path),
    "checkpoint": _checkpoint,
    "spec (TOML)": lambda y, path: L.to_spec(y, path),
    "spec (JSON)": lambda y, path: L.to_spec(y, path),
    "picture (SVG)": lambda y, path: mg.plot(y, path),
    "DOT text": lambda y, path: mg.plot(y, path),
    "ONNX": lambda y, path: mg.export_onnx(y, path),
}
SUFFIX = {"model file": ".mgm", "checkpoint": ".ckpt", "spec (TOML)": ".toml", "spec (JSON)": ".json",
          "picture (SVG)": ".svg", "DOT text": ".dot", "ONNX": ".onnx"}


class _Failing:
    """A file object that raises ``error`` once ``budget`` bytes were written (a disk filling up)."""

    def __init__(self, fh, budget, error):
        self._fh, self._budget, self._error = fh, budget, error

    def write(self, data):
        if len(data) > self._budget:
            self._fh.write(bytes(data[:self._budget]))
            self._budget = 0
            raise self._error
        self._budget -= len(data)
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._fh.__exit__(*exc)


def _inject(monkeypatch, how):
    real_fdopen, real_replace = os.fdopen, os.replace
    if how == "exception mid-write":
        monkeypatch.setattr(minigraph.files.os, "fdopen",
                            lambda *a, **k: _Failing(real_fdopen(*a, **k), 40, RuntimeError("injected")))
    elif how == "disk full":
        monkeypatch.setattr(minigraph.files.os, "fdopen", lambda *a, **k: _Failing(
            real_fdopen(*a, **k), 0, OSError(errno.ENOSPC, "No space left on device")))
    elif how == "flush fails":
        def fsync(fd):
            raise OSError(errno.EIO, "Input/output error")
        monkeypatch.setattr(minigraph.files.os, "fsync", fsync)
    elif how == "rename fails":
        def replace(src, dst):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        monkeypatch.setattr(minigraph.files.os, "replace", replace)
    del real_replace


FAILURES = ["exception mid-write", "disk full", "flush fails", "rename fails"]


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_failed_save_leaves_the_previous_file(writer, tmp_path, monkeypatch):
    path = tmp_path / f"out{SUFFIX[writer]}"
    _, old = _network(4)
    WRITERS[writer](old, path)
    os.chmod(path, 0o600)
    before = path.read_bytes()
    _, new = _network(5)
    intact = 0
    for how in FAILURES:
        with monkeypatch.context() as m:
            _inject(m, how)
            with pytest.raises((OSError, RuntimeError)):
                WRITERS[writer](new, path)
        intact += path.read_bytes() == before and sorted(os.listdir(tmp_path)) == [path.name]
    WRITERS[writer](new, path)  # and without a failure the new file replaces it, permissions kept
    replaced = path.read_bytes() != before and os.stat(path).st_mode & 0o777 == 0o600
    record("interrupted saves: injected failures", len(FAILURES) + 1, intact + replaced,
           garbage=len(FAILURES) + 1 - intact - replaced)
    assert intact == len(FAILURES) and replaced


_CHILD = textwrap.dedent("""
    import json, os, resource, signal, sys
    import onnx  # imported before the limits: the lazy import would then run as 'nobody'
    import minigraph as mg
    sys.path.insert(0, {here!r})
    from test_interrupted_saves import SUFFIX, WRITERS, _network
    folder, mode, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    _, new = _network(64)
    if mode == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    else:
        os.setgid(65534), os.setuid(65534)  # root writes anywhere: drop to 'nobody' first
    outcome = {{}}
    for writer in sorted(WRITERS):
        try:
            WRITERS[writer](new, os.path.join(folder, "out" + SUFFIX[writer]))
            outcome[writer] = "written"
        except OSError as exc:
            outcome[writer] = "refused"
    print(json.dumps(outcome))
""")


@pytest.mark.parametrize("mode", ["fsize", "read-only folder"])
def test_limits_outside_python_leave_the_previous_file(mode, tmp_path):
    """A file-size limit (RLIMIT_FSIZE) smaller than every new file, or a folder the process may not
    write: each writer fails with OSError and the previous file is untouched."""
    if mode == "read-only folder" and os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")  # CI runs the container as root
    folder = tmp_path / "out"
    folder.mkdir()
    before = {}
    for writer in sorted(WRITERS):
        path = folder / f"out{SUFFIX[writer]}"
        _, old = _network(2)
        WRITERS[writer](old, path)
        before[writer] = path.read_bytes()
    limit = min(len(b) for b in before.values()) // 2
    os.chmod(tmp_path, 0o755)
    if mode != "fsize":
        os.chmod(folder, 0o555)
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), *sys.path])}
        out = subprocess.run([sys.executable, "-c", _CHILD.format(here=os.path.dirname(__file__)), str(folder), mode,
                              str(limit)], capture_output=True, text=True, env=env, timeout=300)
    finally:
        os.chmod(folder, 0o755)
    assert out.returncode == 0, out.stderr[-2000:]
    outcome = json.loads(out.stdout.strip().splitlines()[-1])
    names = sorted(os.listdir(folder))
    intact = sum(outcome[w] == "refused" and (folder / f"out{SUFFIX[w]}").read_bytes() == before[w] for w in WRITERS)
    leftovers = [n for n in names if n.endswith(".tmp")]
    record(f"interrupted saves: {mode}", len(WRITERS), intact, garbage=len(WRITERS) - intact)
    assert intact == len(WRITERS) and not leftovers, (outcome, leftovers)
