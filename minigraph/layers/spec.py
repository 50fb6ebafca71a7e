"""Declarative networks: a stack of layers written as data (TOML or JSON), and back.

A spec has an ``[input]`` table (``shape``; optional ``name`` and ``dtype``), an array of
``[[layer]]`` tables, each with a ``type`` (a layer class name such as ``"Dense"`` or
``"ConvolutionTranspose"``) and that layer's arguments, and an optional top-level ``name`` for
the stack. Values are TOML/JSON values: tuples are lists, activations are names (``"relu"``) or
tables with arguments (``{type = "leaky_relu", alpha = 0.2}``),
initializers are names (``"he_normal"``), tables (``{type = "he_normal", scale = 2.0, seed = 1}``),
numbers or nested lists (arrays). A ``Sequential`` layer takes its inner layers as ``layers``.

:func:`from_spec` builds the network on an input variable and returns its output node;
:func:`to_spec` reads the configuration back from the layers recorded in the nodes' scopes, so
``to_spec(from_spec(s)) == s``. Anything wrong raises :class:`~minigraph.errors.SpecError` naming
the file, the layer and the closest valid name.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
from typing import Any

import numpy as np

from .. import initializers
from ..errors import MinigraphError, SpecError
from ..files import check_nesting, loads_json, write_atomically
from ..files import short_repr as _short
from ..graph import Function, Node, input_variable
from ..initializers import Initializer
from ..shapes import Dim
from .base import LAYER_TYPES, ConfiguredActivation, Layer, activation_function, activation_name, arguments_of, closest
from .sequential import Sequential

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

SPEC_KEYS = ("input", "layer", "name")
INPUT_KEYS = ("shape", "name", "dtype")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "uniform", "normal",
                "truncated_normal", "zeros", "ones")
_DEFAULT_SCALE = 1.0  # every random initializer's default scale
MAX_SPEC_BYTES = 64 * 2**20
"""Largest spec file read (bytes): specs are small, but may hold initial values as arrays."""


# reading ------------------------------------------------------------------------------------------
def load_spec(source) -> tuple[dict, str]:
    """The spec as a dict and how messages name it (the file name, or ``"spec"`` for a dict)."""
    if isinstance(source, dict):
        return source, "spec"
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"from_spec: pass a path to a .toml/.json file or a dict, got {type(source).__name__}")
    path = os.fspath(source)
    where = os.path.basename(path)
    with open(path, "rb") as f:
        data = f.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{where}: larger than {MAX_SPEC_BYTES} bytes; not a spec")
    as_json = path.lower().endswith(".json")
    try:
        if as_json:
            spec = loads_json(data)
        else:
            check_nesting(data)
            spec = tomllib.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SpecError(f"{where}: not valid {'JSON' if as_json else 'TOML'}: {exc}") from None
    if not isinstance(spec, dict):
        raise SpecError(f"{where}: the spec must be a table (object) with [input] and [[layer]]")
    return spec, where


def _closest(word: str, choices) -> str:
    """:func:`closest`, for words of sensible length only (the match costs the product of lengths)."""
    return closest(word, choices) if len(word) <= 100 else ""


def _check_keys(table: dict, valid, where: str, what: str) -> None:
    for key in table:
        if key not in valid:
            raise SpecError(f"{where}: {what}: unknown key {_short(key)}{_closest(key, valid)} "
                            f"(valid: {', '.join(valid)})")


def _initializer(value, where: str, arg: str):
    """An ``init*`` argument from spec values: a name, a table, a number or a nested list."""
    if isinstance(value, str):
        if value not in INITIALIZERS:
            raise SpecError(f"{where}: {arg}: unknown initializer {_short(value)}{_closest(value, INITIALIZERS)} "
                            f"(valid: {', '.join(INITIALIZERS)})")
        return getattr(initializers, value)()
    if isinstance(value, dict):
        kind = value.get("type")
        if kind not in INITIALIZERS:
            raise SpecError(f"{where}: {arg}: an initializer table needs type = one of {', '.join(INITIALIZERS)}, "
                            f"got {_short(kind)}{_closest(str(kind), INITIALIZERS)}")
        options = {k: v for k, v in value.items() if k != "type"}
        _check_keys(options, () if kind in ("zeros", "ones") else ("scale", "seed"), where, f"{arg} ({kind})")
        try:
            return getattr(initializers, kind)(**options)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"{where}: {arg}: {exc}") from None
    if isinstance(value, list):
        try:
            return np.asarray(value, dtype=np.float64)
        except (ValueError, TypeError):
            raise SpecError(f"{where}: {arg}: {value!r} is not an array of numbers (nested lists of equal "
                            f"lengths)") from None
    return value


def _build_layer(table, where: str, positions: dict) -> Layer:
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table with a 'type' key, got {table!r}")
    kind = table.get("type")
    if kind is None:
        raise SpecError(f"{where}: missing 'type' (one of {', '.join(sorted(LAYER_TYPES))})")
    if not isinstance(kind, str):
        raise SpecError(f"{where}: 'type' must be a layer type name (a string), got {_short(kind)}")
    cls = LAYER_TYPES.get(kind)
    if cls is None:
        raise SpecError(f"{where}: unknown layer type {_short(kind)}{_closest(kind, LAYER_TYPES)} "
                        f"(types: {', '.join(sorted(LAYER_TYPES))})")
    where = f"{where} ({kind})"
    valid = arguments_of(cls)
    args = {}
    for key, value in table.items():
        if key == "type":
            continue
        if key not in valid:
            raise SpecError(f"{where}: unknown argument {_short(key)}{_closest(key, valid)} "
                            f"(arguments: {', '.join(valid)})")
        if key.startswith("init"):
            value = _initializer(value, where, key)
        elif key == "layers" and cls is Sequential:
            if not isinstance(value, list):
                raise SpecError(f"{where}: layers must be an array of layer tables")
            value = [_build_layer(t, f"{where}, layer {i}", positions) for i, t in enumerate(value, start=1)]
        args[key] = value
    try:
        layer = cls(**args)
    except (MinigraphError, ValueError, TypeError, NotImplementedError) as exc:
        raise SpecError(f"{where}: {exc}") from exc
    positions[id(layer)] = where
    return layer


def from_spec(source) -> Node:
    """Build the network of a spec (a .toml/.json path or a dict) and return its output node.

    >>> import minigraph as mg
    >>> net = from_spec({"input": {"shape": [16], "name": "z"},
    ...                  "layer": [{"type": "Dense", "shape": [8, 2, 2], "activation": "relu"},
    ...                            {"type": "ConvolutionTranspose", "filter_shape": [3, 3], "num_filters": 1,
    ...                             "strides": 2, "pad": True}]})
    >>> net.shape, net.arguments[0].name
    ((1, 3, 3), 'z')
    """
    spec, where = load_spec(source)
    _check_keys(spec, SPEC_KEYS, where, "top level")
    inp = spec.get("input")
    if not isinstance(inp, dict) or "shape" not in inp:
        raise SpecError(f"{where}: missing [input] table with a shape, e.g. [input] shape = [16]")
    _check_keys(inp, INPUT_KEYS, where, "[input]")
    tables = spec.get("layer")
    if not isinstance(tables, list) or not tables:
        raise SpecError(f"{where}: no layers: add [[layer]] tables (each with a type)")
    try:
        x = input_variable(inp["shape"], inp.get("dtype", "float32"), inp.get("name", ""))
    except (MinigraphError, ValueError, TypeError) as exc:
        raise SpecError(f"{where}: [input]: {exc}") from None
    positions: dict = {}
    layers = [_build_layer(t, f"{where}: layer {i}", positions) for i, t in enumerate(tables, start=1)]
    name = spec.get("name", "")
    if not isinstance(name, str):
        raise SpecError(f"{where}: name must be a string, got {name!r}")
    try:
        return Sequential(layers, name=name)(x)
    except MemoryError:
        raise SpecError(f"{where}: the network's parameters do not fit in memory (see the layers' sizes)") from None
    except (MinigraphError, ValueError, TypeError, NotImplementedError) as exc:
        at = positions.get(id(getattr(exc, "layer", None)), f"{where}: building the network")
        raise SpecError(f"{at}: {exc}") from exc


# writing ------------------------------------------------------------------------------------------
def _spec_value(value, what: str):
    """A Python argument value as a TOML/JSON value."""
    if isinstance(value, Initializer):
        if value.kind == "constant":
            return {0.0: "zeros", 1.0: "ones"}.get(value.value, value.value)
        options = {k: v for k, v in (("scale", value.scale), ("seed", value.seed))
                   if v is not None and not (k == "scale" and v == _DEFAULT_SCALE)}
        return {"type": value.kind, **options} if options else value.kind
    if isinstance(value, Layer):
        return layer_spec(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_spec_value(v, what) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (dict, functools.partial)):  # an activation with arguments as the user gave it
        value = activation_function(value, what)
    if isinstance(value, ConfiguredActivation):
        return value.spec()
    if callable(value):
        name = activation_name(value)
        if name is not None:
            return name
    raise SpecError(f"{what}: {value!r} cannot be written in a spec (use names for activations and "
                    f"initializers, numbers or arrays for values)")


def layer_spec(layer: Layer) -> dict:
    """``{"type": ..., **arguments}`` of one layer: the arguments given explicitly (or by
    default_options) and those differing from the defaults; ``None`` values are left out."""
    if not isinstance(layer, Layer):
        name = activation_name(layer)
        if name is None:
            raise SpecError(f"to_spec: {layer!r} is not a layer; only layers and named activations can be written")
        return {"type": "Activation", "activation": layer.spec() if isinstance(layer, ConfiguredActivation) else name}
    out: dict[str, Any] = {"type": layer.kind}
    for key, value in layer.config().items():
        if value is not None:
            out[key] = _spec_value(value, f"to_spec: {layer.label}: {key}")
    return out


def _top_layers(model: Node) -> list:
    """The top-level layers whose calls built ``model``, in call order. A layer called more than
    once, at any depth, raises SpecError: a spec gives every layer its own weights."""
    owners: list = []
    calls: dict[int, set] = {}
    for node in model.topological_order():
        if not isinstance(node, Function):
            continue
        if not node.scope or not isinstance(node.scope[0].owner, Layer):
            raise SpecError(f"to_spec: {node.label} was not built by a layer; only networks made of layers can be "
                            f"written as specs")
        for scope in node.scope:
            owner = scope.owner
            if not isinstance(owner, Layer):
                continue
            calls.setdefault(id(owner), set()).add(id(scope))
            if len(calls[id(owner)]) > 1:
                raise SpecError(f"to_spec: {owner.label} is called more than once in {model.label} (shared "
                                f"weights); a spec cannot express that: give each call its own layer")
        if not any(o is node.scope[0].owner for o in owners):
            owners.append(node.scope[0].owner)
    return owners


def to_spec(model: Node, path=None) -> dict:
    """The spec of a network built from layers on one input variable (see the module docstring).
    With ``path`` (``.toml`` or ``.json``) it is also written there."""
    if not isinstance(model, Node):
        raise TypeError(f"to_spec: pass the network's output node, got {type(model).__name__}")
    inputs = model.arguments
    if len(inputs) != 1:
        raise SpecError(f"to_spec: {model.label} has {len(inputs)} inputs; a spec describes a network on one input")
    x = inputs[0]
    spec: dict[str, Any] = {"input": {"shape": [str(d) if isinstance(d, Dim) else d for d in x.shape]}}
    if x.name:
        spec["input"]["name"] = x.name
    if x.dtype != np.float32:
        spec["input"]["dtype"] = x.dtype.name
    owners = _top_layers(model)
    if len(owners) == 1 and isinstance(owners[0], Sequential):
        if owners[0].name:
            spec["name"] = owners[0].name
        owners = owners[0].layers
    spec["layer"] = [layer_spec(layer) for layer in owners]
    if path is not None:
        write_spec(spec, path)
    return spec


def write_spec(spec: dict, path) -> None:
    """Write ``spec`` as TOML or JSON, chosen by the file extension, atomically (a failed write
    leaves the previous file as it was)."""
    path = os.fspath(path)
    text = json.dumps(spec, indent=2) + "\n" if path.lower().endswith(".json") else dumps_toml(spec)
    write_atomically(path, text.encode("utf-8"))


# a small TOML writer (the standard library only reads TOML) ----------------------------------------
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise SpecError(f"cannot write {value!r} ({type(value).__name__}) as TOML")


def _is_table_array(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_table(lines: list, prefix: str, table: dict) -> None:
    for key, value in table.items():
        if value is not None and not _is_table_array(value) and not (prefix == "" and isinstance(value, dict)):
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in table.items():
        if prefix == "" and isinstance(value, dict):
            lines += ["", f"[{_toml_key(key)}]"]
            _toml_table(lines, f"{_toml_key(key)}.", value)
        elif _is_table_array(value):
            for item in value:
                lines += ["", f"[[{prefix}{_toml_key(key)}]]"]
                _toml_table(lines, f"{prefix}{_toml_key(key)}.", item)


def dumps_toml(spec: dict) -> str:
    """``spec`` as TOML text: top-level tables as ``[input]``, lists of tables as ``[[layer]]``."""
    lines: list[str] = []
    _toml_table(lines, "", spec)
    return "\n".join(lines).lstrip("\n") + "\n"
