"""Declarative specs: round trips (TOML, JSON, dict), the generator example, and error messages."""
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigraph as mg
from minigraph import layers as L
from minigraph.layers.spec import tomllib  # the standard library's, or tomli on Python 3.10

SPECS = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "specs")

EVERY_LAYER = {
    "name": "everything",
    "input": {"shape": [3, "H", "W"], "name": "x", "dtype": "float64"},
    "layer": [
        {"type": "Convolution2D", "filter_shape": 3, "num_filters": 8, "pad": True, "activation": "relu",
         "init": {"type": "he_normal", "seed": 3}, "name": "c1"},
        {"type": "BatchNormalization", "map_rank": 1, "momentum": 0.1},
        {"type": "MaxPooling", "filter_shape": [2, 2], "strides": 2, "pad": True},
        {"type": "Sequential", "name": "block", "layers": [
            {"type": "ConvolutionTranspose", "filter_shape": [3, 3], "num_filters": 4, "strides": [2, 1],
             "pad": [True, False], "init": "glorot_normal", "init_bias": 0.1, "max_temp_mem_size_in_samples": 4},
            {"type": "LayerNormalization", "epsilon": 0.001},
            {"type": "Activation", "activation": "tanh"},
        ]},
        {"type": "Dropout", "dropout_rate": 0.25},
        {"type": "AveragePooling", "filter_shape": [2, 2], "pad": True},
        {"type": "ConvolutionTranspose", "filter_shape": [2, 2], "num_filters": [], "reduction_rank": 1,
         "init": 0.5, "bias": False},
        {"type": "Identity"},
    ],
}


@pytest.mark.parametrize("name", ["generator.toml", "generator.json"])
def test_generator_example_round_trips_and_runs(name):
    path = os.path.join(SPECS, name)
    spec, where = L.load_spec(path)
    assert where == name
    img = L.from_spec(path)
    assert img.shape == (1, 8, 8) and img.arguments[0].name == "z" and img.name == "up2"
    assert L.to_spec(img) == spec
    z = img.arguments[0]
    y = img.eval({z: np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)})
    assert y.shape == (3, 1, 8, 8) and 0 <= y.min() and y.max() <= 1
    grads = mg.reduce_sum(img).grad({z: np.ones((2, 16), np.float32)})
    assert len(grads) == 6 and all(np.isfinite(g).all() for g in grads.values())


def test_python_generator_equals_the_toml_spec():
    import importlib.util
    module_spec = importlib.util.spec_from_file_location("generator_example", os.path.join(SPECS, "generator.py"))
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    img = module.generator()(mg.input_variable(16, name="z"))
    assert L.to_spec(img) == L.load_spec(os.path.join(SPECS, "generator.toml"))[0]


def test_every_layer_type_round_trips():
    net = L.from_spec(EVERY_LAYER)
    assert [d.names for d in net.shape] == [("H",), ("W",)]
    assert [d.subs({"H": 6, "W": 5}) for d in net.shape] == [6, 6]
    assert L.to_spec(net) == EVERY_LAYER
    out = net.eval({"x": np.ones((2, 3, 6, 5))})
    assert out.shape == (2, 6, 6) and out.dtype == np.float64


@pytest.mark.parametrize("ext", [".toml", ".json"])
def test_write_and_read_back(tmp_path, ext):
    path = tmp_path / f"net{ext}"
    spec = L.to_spec(L.from_spec(EVERY_LAYER), path)
    text = path.read_text()
    assert (json.loads(text) if ext == ".json" else tomllib.loads(text)) == spec == EVERY_LAYER
    assert L.to_spec(L.from_spec(path)) == EVERY_LAYER


def test_dumps_toml_layout_and_values():
    text = L.dumps_toml({"name": "g", "input": {"shape": [16]}, "layer": [
        {"type": "Dense", "shape": [4], "init": {"type": "he_normal", "scale": 2.0}, "init_bias": float("inf"),
         "weird key": "a \"quoted\" value"}]})
    assert text.splitlines()[:5] == ['name = "g"', "", "[input]", "shape = [16]", ""]
    assert "[[layer]]" in text and 'init = { type = "he_normal", scale = 2.0 }' in text
    back = tomllib.loads(text)
    assert back["layer"][0]["weird key"] == 'a "quoted" value' and back["layer"][0]["init_bias"] == float("inf")


