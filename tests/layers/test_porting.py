"""What a PyTorch user porting a model by hand meets in the layers: explicit pads (and a message
naming them when ``pad=1`` is written), Sequential as a container, readable printing, and
activations with arguments in specs."""
import functools

import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L


@pytest.mark.parametrize("layer, shape, want", [
    (L.ConvolutionTranspose((4, 4), 2, strides=2, lower_pad=1, upper_pad=1), (3, 8, 8), (2, 16, 16)),
    (L.ConvolutionTranspose2D(4, 2, strides=2, lower_pad=(1, 0), upper_pad=(1, 3)), (3, 5, 5), (2, 10, 9)),
    (L.ConvolutionTranspose1D(3, 2, strides=2, lower_pad=1), (3, 5), (2, 10)),  # upper_pad defaults to 0
    (L.Convolution((3, 3), 4, lower_pad=1, upper_pad=1), (3, 7, 6), (4, 7, 6)),
    (L.Convolution2D(4, 4, strides=2, lower_pad=1, upper_pad=1), (3, 64, 64), (4, 32, 32)),
    (L.Convolution((3, 3), 4, lower_pad=(2, 0), upper_pad=(0, 1)), (3, 6, 6), (4, 6, 5)),
])
def test_explicit_pads(layer, shape, want):
    y = layer(mg.input_variable(shape))
    assert y.shape == want
    conv = next(n for n in y.topological_order() if n.op_name.startswith("Convolution"))
    lower = layer.lower_pad
    assert conv.attributes["lower_pad"] == lower


def test_explicit_pads_match_the_op():
    rng = np.random.default_rng(0)
    x = mg.input_variable((3, 5, 6))
    layer = L.ConvolutionTranspose((3, 3), 2, strides=2, lower_pad=(1, 2), upper_pad=(0, 1), bias=False)
    y = layer(x)
    a = rng.normal(size=(2, 3, 5, 6)).astype(np.float32)
    want = mg.convolution_transpose(layer.W, x, strides=2, lower_pad=(1, 2), upper_pad=(0, 1))
    np.testing.assert_array_equal(y.eval({x: a}), want.eval({x: a}))


@pytest.mark.parametrize("make", [lambda: L.ConvolutionTranspose((4, 4), 2, pad=1),
                                  lambda: L.Convolution2D(3, 2, pad=(1, 1))])
def test_pad_as_a_size_names_the_pytorch_spelling(make):
    with pytest.raises(ValueError, match=r"not a size.*lower_pad=.*upper_pad=.*pad=True, output_shape=2n"):
        make()


@pytest.mark.parametrize("kwargs, error", [
    ({"lower_pad": -1}, ValueError), ({"lower_pad": 1.5}, TypeError), ({"upper_pad": (1, 2, 3)}, ValueError),
    ({"pad": True, "lower_pad": 1}, ValueError),
])
def test_bad_explicit_pads(kwargs, error):
    with pytest.raises(error):
        L.ConvolutionTranspose((3, 3), 2, **kwargs)


def test_explicit_pads_round_trip_through_specs():
    x = mg.input_variable((3, 4, 4), name="x")
    y = L.Sequential([L.ConvolutionTranspose2D(4, 2, strides=2, lower_pad=1, upper_pad=1, name="up")])(x)
    spec = L.to_spec(y)
    assert spec["layer"][0]["lower_pad"] == 1
    assert L.from_spec(spec).shape == (2, 8, 8)


def generator():
    return L.Sequential([
        L.Dense((32, 2, 2), activation=mg.relu, name="fc"),
        [L.ConvolutionTranspose((3, 3), 8, strides=2, pad=True, output_shape=4, name="up1"), mg.relu],
        L.Sequential([L.BatchNormalization(map_rank=1, name="bn"),
                      L.ConvolutionTranspose2D(4, 1, strides=2, lower_pad=1, upper_pad=1, activation="sigmoid",
                                               name="up2")], name="head"),
    ], name="generator")


def test_sequential_is_a_container():
    gen = generator()
    assert len(gen) == 4
    assert gen[0].name == "fc" and gen[-1].name == "head" and gen[2] is mg.relu
    assert [getattr(layer, "name", None) for layer in gen] == ["fc", "up1", None, "head"]
    part = gen[1:3]
    assert isinstance(part, L.Sequential) and len(part) == 2 and part[0] is gen[1]
    assert gen[-1][1].name == "up2"
    with pytest.raises(IndexError, match="out of range for 4 layers"):
        gen[4]
    with pytest.raises(TypeError, match="int or a slice"):
        gen["fc"]


def test_printing_gives_one_line_per_layer():
    text = str(generator())
    assert text.splitlines() == [
        "Sequential 'generator' (4 layers)",
        "  (0) Dense 'fc'(shape=(32, 2, 2), activation=relu)",
        "  (1) ConvolutionTranspose 'up1'(filter_shape=(3, 3), num_filters=8, pad=True, strides=2, output_shape=4)",
        "  (2) relu",
        "  (3) Sequential 'head' (2 layers)",
        "        (0) BatchNormalization 'bn'(map_rank=1)",
        "        (1) ConvolutionTranspose2D 'up2'(filter_shape=4, num_filters=1, activation='sigmoid', strides=2, "
        "lower_pad=1, upper_pad=1)",
    ]
    assert repr(L.Dense(3, activation="relu")) == "Dense(shape=3, activation='relu')"


@pytest.mark.parametrize("activation", [{"type": "leaky_relu", "alpha": 0.2},
                                        functools.partial(mg.leaky_relu, alpha=0.2)])
def test_activation_with_arguments_round_trips_through_specs(activation, tmp_path):
    x = mg.input_variable((8,), name="x")
    y = L.Sequential([L.Dense(4, activation=activation, name="fc"),
                      L.Activation({"type": "leaky_relu", "alpha": 0.1}, name="act")])(x)
    spec = L.to_spec(y)
    assert spec["layer"][0]["activation"] == {"type": "leaky_relu", "alpha": 0.2}
    assert spec["layer"][1]["activation"] == {"type": "leaky_relu", "alpha": 0.1}
    path = tmp_path / "net.toml"
    path.write_text('[input]\nshape = [8]\n\n[[layer]]\ntype = "Dense"\nshape = 4\n'
                    'activation = {type = "leaky_relu", alpha = 0.2}\n')
    again = L.from_spec(path)
    leaky = next(n for n in again.topological_order() if n.op_name == "LeakyReLU")
    assert leaky.attributes["alpha"] == 0.2
    assert L.to_spec(again)["layer"][0]["activation"] == {"type": "leaky_relu", "alpha": 0.2}


@pytest.mark.parametrize("table, message", [
    ({"type": "leaky_relu", "beta": 1}, "no argument 'beta'; leaky_relu takes alpha"),
    ({"type": "leaky_rel", "alpha": 1}, "did you mean 'leaky_relu'"),
    ({"type": "relu", "alpha": 1}, "relu takes no arguments"),
    ({"alpha": 1}, "needs type"),
    ({"type": "leaky_relu", "alpha": "__import__('os')"}, "must be a number"),
])
def test_bad_activation_tables(table, message):
    with pytest.raises((ValueError, TypeError), match=message):
        L.Dense(3, activation=table)
