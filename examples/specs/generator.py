"""The README's generator written in Python: the same network as generator.toml (and .json).

Run ``python examples/specs/generator.py``: prints the summary, samples a batch of 8x8 images and
checks that the Python network and the TOML spec describe the same layers.
"""
import os

import numpy as np

import minigraph as mg
from minigraph import layers as L


def generator() -> L.Sequential:
    """16-d noise -> (64, 2, 2) -> (32, 4, 4) -> (1, 8, 8) in [0, 1]."""
    return L.Sequential([
        L.Dense((64, 2, 2), activation=mg.relu, name="fc"),
        L.ConvolutionTranspose((3, 3), 32, strides=2, pad=True, output_shape=(4, 4), activation=mg.relu, name="up1"),
        L.ConvolutionTranspose((4, 4), 1, strides=2, pad=True, output_shape=(8, 8), activation=mg.sigmoid,
                               name="up2"),
    ], name="generator")


def main() -> None:
    mg.set_seed(0)
    z = mg.input_variable(16, name="z")
    images = generator()(z)
    print(images.summary())
    samples = images.eval({z: np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)})
    print("samples:", samples.shape, f"values in [{samples.min():.3f}, {samples.max():.3f}]")
    here = os.path.dirname(os.path.abspath(__file__))
    same = L.to_spec(images) == L.load_spec(os.path.join(here, "generator.toml"))[0]
    print("same network as generator.toml:", same)


if __name__ == "__main__":
    main()
