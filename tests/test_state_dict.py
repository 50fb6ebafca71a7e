"""Weights by name: state_dict / load_state_dict, and a PyTorch state_dict ported by hand (the README's
mapping) gives PyTorch's outputs."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L


def small_generator():
    gen = L.Sequential([
        L.Dense((8, 2, 2), activation=mg.relu, name="fc"),
        L.ConvolutionTranspose2D(4, 4, strides=2, lower_pad=1, upper_pad=1, name="up1"),
        L.BatchNormalization(map_rank=1, name="bn1"),
        L.ConvolutionTranspose2D(4, 1, strides=2, lower_pad=1, upper_pad=1, activation=mg.tanh, name="up2"),
    ], name="generator")
    return gen(mg.input_variable(6, name="z"))


NAMES = ["generator/fc/W", "generator/fc/b", "generator/up1/W", "generator/up1/b", "generator/bn1/scale",
         "generator/bn1/bias", "generator/bn1/running_mean", "generator/bn1/running_var", "generator/up2/W",
         "generator/up2/b"]


def test_names_are_scoped_unique_and_stable():
    y = small_generator()
    d = y.state_dict()
    assert list(d) == NAMES
    assert list(small_generator().state_dict()) == NAMES
    assert d["generator/up1/W"].shape == (8, 4, 4, 4)


def test_state_dict_holds_copies_and_loading_copies():
    y = small_generator()
    d = y.state_dict()
    d["generator/fc/b"][...] = 7.0
    fc_b = next(p for p in y.parameters if p.value.shape == (8, 2, 2))
    assert not np.any(fc_b.value == 7.0)
    y.load_state_dict(d)
    assert np.all(fc_b.value == 7.0)
    d["generator/fc/b"][...] = 1.0
    assert np.all(fc_b.value == 7.0)


def test_load_into_a_second_model_gives_the_same_outputs():
    a, b = small_generator(), small_generator()
    for p in a.parameters:
        p.value = np.random.default_rng(p.uid).normal(size=p.shape)
    b.load_state_dict(a.state_dict())
    z = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    np.testing.assert_array_equal(a.eval({a.arguments[0]: z}), b.eval({b.arguments[0]: z}))


def test_strict_reports_missing_and_unexpected_and_changes_nothing():
    y = small_generator()
    before = y.state_dict()
    d = dict(before)
    d.pop("generator/up2/b")
    d["generator/up3/W"] = np.zeros(3)
    d["generator/fc/W"] = np.ones_like(d["generator/fc/W"])
    with pytest.raises(mg.GraphError, match=r"missing names \['generator/up2/b'\], unexpected names "
                                            r"\['generator/up3/W'\]"):
        y.load_state_dict(d)
    result = y.load_state_dict(d, strict=False)
    assert result.missing_keys == ["generator/up2/b"] and result.unexpected_keys == ["generator/up3/W"]
    np.testing.assert_array_equal(y.state_dict()["generator/fc/W"], 1.0)


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((8, 4, 4)), mg.ShapeError, r"'generator/up1/W' has shape \(8, 4, 4\).*has shape \(8, 4, 4, 4\)"),
    (np.full((8, 4, 4, 4), np.nan), ValueError, "NaN"),
    ("weights", TypeError, "expected numbers"),
])
def test_bad_arrays_change_nothing(bad, error, message):
    y = small_generator()
    before = y.state_dict()
    d = {k: v + 1 for k, v in before.items()}
    d["generator/up1/W"] = bad
    with pytest.raises(error, match=message):
        y.load_state_dict(d)
    for k, v in y.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_parameters_outside_layers_keep_their_names():
    x = mg.input_variable(3)
    w = mg.parameter((3, 2), name="main.0.weight")
    assert list(mg.times(x, w).state_dict()) == ["main.0.weight"]
    twin = mg.times(x, w) + mg.times(x, mg.parameter((3, 2), name="main.0.weight"))
    assert list(twin.state_dict()) == ["main.0.weight", "main.0.weight_1"]


# a PyTorch state_dict ported by hand ------------------------------------------------------------------
torch = pytest.importorskip("torch")
nn = torch.nn
NZ, NGF, NC = 16, 8, 3


def torch_generator():
    """PyTorch's DCGAN generator (examples/dcgan/main.py), narrower."""
    return nn.Sequential(
        nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(NGF * 8), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 4), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 2), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF), nn.ReLU(True),
        nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False), nn.Tanh())


def minigraph_generator():
    """The same architecture in minigraph layers (the README's "Bringing a model in")."""
    layers = [L.ConvolutionTranspose2D(4, NGF * 8, bias=False, name="up0"),
              L.BatchNormalization(map_rank=1, name="bn0"), mg.relu]
    for i, width in enumerate((NGF * 4, NGF * 2, NGF), start=1):
        layers += [L.ConvolutionTranspose2D(4, width, strides=2, lower_pad=1, upper_pad=1, bias=False, name=f"up{i}"),
                   L.BatchNormalization(map_rank=1, name=f"bn{i}"), mg.relu]
    layers.append(L.ConvolutionTranspose2D(4, NC, strides=2, lower_pad=1, upper_pad=1, bias=False,
                                           activation=mg.tanh, name="out"))
    return L.Sequential(layers, name="generator")(mg.input_variable((NZ, 1, 1), name="z"))


def port(torch_state: dict) -> dict:
    """PyTorch names -> minigraph names: same kernel layouts (ConvTranspose2d's (in, out, kH, kW) is
    ConvolutionTranspose's W; no flip); BatchNorm2d's weight/bias are scale/bias; num_batches_tracked
    has no counterpart."""
    convs = {0: "up0", 3: "up1", 6: "up2", 9: "up3", 12: "out"}
    norms = {1: "bn0", 4: "bn1", 7: "bn2", 10: "bn3"}
    rename = {"weight": "scale", "bias": "bias", "running_mean": "running_mean", "running_var": "running_var"}
    out = {}
    for key, value in torch_state.items():
        index, field = key.split(".", 1)
        if int(index) in convs:
            out[f"generator/{convs[int(index)]}/W"] = value.numpy()
        elif field in rename:
            out[f"generator/{norms[int(index)]}/{rename[field]}"] = value.numpy()
    return out


def test_a_pytorch_state_dict_ported_by_hand_gives_pytorch_outputs():
    torch.manual_seed(0)
    model = torch_generator()
    for m in model:
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 1.5)
    model.eval()
    y = minigraph_generator()
    y.load_state_dict(port(model.state_dict()))  # strict: every minigraph name is covered
    z = np.random.default_rng(1).normal(size=(3, NZ, 1, 1)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(z)).numpy()
    got = y.eval({y.arguments[0]: z})
    assert got.shape == want.shape == (3, NC, 64, 64)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
