"""examples/gan_images.py: writes the digits as PNG class folders, trains the DCGAN on a folder of
images (grey or colour, any size) and writes a sample grid and a generator that loads back."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

import minigraph as mg  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    cmd = [sys.executable, os.path.join(ROOT, "examples", "gan_images.py"), "--no-progress", *map(str, args)]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_digits_written_as_png_then_trained_on(tmp_path):
    digits, out = tmp_path / "digits", tmp_path / "out"
    assert "wrote 1797 PNG files" in _run("--write-digits", digits)
    assert sorted(os.listdir(digits)) == [str(d) for d in range(10)]
    first = np.asarray(Image.open(digits / "0" / "0000.png"))
    assert first.shape == (8, 8) and first.dtype == np.uint8 and first.max() > 200
    stdout = _run("--data", digits, "--size", 8, "--channels", 3, "--steps", 6, "--batch", 16, "--out", out)
    assert "1797 images, 3x8x8" in stdout
    report = json.loads((out / "quality.json").read_text())
    assert report["steps"] == 6 and report["channels"] == 3 and report["epochs"] == pytest.approx(6 * 16 / 1797)
    grid = Image.open(out / "samples.png")
    assert grid.mode == "RGB" and grid.size == (8 * 10 + 2, 8 * 10 + 2)  # 8 x 8 cells of 8 px + 2 px padding
    generator = mg.load_model(out / "generator.mgz")
    images = generator.eval({"z": np.zeros((2, 32), np.float32)})
    assert images.shape == (2, 3, 8, 8) and np.all((images >= 0) & (images <= 1))


def test_a_flat_folder_of_own_pictures_of_mixed_sizes(tmp_path):
    rng = np.random.default_rng(0)
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i, (w, h) in enumerate([(20, 14), (9, 9), (31, 17)] * 4):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(pictures / f"photo{i}.jpg")
    out = tmp_path / "out"
    _run("--data", pictures, "--size", 12, "--steps", 3, "--batch", 8, "--out", out)
    assert Image.open(out / "samples.png").size == (8 * 14 + 2, 8 * 14 + 2)
    assert json.loads((out / "quality.json").read_text())["channels"] == 3


def test_bad_folder_is_one_clear_error(tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, "examples", "gan_images.py"), "--data", str(tmp_path / "none"),
           "--out", str(tmp_path / "out")]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "DataError" in done.stderr and "does not exist" in done.stderr