def test_python_model_to_spec_and_back():
    x = mg.input_variable((1, 4, 4), name="x")
    y = L.Sequential([L.ConvolutionTranspose((3, 3), 2, init=mg.initializers.he_uniform(scale=2.0, seed=1)),
                      L.Flatten(), L.Dense(3, activation=mg.sigmoid)])(x)
    spec = L.to_spec(y)
    assert spec["layer"][0]["init"] == {"type": "he_uniform", "scale": 2.0, "seed": 1}
    assert spec["layer"][2] == {"type": "Dense", "shape": 3, "activation": "sigmoid"}
    assert L.to_spec(L.from_spec(spec)) == spec


def test_to_spec_of_layers_without_a_sequential():
    x = mg.input_variable(4)
    y = L.Dense(2, name="b")(L.Dense(3, name="a")(x))
    assert [t["name"] for t in L.to_spec(y)["layer"]] == ["a", "b"]


def test_to_spec_rejects_what_a_spec_cannot_say():
    x = mg.input_variable(4)
    with pytest.raises(mg.SpecError, match="was not built by a layer"):
        L.to_spec(mg.relu(L.Dense(3)(x)))
    with pytest.raises(mg.SpecError, match="cannot be written in a spec"):
        L.to_spec(L.Dense(3, activation=lambda v: v * 2)(x))
    with pytest.raises(mg.SpecError, match="2 inputs"):
        L.to_spec(L.Dense(3)(x) + L.Dense(3)(mg.input_variable(4)))


def test_to_spec_rejects_a_layer_called_twice():
    """Two calls share one layer's weights, which a spec (one layer per table) cannot say."""
    d = L.Dense(4, name="shared")
    with pytest.raises(mg.SpecError, match="Dense 'shared' is called more than once"):
        L.to_spec(d(d(mg.input_variable(4))))
    inner = L.Dense(4, name="inner")
    with pytest.raises(mg.SpecError, match="Dense 'inner' is called more than once"):
        L.to_spec(L.Sequential([inner, inner])(mg.input_variable(4)))


BAD = [
    ({"layer": [{"type": "Dense", "shape": 3}]}, r"spec: missing \[input\] table"),
    ({"input": {"shape": [4]}}, "no layers"),
    ({"input": {"shape": [4]}, "layers": []}, r"spec: top level: unknown key 'layers'; did you mean 'layer'"),
    ({"input": {"shap": [4]}, "layer": [{"type": "Dense", "shape": 3}]}, r"missing \[input\] table"),
    ({"input": {"shape": [4], "dtyp": "float64"}, "layer": [{"type": "Dense", "shape": 3}]},
     r"\[input\]: unknown key 'dtyp'; did you mean 'dtype'"),
    ({"input": {"shape": [4], "dtype": "int8"}, "layer": [{"type": "Dense", "shape": 3}]}, r"\[input\]: dtype"),
    ({"input": {"shape": [4]}, "layer": [{"shape": 3}]}, "spec: layer 1: missing 'type'"),
    ({"input": {"shape": [4]}, "layer": [{"type": "Dense", "shape": 3}, {"type": "Dens", "shape": 3}]},
     r"spec: layer 2: unknown layer type 'Dens'; did you mean 'Dense'"),
    ({"input": {"shape": [4]}, "layer": [{"type": "Dense", "shape": 3, "activaton": "relu"}]},
     r"spec: layer 1 \(Dense\): unknown argument 'activaton'; did you mean 'activation'"),
    ({"input": {"shape": [4]}, "layer": [{"type": "Dense", "shape": 3, "activation": "rellu"}]},
     r"spec: layer 1 \(Dense\): .*unknown activation 'rellu'; did you mean 'relu'"),
    ({"input": {"shape": [4]}, "layer": [{"type": "Dense", "shape": 3, "init": "glorot"}]},
     r"spec: layer 1 \(Dense\): init: unknown initializer 'glorot'; did you mean 'glorot_normal'"),
    ({"input": {"shape": [4]}, "layer": [{"type": "Dense", "shape": 3, "init": {"type": "he_normal", "sale": 2}}]},
     r"init \(he_normal\): unknown key 'sale'; did you mean 'scale'"),
    ({"input": {"shape": [1, 4, 4]}, "layer": [{"type": "ConvolutionTranspose", "filter_shape": [3, 3],
                                                 "strides": "2"}]}, r"layer 1 \(ConvolutionTranspose\): .*strides"),
    ({"input": {"shape": [1, 4, 4]}, "layer": [{"type": "ConvolutionTranspose", "filter_shape": [3, 3],
                                                 "pad": 1}]}, r"layer 1 \(ConvolutionTranspose\): .*pad"),
    ({"input": {"shape": [1, 4, 4]}, "layer": [{"type": "ConvolutionTranspose", "num_filters": 2}]},
     r"layer 1 \(ConvolutionTranspose\): .*filter_shape"),
    ({"input": {"shape": [4]}, "layer": [{"type": "Dense", "shape": [1, 2, 2]},
                                         {"type": "ConvolutionTranspose", "filter_shape": [3, 3], "strides": 2,
                                          "pad": True, "output_shape": [9, 9], "num_filters": 1}]},
     r"(?s)spec: layer 2 \(ConvolutionTranspose\): .*valid output sizes on axis 0: 3, 4"),
    ({"input": {"shape": [4]}, "layer": [{"type": "Sequential", "layers": [{"type": "Dense", "shape": 3},
                                                                          {"type": "Dense", "shap": 3}]}]},
     r"spec: layer 1 \(Sequential\), layer 2 \(Dense\): unknown argument 'shap'; did you mean 'shape'"),
]


