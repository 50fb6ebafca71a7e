"""The README's summary, explain, lint and estimate outputs are what the code prints today."""
import pathlib

import minigraph as mg
from minigraph import layers as L

from helpers import small_generator

README = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_generator_outputs_are_current():
    images = small_generator()
    assert f"```\n{images.summary()}\n```" in README
    assert "\n".join(str(images.summary(batch=64)).splitlines()[7:10]) in README
    assert f"```\n{images.explain().layer('up2').axes[0]}\n```" in README
    assert f"```\n{mg.lint(images)}\n```" in README
    assert str(images.estimate(64, training=True)) in README


def test_readme_2n_minus_1_example_is_current():
    x = mg.input_variable((32, "H", "W"), name="x")
    up = L.ConvolutionTranspose((4, 4), 1, strides=2, pad=True, name="up")(x)
    assert str(up.shape) == "(1, 2*H - 1, 2*W - 1)"
    assert f"```\n{up.explain(bindings={'H': 4, 'W': 4}).axes[0]}\n```" in README
    assert f"```\n{mg.lint(up)}\n```" in README
