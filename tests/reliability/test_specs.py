"""Mutated specs (TOML and JSON): every one is refused with a SpecError naming the file, or builds a
network whose eval and grad work (finite values) and whose ``to_spec`` builds the same network again.
A content-preserving mutation (keys reordered, other layout, JSON instead of TOML) must build
exactly the original network. Counts go to the reliability tally."""
from __future__ import annotations

import copy
import json
import resource
import traceback

import numpy as np
import pytest
from archive_mutations import json_paths, mutated_value

import minigraph as mg
from minigraph.errors import MinigraphError
from minigraph.layers import from_spec, to_spec
from minigraph.layers.spec import dumps_toml

from tally import record, scaled

SPECS = {
    "generator": {
        "name": "gen", "input": {"shape": [6], "name": "z"},
        "layer": [{"type": "Dense", "shape": [2, 3, 3], "activation": "relu",
                   "init": {"type": "glorot_uniform", "seed": 1}},
                  {"type": "ConvolutionTranspose", "filter_shape": [3, 3], "num_filters": 2, "strides": 2, "pad": True},
                  {"type": "BatchNormalization"},
                  {"type": "Convolution", "filter_shape": [3, 3], "num_filters": 1, "pad": True, "activation": "tanh"}],
    },
    "discriminator": {
        "input": {"shape": [1, 8, 8], "dtype": "float64"},
        "layer": [{"type": "Convolution2D", "filter_shape": [3, 3], "num_filters": 2, "strides": 2, "pad": True,
                   "activation": "leaky_relu", "init": "he_normal"},
                  {"type": "MaxPooling", "filter_shape": [2, 2], "strides": 1},
                  {"type": "LayerNormalization", "epsilon": 1e-5},
                  {"type": "Dropout", "dropout_rate": 0.25},
                  {"type": "Sequential", "layers": [{"type": "Flatten"}, {"type": "Dense", "shape": 3}]},
                  {"type": "Activation", "activation": "sigmoid"}],
    },
    "wave": {
        "input": {"shape": [2, "T"]},
        "layer": [{"type": "Convolution1D", "filter_shape": 3, "num_filters": 4, "pad": True, "bias": False},
                  {"type": "AveragePooling", "filter_shape": 2, "strides": 2, "pad": True},
                  {"type": "ConvolutionTranspose1D", "filter_shape": 4, "num_filters": 2, "strides": 2}],
    },
}
HUGE = [0, -1, 10**9, 10**12, 10**18, 10**30, 2**63, -(2**63), 1.5, "10**9", "H*W", "__import__('os')"]


def _feed(model):
    x = model.arguments[0]
    shape = tuple(d if isinstance(d, int) else 8 for d in x.shape)
    return {x: np.random.default_rng(0).standard_normal((2, *shape)).astype(x.dtype)}


def _results(model):
    feed = _feed(model)
    out = model.eval(feed)
    grads = model.grad(feed, wrt=list(model.parameters)) if model.parameters else {}
    return out, [grads[p] for p in model.parameters]


def _build(source):
    mg.set_seed(0)  # specs without initializer seeds draw from the global generator
    return from_spec(source)


def _judge(path, reference, preserves) -> tuple[str, str]:
    try:
        model = _build(path)
    except MinigraphError as exc:
        return "clean", str(exc)
    except Exception as exc:  # noqa: BLE001 - what escapes is the measurement
        return "escape", "".join(traceback.format_exception_only(type(exc), exc))
    try:
        try:
            out, grads = _results(model)
        except mg.ResourceError as exc:  # a valid network too big for the memory limit: refused when run
            return "clean", f"{path.name}: {exc}"
        if not all(np.all(np.isfinite(a)) for a in (out, *grads)):
            return "garbage", "built, but eval or grad is not finite"
        if preserves and not (np.array_equal(out, reference[0]) and len(grads) == len(reference[1])
                              and all(np.array_equal(a, b) for a, b in zip(grads, reference[1]))):
            return "garbage", "a content-preserving mutation built another network"
        again = _build(to_spec(model))
        if again.shape != model.shape or len(again.parameters) != len(model.parameters):
            return "garbage", "to_spec does not describe what was built"
    except Exception as exc:  # noqa: BLE001
        return "garbage", f"built, but it does not work: {type(exc).__name__}: {exc}"
    return "ok", ""


# mutations: (spec dict) -> (spec dict or raw text, preserves) ------------------------------------------
def _at(spec, path):
    for k in path[:-1]:
        spec = spec[k]
    return spec


def value_mutation(spec, rng):
    paths = list(json_paths(spec))
    path = paths[int(rng.integers(len(paths)))]
    parent = _at(spec, path)
    parent[path[-1]] = mutated_value(parent[path[-1]], rng)
    return spec, False


def type_mutation(spec, rng):
    layer = spec["layer"][int(rng.integers(len(spec["layer"])))]
    layer["type"] = [["Dense"], {"type": "Dense"}, 3, None, True, "Dens", "dense", "Sequential", "", "Layer",
                     "__class__", "ConvolutionTranspose3D", "a" * 10_000][int(rng.integers(13))]
    return spec, False


