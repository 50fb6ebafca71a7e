"""Smoke runs of every example in ``--quick --steps`` small mode: they run, write what they promise,
and the model files they save load back and run."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import minigraph as mg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(name, out, steps=10):
    cmd = [sys.executable, os.path.join(ROOT, "examples", name), "--quick", "--steps", str(steps), "--out", str(out),
           "--no-progress"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "quality.json") as fh:
        return done.stdout, json.load(fh)


def test_gan_digits(tmp_path):
    stdout, report = _run("gan_digits.py", tmp_path)
    for f in ("samples.png", "samples.npy", "loss.png", "generator.mgz"):
        assert (tmp_path / f).stat().st_size > 0, f
    assert (tmp_path / "graph.png").exists() or (tmp_path / "graph.dot").exists()
    samples = np.load(tmp_path / "samples.npy")
    assert samples.shape == (1000, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    assert report["steps"] == 10 and 0.1 <= report["confidence"] <= 1 and 0 <= report["classes_covered"] <= 10
    assert sum(report["class_counts"]) == 1000 and "mean classifier confidence" in stdout
    assert report["fid"] > report["real_digit_fid"] > 0 and "FID" in stdout
    generator = mg.load_model(tmp_path / "generator.mgz")
    z = np.random.default_rng(0).standard_normal((5, generator.arguments[0].shape[0])).astype(np.float32)
    images = generator.eval({"z": z})
    assert images.shape == (5, 1, 8, 8) and np.all((images >= 0) & (images <= 1))


def test_autoencoder_digits(tmp_path):
    stdout, report = _run("autoencoder_digits.py", tmp_path)
    for f in ("reconstructions.png", "loss.png", "autoencoder.mgz"):
        assert (tmp_path / f).stat().st_size > 0, f
    assert report["steps"] >= 10 and 0 < report["held_out_mse"] < 0.25 and "reconstruction MSE" in stdout
    model = mg.load_model(tmp_path / "autoencoder.mgz")
    assert model.eval({"image": np.zeros((2, 1, 8, 8), np.float32)}).shape == (2, 1, 8, 8)


def test_wave1d(tmp_path):
    stdout, report = _run("wave1d.py", tmp_path)
    for f in ("waves.png", "loss.png", "wave_generator.mgz"):
        assert (tmp_path / f).stat().st_size > 0, f
    assert report["steps"] >= 10 and report["held_out_mse"] > 0 and "R^2" in stdout
    model = mg.load_model(tmp_path / "wave_generator.mgz")
    assert model.eval({"code": np.zeros((3, 3), np.float32)}).shape == (3, 1, 32)


@pytest.mark.parametrize("name", ["gan_digits.py", "autoencoder_digits.py", "wave1d.py"])
@pytest.mark.parametrize("option", ["--steps", "--threads"])
def test_bad_counts_are_rejected(name, option, tmp_path):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name), option, "0", "--out", str(tmp_path)],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and f"{option} must be positive" in done.stderr
