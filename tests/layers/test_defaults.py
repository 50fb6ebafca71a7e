"""default_options / default_options_for: CNTK's way of changing argument defaults for a block."""
import pytest

import minigraph as mg
from minigraph import layers as L


def test_options_apply_to_arguments_not_given():
    with L.default_options(activation=mg.relu, pad=True, init_bias=0.5):
        up = L.ConvolutionTranspose((3, 3), 2, strides=2)
        d = L.Dense(3)
    assert up.activation is mg.relu and up.pad == (True, True) and d.activation is mg.relu
    assert up(mg.input_variable((1, 4, 4))).shape == (2, 7, 7)
    assert float(d.b.value[0]) == 0.5


def test_explicit_arguments_win_and_inner_blocks_override():
    with L.default_options(activation=mg.relu):
        with L.default_options(activation=mg.tanh):
            inner = L.Dense(3)
        outer = L.Dense(3)
        explicit = L.Dense(3, activation=mg.sigmoid)
    after = L.Dense(3)
    assert inner.activation is mg.tanh and outer.activation is mg.relu and explicit.activation is mg.sigmoid
    assert after.activation is L.identity


def test_options_only_reach_layers_that_take_them():
    with L.default_options(pad=True):
        d = L.Dense(3)  # Dense has no pad: unaffected
        p = L.MaxPooling((2, 2))
    assert "pad" not in d.arguments and p.pad == (True, True)


def test_default_options_for_restricts_to_types_and_their_rank_variants():
    with L.default_options_for(L.ConvolutionTranspose, activation=mg.relu):
        up = L.ConvolutionTranspose2D(3, 1)
        conv = L.Convolution((3, 3), 1)
    assert up.activation is mg.relu and conv.activation is L.identity
    with pytest.raises(TypeError, match="not a layer type"), L.default_options_for("Dense", activation=mg.relu):
        pass


def test_unknown_option_is_an_error_with_a_suggestion():
    unknown = r"no layer takes an argument 'activaton'; did you mean 'activation'"
    with pytest.raises(TypeError, match=unknown), L.default_options(activaton=mg.relu):
        pass
    with pytest.raises(TypeError, match="none of Dense"), L.default_options_for(L.Dense, pad=True):
        pass


def test_options_are_recorded_in_specs():
    with L.default_options(pad=True, activation="relu"):
        up = L.ConvolutionTranspose((3, 3), 2, strides=2)
    spec = L.layer_spec(up)
    assert spec["pad"] is True and spec["activation"] == "relu"
