"""Random graphs of 1-D/2-D/3-D convolutions, transposed convolutions, pooling and elementwise ops,
each built twice: on symbolic sizes (``H``, ``W``, ``D``) and, for every size in a range that
includes the sizes it rejects, on the ints. Bound, the symbolic graph must give exactly what the
concrete graph gives: the same values, or a clean ShapeError for the same sizes (stating what the
graph needs, e.g. ``H >= 3``). Empty batches run through every graph.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigraph as mg

from tally import is_clean, record, scaled

NAMES = ("H", "W", "D")
PAD_MODES = (True, False, "valid", "same_upper", "same_lower", (0, 0), (1, 0), (0, 2), (2, 1))
POOL_MODES = (True, False, "same_upper", "same_lower")
SIZES = (1, 2, 3, 4, 5, 6)


@st.composite
def layer_specs(draw, rank: int):
    kind = draw(st.sampled_from(("conv", "conv_transpose", "max_pooling", "average_pooling")))
    per_axis = lambda values: tuple(draw(st.sampled_from(values)) for _ in range(rank))  # noqa: E731
    spec = {"kind": kind, "kernel": per_axis((1, 2, 3)), "strides": per_axis((1, 2, 3))}
    if kind.endswith("pooling"):
        spec["pad"] = list(per_axis(POOL_MODES))
        return spec
    spec["dilation"] = per_axis((1, 1, 2))
    spec["pad"] = draw(st.sampled_from(PAD_MODES))
    spec["out_channels"] = draw(st.integers(1, 3))
    spec["depthwise"] = draw(st.booleans())
    if kind == "conv_transpose" and draw(st.integers(0, 3)) == 0:
        spec["output_shape"] = per_axis((1, 2, 4, 7, 9))
    spec["relu"] = draw(st.booleans())
    spec["layer"] = draw(st.integers(0, 3)) == 0  # the layer (parameters, bias) rather than the op
    if spec["layer"]:
        spec["depthwise"] = False
        if kind == "conv_transpose":
            spec["dilation"] = (1,) * rank
        if not isinstance(spec["pad"], tuple):
            spec["pad"] = bool(spec["pad"] is True or spec["pad"] in ("same_upper", "same_lower"))
    return spec


@st.composite
def graph_specs(draw):
    rank = draw(st.integers(1, 3))
    return {"rank": rank, "channels": draw(st.integers(1, 3)),
            "layers": draw(st.lists(layer_specs(rank), min_size=1, max_size=3)),
            "sizes": draw(st.lists(st.tuples(*[st.sampled_from(SIZES)] * rank), min_size=5, max_size=5,
                                   unique=True)),
            "batch": draw(st.sampled_from((0, 1, 2))), "seed": draw(st.integers(0, 2**16))}


def build(spec: dict, x: mg.Variable, weights: dict) -> mg.Node:
    """The spec's graph on ``x``; ``weights`` (layer index -> array) is filled on first use, so both builds
    of one spec share their weights."""
    rng = np.random.default_rng(spec["seed"])
    y, channels = x, spec["channels"]
    for i, layer in enumerate(spec["layers"]):
        if layer["kind"].endswith("pooling"):
            pool = mg.max_pooling if layer["kind"] == "max_pooling" else mg.average_pooling
            y = pool(y, layer["kernel"], strides=layer["strides"], auto_padding=layer["pad"])
            continue
        groups = channels if layer["depthwise"] else 1
        out = layer["out_channels"] * groups
        transposed = layer["kind"] == "conv_transpose"
        shape = (channels, out // groups) if transposed else (out, channels // groups)
        w = weights.setdefault(i, rng.standard_normal(shape + layer["kernel"]))
        pads = ({"lower_pad": layer["pad"][0], "upper_pad": layer["pad"][1]} if isinstance(layer["pad"], tuple)
                else {"auto_padding": layer["pad"]})
        options = dict(strides=layer["strides"], dilation=layer["dilation"], groups=groups, **pads)
        if layer["layer"]:
            y = _layer(layer, out, spec["seed"] + i, pads)(y)
        elif transposed:
            y = mg.convolution_transpose(mg.constant(w), y, output_shape=layer.get("output_shape"), **options)
        else:
            y = mg.convolution(mg.constant(w), y, **options)
        if layer["relu"] and not layer["layer"]:
            y = mg.relu(y) + mg.constant(np.full((out,) + (1,) * spec["rank"], 0.5))
        channels = out
    return y


def _layer(layer: dict, out: int, seed: int, pads: dict) -> mg.layers.Layer:
    """The layer form of a convolution spec; its initializer's seed makes both builds' weights equal."""
    pads = {"pad": pads["auto_padding"]} if "auto_padding" in pads else pads
    common = dict(num_filters=out, strides=layer["strides"], init=mg.initializers.glorot_uniform(seed=seed),
                  init_bias=0.25, activation=mg.relu if layer["relu"] else mg.layers.identity, **pads)
    if layer["kind"] == "conv_transpose":
        return mg.layers.ConvolutionTranspose(layer["kernel"], output_shape=layer.get("output_shape"), **common)
    return mg.layers.Convolution(layer["kernel"], dilation=layer["dilation"], **common)


def run(make, feed_shape, seed):
    """``("value", array)``, or ``("refused", message, built)`` where ``built`` says whether the graph was
    built (and the feed refused); an escape is re-raised."""
    built = False
    try:
        x, y = make()
        built = True
        return "value", y.eval({x: np.random.default_rng(seed).standard_normal(feed_shape)}), True
    except Exception as exc:  # noqa: BLE001 (classified: clean refusal or escape)
        if not is_clean(exc):
            raise
        return "refused", str(exc), built


@settings(max_examples=scaled(350), derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graph_specs())
def test_symbolic_graphs_bind_to_what_concrete_graphs_give(spec):
    weights: dict = {}
    names = NAMES[:spec["rank"]]

    built: list = []

    def symbolic():  # built once per spec, bound to every size
        if not built:
            x = mg.input_variable((spec["channels"], *names), dtype=np.float64)
            built.append((x, build(spec, x, weights)))
        return built[0]

    counts = {"tried": 0, "clean": 0, "escapes": 0, "garbage": 0}
    try:
        for sizes in spec["sizes"]:
            check_sizes(spec, sizes, symbolic, weights, counts)
    finally:
        record("graphs: symbolic = concrete", **counts)


def check_sizes(spec, sizes, symbolic, weights, counts):
    def concrete():
        x = mg.input_variable((spec["channels"], *sizes), dtype=np.float64)
        return x, build(spec, x, weights)
    feed_shape = (spec["batch"], spec["channels"], *sizes)
    outcomes = []
    for make in (concrete, symbolic):
        counts["tried"] += 1
        try:
            outcomes.append(run(make, feed_shape, spec["seed"]))
        except Exception:
            counts["escapes"] += 1
            raise
        counts["clean"] += outcomes[-1][0] == "refused"
    (kind_c, got_c, _), (kind_s, got_s, bound) = outcomes
    agree = kind_c == kind_s and (kind_c == "refused" or (got_c.shape == got_s.shape
                                                          and np.allclose(got_c, got_s, rtol=1e-12, atol=0)))
    if kind_s == "refused" and bound:  # refused when binding: the message names the bound sizes
        agree = agree and all(f"{n}={s}" in got_s for n, s in zip(NAMES, sizes) if n in got_s)
        agree = agree and "With " in got_s
    if not agree:
        counts["garbage"] += 1
        raise AssertionError(f"sizes {sizes}: concrete {kind_c} {got_c if kind_c == 'refused' else got_c.shape}, "
                             f"symbolic {kind_s} {got_s if kind_s == 'refused' else got_s.shape}")


def test_a_symbolic_graph_states_the_size_it_needs():
    x = mg.input_variable((1, "H"), dtype=np.float64)
    y = mg.convolution_transpose(mg.constant(np.ones((1, 1, 1))), x, strides=2, lower_pad=2, upper_pad=1)
    assert str(y.shape) == "(1, 2*H - 4)"
    for n, accepted in ((1, False), (2, False), (3, True)):
        concrete = mg.input_variable((1, n), dtype=np.float64)
        try:
            mg.convolution_transpose(mg.constant(np.ones((1, 1, 1))), concrete, strides=2, lower_pad=2, upper_pad=1)
            built = True
        except mg.ShapeError:
            built = False
        assert built is accepted
        if accepted:
            assert y.eval({x: np.ones((1, 1, n))}).shape == (1, 1, 2 * n - 4)
        else:
            try:
                y.eval({x: np.ones((1, 1, n))})
                raise AssertionError("bound to a size the concrete graph rejects")
            except mg.ShapeError as exc:
                assert f"With H={n}" in str(exc) and "needs H >= 3 (size 2*H - 4 >= 1)" in str(exc)
    record("graphs: symbolic = concrete", 6, 4)