@pytest.mark.parametrize("spec,match", BAD)
def test_bad_specs_name_the_layer_and_the_closest_name(spec, match):
    with pytest.raises(mg.SpecError, match=match):
        L.from_spec(spec)


def test_bad_files_are_named(tmp_path):
    bad_toml = tmp_path / "broken.toml"
    bad_toml.write_text("[input\nshape = [4]\n")
    with pytest.raises(mg.SpecError, match="broken.toml: not valid TOML"):
        L.from_spec(bad_toml)
    typo = tmp_path / "typo.toml"
    typo.write_text('[input]\nshape = [4]\n\n[[layer]]\ntype = "Dense"\nshape = 3\nbais = false\n')
    with pytest.raises(mg.SpecError,
                       match=r"typo.toml: layer 1 \(Dense\): unknown argument 'bais'; did you mean 'bias'"):
        L.from_spec(typo)
    with pytest.raises(TypeError, match="path"):
        L.from_spec(42)
    missing = tmp_path / "missing.toml"
    with pytest.raises(FileNotFoundError, match="missing.toml") as info:   # like load_model: the OSError
        L.from_spec(missing)
    assert info.value.filename == str(missing)


@pytest.mark.parametrize("init", [[[1, 2], [3]], ["a"]])
def test_bad_init_arrays_name_the_file_layer_and_argument(tmp_path, init):
    spec = {"input": {"shape": [2]}, "layer": [{"type": "Dense", "shape": 2},
                                               {"type": "Dense", "shape": 2, "init": init}]}
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(mg.SpecError, match=r"net.json: layer 2 \(Dense\): init: .* is not an array of numbers"):
        L.from_spec(path)


@settings(deadline=None)
@given(st.data())
def test_random_convolution_transpose_specs_round_trip_and_build(data):
    rank = data.draw(st.integers(1, 3))
    table = {"type": "ConvolutionTranspose",
             "filter_shape": data.draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)),
             "strides": data.draw(st.one_of(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=rank,
                                                                         max_size=rank))),
             "pad": data.draw(st.one_of(st.booleans(), st.lists(st.booleans(), min_size=rank, max_size=rank)))}
    depth = data.draw(st.sampled_from([None, [], 3]))
    if depth is not None:
        table["num_filters"] = depth
    if data.draw(st.booleans()):
        table["reduction_rank"] = 0
    if data.draw(st.booleans()):
        table["activation"] = data.draw(st.sampled_from(["relu", "tanh", "sigmoid"]))
    n = data.draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    in_shape = n if table.get("reduction_rank") == 0 else [2, *n]
    spec = {"input": {"shape": in_shape}, "layer": [table]}
    net = L.from_spec(spec)
    assert L.to_spec(net) == spec
    strides = table["strides"] if isinstance(table["strides"], list) else [table["strides"]] * rank
    pads = table["pad"] if isinstance(table["pad"], list) else [table["pad"]] * rank
    sizes = [(m - 1) * s + (1 if p else k) for m, s, p, k in zip(n, strides, pads, table["filter_shape"])]
    assert net.shape == ((3,) if depth == 3 else ()) + tuple(sizes)