def huge_size(spec, rng):
    layer = spec["layer"][int(rng.integers(len(spec["layer"])))]
    keys = [k for k in ("shape", "num_filters", "filter_shape", "strides", "dropout_rate", "epsilon") if k in layer]
    target = layer if keys else spec["input"]
    key = keys[int(rng.integers(len(keys)))] if keys else "shape"
    value = HUGE[int(rng.integers(len(HUGE)))]
    old = target[key]
    target[key] = [value] * len(old) if isinstance(old, list) and rng.random() < 0.5 else value
    return spec, False


def unknown_key(spec, rng):
    where = [spec, spec["input"], spec["layer"][int(rng.integers(len(spec["layer"])))]][int(rng.integers(3))]
    where[["shapes", "activaton", "__init__", "type ", "", "layer", "strides"][int(rng.integers(7))] + "_"] = 1
    return spec, False


def drop_key(spec, rng):
    where = [spec, spec["input"], spec["layer"][int(rng.integers(len(spec["layer"])))]][int(rng.integers(3))]
    if where:
        del where[list(where)[int(rng.integers(len(where)))]]
    return spec, False


def reorder(spec, rng):
    def shuffled(v):
        if isinstance(v, dict):
            keys = list(v)
            rng.shuffle(keys)
            return {k: shuffled(v[k]) for k in keys}
        return [shuffled(x) for x in v] if isinstance(v, list) else v
    return shuffled(spec), True


def text_damage(spec, rng):
    text = bytearray(dumps_toml(spec).encode() if rng.random() < 0.5 else json.dumps(spec).encode())
    choice = int(rng.integers(5))
    if choice == 0:
        text = text[:int(rng.integers(len(text)))]
    elif choice == 1:
        at = int(rng.integers(len(text)))
        text[at] = int(rng.integers(256))
    elif choice == 2:
        text = bytearray(b"[" * 100_000 + b"]" * 100_000) if rng.random() < 0.5 else bytearray(
            b'{"a": ' * 50_000 + b"1" + b"}" * 50_000)
    elif choice == 3:
        text = bytearray(json.dumps(spec).replace('{"', '{"input": 1, "', 1).encode())  # repeated key
    else:
        text = text + b"\xff\xfe\x00"
    return bytes(text), False


MUTATIONS = [value_mutation, type_mutation, huge_size, unknown_key, drop_key, reorder, text_damage]


@pytest.fixture(scope="module", autouse=True)
def bounded_memory():
    """Huge sizes must be refused, not allocated: minigraph's limit, far above what the spec cases
    need, and an address-space limit so that an allocation minigraph does not foresee fails with
    MemoryError in this process instead of exhausting the machine."""
    mg.set_memory_limit(256 * 2**20)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        in_use = int(fh.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (min(in_use + 3 * 2**30, hard if hard > 0 else in_use + 3 * 2**30), hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    mg.set_memory_limit(None)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_mutated_specs_build_correctly_or_are_refused(name, tmp_path):
    reference = _results(_build(SPECS[name]))
    rng = np.random.default_rng(sorted(SPECS).index(name) + 100)
    counts = {"clean": 0, "escape": 0, "garbage": 0, "ok": 0}
    failures = []
    for case in range(scaled(170)):
        mutate = MUTATIONS[case % len(MUTATIONS)]
        new, preserves = mutate(copy.deepcopy(SPECS[name]), rng)
        as_json = case % 2 == 0
        if isinstance(new, dict):
            try:
                text = (json.dumps(new) if as_json else dumps_toml(new)).encode()
            except (MinigraphError, TypeError, ValueError):  # a value TOML cannot write (null)
                as_json, text = True, json.dumps(new).encode()
        else:
            text = new
        path = tmp_path / f"mutated.{'json' if as_json else 'toml'}"
        path.write_bytes(text)
        outcome, detail = _judge(path, reference, preserves)
        counts[outcome] += 1
        if outcome == "clean" and path.name not in detail:
            failures.append((mutate.__name__, "message does not name the file: " + detail[:200]))
        elif outcome in ("escape", "garbage"):
            failures.append((mutate.__name__, text[:300], detail[:500]))
    record(f"specs: {name} mutations", sum(counts.values()), counts["clean"], counts["escape"], counts["garbage"])
    assert not failures, f"{len(failures)} bad outcomes, e.g. {failures[:3]}"
    assert counts["clean"] > 0 and counts["ok"] > 0


@pytest.mark.parametrize("layer, message", [
    ({"type": ["Dense"], "shape": 3}, "'type' must be a layer type name"),
    ({"type": {"a": 1}, "shape": 3}, "'type' must be a layer type name"),
    ({"type": "Dense", "shape": [10**6, 10**6]}, "memory"),
    ({"type": "Dense", "shape": 10**30}, "spec.json"),
])
def test_the_reported_spec_findings_are_spec_errors(tmp_path, layer, message):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"input": {"shape": [4]}, "layer": [layer]}))
    with pytest.raises(mg.SpecError, match=message) as info:
        from_spec(path)
    assert "spec.json" in str(info.value)
    record("specs: reported findings", 1, 1)
