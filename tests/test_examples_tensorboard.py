"""The examples' ``--tensorboard DIR`` runs: what TensorBoard will show, read back with its event reader."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(name, out, *options):
    cmd = [sys.executable, os.path.join(ROOT, "examples", name), "--quick", "--out", str(out), "--no-progress",
           "--tensorboard", str(out / "tb"), *options]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-3000:]
    acc = event_accumulator.EventAccumulator(str(out / "tb"), size_guidance={
        event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0})
    acc.Reload()
    return acc


def _steps(acc, tag, kind="Scalars"):
    return [e.step for e in getattr(acc, kind)(tag)]


def test_gan_digits_run_has_both_losses_d_outputs_samples_and_graph(tmp_path):
    acc = _run("gan_digits.py", tmp_path, "--steps", "20", "--log-every", "5", "--image-every", "10", "--samples", "50")
    for tag in ("d_loss/minibatch/avg_loss", "g_loss/minibatch/avg_loss", "discriminator/D_real",
                "discriminator/D_fake"):
        assert _steps(acc, tag) == [5, 10, 15, 20], tag
    assert _steps(acc, "samples", "Images") == [1, 10, 20]
    assert any(n.name.startswith("generator/up1/") for n in acc.Graph().node)


def test_autoencoder_logs_reconstructions_and_wave1d_logs_curves(tmp_path):
    acc = _run("autoencoder_digits.py", tmp_path / "ae", "--steps", "10")
    assert _steps(acc, "reconstructions", "Images") == _steps(acc, "summary/avg_loss")
    assert _steps(acc, "summary/test_avg_loss")  # the held-out loss
    acc = _run("wave1d.py", tmp_path / "wave", "--steps", "10")
    assert _steps(acc, "minibatch/avg_loss") and _steps(acc, "minibatch/learning_rate")
    assert _steps(acc, "waves", "Images")


def test_bad_logging_frequencies_are_rejected(tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, "examples", "gan_digits.py"), "--steps", "2", "--out", str(tmp_path),
           "--log-every", "0"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--log-every must be positive" in done.stderr
