"""Seeded test data shared by the op and layer tests (float64 unless asked otherwise), and the small
generator network the summary, estimate and README tests describe.

``seed`` is an int or a ``numpy.random.Generator`` (a test that draws from one stream passes it).
"""
from __future__ import annotations

import numpy as np

import minigraph as mg
from minigraph import layers as L


def normal(shape, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Standard normal values of ``shape``."""
    return np.random.default_rng(seed).standard_normal(shape)


def uniform(shape, low: float = -1.0, high: float = 1.0, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Values drawn uniformly from ``[low, high)``."""
    return np.random.default_rng(seed).uniform(low, high, shape)


def spec_file(directory, text: str, name: str = "spec.toml") -> str:
    """Write the spec ``text`` to ``directory/name`` (a pytest ``tmp_path``); its path as a str."""
    path = directory / name
    path.write_text(text)
    return str(path)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``python -m minigraph ARGV`` in this process: ``(exit status, stdout, stderr)``."""
    from minigraph.cli import main
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def small_generator(fc_channels: int = 64, up1_filters: int = 32) -> mg.Function:
    """The README's generator: ``z`` (16) -> Dense ``fc`` to (fc_channels, 2, 2), relu -> 3x3 stride-2
    ConvolutionTranspose ``up1`` to (up1_filters, 4, 4), relu -> 4x4 stride-2 ``up2`` to (1, 8, 8), sigmoid."""
    z = mg.input_variable(16, name="z")
    return L.Sequential([
        L.Dense((fc_channels, 2, 2), activation=mg.relu, name="fc"),
        L.ConvolutionTranspose((3, 3), up1_filters, strides=2, pad=True, output_shape=(4, 4), activation=mg.relu,
                               name="up1"),
        L.ConvolutionTranspose((4, 4), 1, strides=2, pad=True, output_shape=(8, 8), activation=mg.sigmoid,
                               name="up2")], name="generator")(z)


__all__ = ["normal", "uniform", "spec_file", "run_cli", "small_generator"]
