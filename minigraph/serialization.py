"""Model files: ``model.save(path)`` and ``load_model(path)``.

A file is an archive (:mod:`minigraph.archive`, shared with checkpoints) holding ``manifest.json``
(format name, format version, graph structure) and one ``.npy`` per array. Files are written
atomically: to a temporary file in the same folder, then renamed over the target, so a failed
save leaves any previous file intact. A truncated, foreign, edited or newer-version file raises
:class:`ModelFileError` naming the file and what is wrong; nothing in it is ever executed.

The graph is stored node by node in topological order: kind (Input, Parameter, Constant,
Function), op name (a key of :data:`minigraph.ops.base.OPS`), the user attributes, input
references (positions in the list), name, static shape (symbolic dims as text such as ``2*H``),
dtype and layer scopes. Loading checks every record's fields, then rebuilds every function node
through its op's public function (the same argument checks as a call, then the shape rule), and
compares the result with what the file says.
"""
from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .archive import library_version, read_archive, require_array, write_archive
from .errors import MinigraphError, ModelFileError
from .files import short_repr as _short
from .graph import Constant, Function, Node, Parameter, Scope, Variable
from .ops.base import BUILDERS, OPS
from .shape_inference import settle_dtypes
from .shapes import as_shape, shape_str

MODEL_FORMAT = "minigraph-model"
FORMAT_VERSION = 1


# attribute values: JSON keeps lists; tuples are tagged so they come back as tuples ------------------
def _encode(value, where: str):
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    raise TypeError(f"{where}: attribute value {value!r} ({type(value).__name__}) cannot be saved; op attributes "
                    f"must be numbers, strings, bools, None or tuples/lists of them")


# save ------------------------------------------------------------------------------------------
class SavedLayer:
    """Stands for the layer object that owned a scope when the model was saved: scopes of calls
    of one layer share one of these, so drawings and summaries group a loaded graph as the original."""

    def __init__(self, name: str, kind: str):
        self.name, self.kind = name, kind

    def __repr__(self):
        return f"SavedLayer({self.kind} {self.name!r})"


class _ScopeTable:
    """Numbers each layer call (Scope object) and each layer (scope owner) of the saved graph."""

    def __init__(self):
        self.rows: list[list] = []   # [name, kind, owner number or None] per scope
        self._scopes: dict[int, int] = {}
        self._owners: dict[int, int] = {}
        self._alive: list = []       # keep ids valid while saving

    def number(self, scope: Scope) -> int:
        if id(scope) not in self._scopes:
            owner = None
            if scope.owner is not None:
                owner = self._owners.setdefault(id(scope.owner), len(self._owners))
            self._alive.append(scope)
            self._scopes[id(scope)] = len(self.rows)
            self.rows.append([scope.name, scope.kind, owner])
        return self._scopes[id(scope)]


def _node_record(node: Node, index: Mapping[Node, int], scopes: _ScopeTable) -> dict:
    record: dict[str, Any] = {
        "kind": node.kind, "name": node.name, "shape": [str(d) for d in node.shape],
        "dtype": None if node.dtype is None else node.dtype.name,
        "inputs": [index[x] for x in node.inputs_direct],
        "scope": [scopes.number(s) for s in node.scope],
    }
    if isinstance(node, Function):
        if OPS.get(node.op_name) is not node.op:
            raise TypeError(f"{node.label}: op {node.op_name!r} is not registered (register_op), "
                            f"so it cannot be loaded")
        record["op"] = node.op_name
        record["attributes"] = {k: _encode(v, node.label) for k, v in node.op_attributes.items()}
    elif not isinstance(node, (Variable, Parameter, Constant)):
        raise TypeError(f"{node.label}: nodes of type {type(node).__name__} cannot be saved")
    return record


def graph_manifest(roots: list[Node]) -> tuple[list[Node], dict, dict[str, np.ndarray]]:
    """The nodes of the graphs of ``roots`` (topological order); the manifest entries ``nodes``
    (one record per node) and ``scopes`` (``[name, kind, owner number]`` per layer call); the arrays
    of their parameters (``p<i>``) and constants (``c<i>``), ``i`` being the node's position."""
    seen: dict[Node, None] = {}
    for root in roots:
        for n in root.topological_order():
            seen.setdefault(n)
    nodes = sorted(seen, key=lambda n: n.uid)  # creation order is a topological order
    settle_dtypes(nodes)  # what a run would do first: dtype-less nodes become float32, as the file records
    index = {n: i for i, n in enumerate(nodes)}
    scopes = _ScopeTable()
    records = [_node_record(n, index, scopes) for n in nodes]
    arrays = {}
    for i, n in enumerate(nodes):
        if isinstance(n, Parameter):
            arrays[f"p{i}"] = n.value
        elif isinstance(n, Constant):
            arrays[f"c{i}"] = n.value
    return nodes, {"nodes": records, "scopes": scopes.rows}, arrays


def save_model(model: Node, path) -> None:
    """Save the graph of ``model`` and its parameter and constant values to ``path`` (one file).

    Also available as ``model.save(path)``. The write is atomic: on any error the previous file
    at ``path`` (if any) is left as it was.
    """
    if not isinstance(model, Node):
        raise TypeError(f"save_model: expected a graph node, got {type(model).__name__}")
    nodes, graph, arrays = graph_manifest([model])
    manifest = {"format": MODEL_FORMAT, "version": FORMAT_VERSION, "minigraph_version": library_version(),
                "root": nodes.index(model), **graph}
    write_archive(path, manifest, arrays)


# load ------------------------------------------------------------------------------------------
_NODE_KINDS = ("Input", "Parameter", "Constant", "Function")
_RECORD_KEYS = frozenset(["kind", "name", "shape", "dtype", "inputs", "scope"])
_FUNCTION_KEYS = _RECORD_KEYS | {"op", "attributes"}
_MODEL_KEYS = frozenset(["format", "version", "minigraph_version", "root", "nodes", "scopes"])
_DTYPES = ("float32", "float64")


def _positions(value, key: str, limit: int, what: str) -> list[int]:
    """A list of ints in ``[0, limit)`` (a negative one would silently pick another entry)."""
    if not isinstance(value, list) or not all(type(j) is int and 0 <= j < limit for j in value):
        raise ValueError(f"{key!r} must list positions of {what} (0 to {limit - 1}), got {_short(value)}")
    return value


def _checked_record(i: int, rec, n_scopes: int) -> dict:
    """Node record ``i`` with every field of the right type (values are checked by the constructors)."""
    if not isinstance(rec, dict):
        raise ValueError(f"a node record must be an object, got {_short(rec)}")
    kind = rec.get("kind")
    if kind not in _NODE_KINDS:
        raise ValueError(f"unknown node kind {_short(kind)} (valid: {', '.join(_NODE_KINDS)})")
    expected = _FUNCTION_KEYS if kind == "Function" else _RECORD_KEYS
    if set(rec) != expected:
        missing, extra = sorted(expected - set(rec)), sorted(set(rec) - expected)
        raise ValueError(f"a {kind} record has the fields {sorted(expected)}"
                         + (f"; missing {missing}" if missing else "") + (f"; unknown {extra}" if extra else ""))
    if not isinstance(rec["name"], str):
        raise ValueError(f"'name' must be a string, got {_short(rec['name'])}")
    shape = rec["shape"]
    if not isinstance(shape, list) or not all(isinstance(d, str) or type(d) is int for d in shape):
        raise ValueError(f"'shape' must be a list of ints and dimension texts, got {_short(shape)}")
    if rec["dtype"] not in (None, *_DTYPES):
        raise ValueError(f"'dtype' must be one of {', '.join(_DTYPES)} or null, got {_short(rec['dtype'])}")
    _positions(rec["inputs"], "inputs", i if kind == "Function" else 0, "earlier nodes")
    _positions(rec["scope"], "scope", n_scopes, "the scope table")
    if kind == "Function":
        if not isinstance(rec["op"], str):
            raise ValueError(f"'op' must be an op name, got {_short(rec['op'])}")
        if not isinstance(rec["attributes"], dict):
            raise ValueError(f"'attributes' must be an object, got {_short(rec['attributes'])}")
    return rec


def _decode(value):
    """An attribute value from JSON: ``{"tuple": [...]}`` is a tuple; no other object is allowed."""
    if isinstance(value, dict):
        if set(value) != {"tuple"} or not isinstance(value["tuple"], list):
            raise ValueError(f"an attribute object must be {{\"tuple\": [...]}}, got {_short(value)}")
        return tuple(_decode(v) for v in value["tuple"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _canonical(attributes: Mapping) -> str:
    """Attributes as JSON text: equal texts mean equal values of equal types (``1`` is not ``1.0``)."""
    return json.dumps({k: _encode(v, "") for k, v in attributes.items()}, sort_keys=True)


def rebuild_function(op_name: str, inputs: list, attributes: dict, name: str) -> Function:
    """The function node a saved record describes, made by its op's public function (see
    :data:`minigraph.ops.base.BUILDERS`): a file gets every argument check a call gets, and its
    attributes must be exactly those that function stores (none unknown, none left to a default but
    the op's ``file_defaults``: attributes newer than the file, given the value of the file's time)."""
    builder = BUILDERS.get(op_name)
    if builder is None:
        raise ValueError(f"op {op_name!r} names no public function to rebuild it (export(builds=...))")
    attributes = {**OPS[op_name].file_defaults, **attributes}  # files older than an attribute keep their meaning
    params = inspect.signature(builder).parameters.values()
    if not any(p.kind is p.VAR_POSITIONAL for p in params):  # splice takes any number
        wanted = sum(1 for p in params if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty
                     and p.name not in attributes)
        if len(inputs) != wanted:
            raise ValueError(f"{op_name} takes {wanted} input{'s' if wanted != 1 else ''}, the file gives "
                             f"{len(inputs)}")
    node = builder(*inputs, **attributes, name=name)
    if not isinstance(node, Function) or node.op is not OPS[op_name] or list(node.inputs_direct) != inputs:
        raise ValueError(f"these attributes do not make a {op_name} node of these inputs")
    if _canonical(node.op_attributes) != _canonical(attributes):
        raise ValueError(f"attributes {_short(attributes, 200)} are not those {op_name} stores for them "
                         f"({_short(node.op_attributes, 200)}): unknown, missing or malformed entries")
    return node


def check_stored_inputs(node: Function, values: Mapping[Node, np.ndarray], where) -> None:
    """Raise ModelFileError (naming ``where`` and the inputs) unless ``node``'s op can run with the values
    of its Parameter/Constant inputs read from a file: ``values[input]`` when given (a checkpoint about to
    be restored), else the input's own value. See :meth:`Op.check_stored_values`."""
    inputs = node.inputs_direct
    stored = [values.get(n, n.value) if isinstance(n, (Parameter, Constant)) else None for n in inputs]
    try:
        node.op.check_stored_values(stored, [n.name for n in inputs], node.label)
    except ValueError as exc:
        raise ModelFileError(f"{os.fspath(where)}: {exc}") from None


def _rebuild_node(i: int, rec: dict, built: list, scopes: list[Scope], arrays: Mapping, path) -> Node:
    kind, name, dtype = rec["kind"], rec["name"], rec["dtype"]
    shape = as_shape(rec["shape"])
    if kind == "Input":
        node: Node = Variable(shape, dtype, name)
    elif kind in ("Parameter", "Constant"):
        key = f"{kind[0].lower()}{i}"
        value = require_array(arrays, key, path, shape, dtype)
        if not np.isfinite(value).all():  # training never leaves them so: the file was damaged or edited
            raise ModelFileError(f"{os.fspath(path)}: array {key!r} of {kind.lower()} {name!r} holds NaN or "
                                 f"infinite values")
        node = Parameter(shape, value, dtype, name) if kind == "Parameter" else Constant(value, dtype, name)
    else:
        if rec["op"] not in OPS:
            raise ModelFileError(f"{os.fspath(path)}: node {i} ({name!r}) uses op {_short(rec['op'])}, which this "
                                 f"minigraph does not have (import the module that defines it first)")
        attributes = {k: _decode(v) for k, v in rec["attributes"].items()}
        node = rebuild_function(rec["op"], [built[j] for j in rec["inputs"]], attributes, name)
        check_stored_inputs(node, {}, path)
        if shape_str(node.shape) != shape_str(shape):
            raise ModelFileError(f"{os.fspath(path)}: {node.label} rebuilt with shape {shape_str(node.shape)}, "
                                 f"but the file says {shape_str(shape)}")
        if dtype is not None and node.dtype is not None and node.dtype.name != dtype:
            raise ModelFileError(f"{os.fspath(path)}: {node.label} computes {node.dtype.name}, but the file says "
                                 f"{dtype}")
    node.scope = tuple(scopes[j] for j in rec["scope"])
    return node


def _rebuild_scopes(rows) -> list[Scope]:
    """The scope table: ``[name, kind, owner number or null]`` per layer call."""
    if not isinstance(rows, list):
        raise ValueError(f"it must be a list, got {_short(rows)}")
    owners: dict[int, SavedLayer] = {}
    scopes = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str) and isinstance(row[1], str)
                and (row[2] is None or (type(row[2]) is int and row[2] >= 0))):
            raise ValueError(f"each row must be [name, kind, owner number or null], got {_short(row)}")
        name, kind, owner = row
        scopes.append(Scope(name, kind, None if owner is None else owners.setdefault(owner, SavedLayer(name, kind))))
    return scopes


def rebuild_graph(graph: Mapping, arrays: Mapping, path) -> list[Node]:
    """Nodes rebuilt from the ``nodes`` and ``scopes`` entries :func:`graph_manifest` made, in order.
    Any record that does not rebuild (malformed, rejected by its op's argument checks or shape
    rule, or an array that does not fit) raises ModelFileError naming the file and the node's
    position; so does an array entry that no node uses."""
    where = os.fspath(path)
    try:
        scopes = _rebuild_scopes(graph.get("scopes", []))
    except ValueError as exc:
        raise ModelFileError(f"{where}: the scope table is malformed ({exc})") from None
    records = graph.get("nodes", [])
    if not isinstance(records, list):
        raise ModelFileError(f"{where}: manifest entry 'nodes' must be a list, got {_short(records)}")
    built: list[Node] = []
    for i, rec in enumerate(records):
        try:
            built.append(_rebuild_node(i, _checked_record(i, rec, len(scopes)), built, scopes, arrays, path))
        except ModelFileError:
            raise
        except (MinigraphError, KeyError, IndexError, TypeError, ValueError, OverflowError,
                NotImplementedError) as exc:
            raise ModelFileError(f"{where}: node {i} does not rebuild ({type(exc).__name__}: {exc})") from None
    used = {f"{'p' if isinstance(n, Parameter) else 'c'}{i}" for i, n in enumerate(built)
            if isinstance(n, (Parameter, Constant))}
    unused = sorted(set(arrays) - used)
    if unused:
        raise ModelFileError(f"{where}: array entries {unused[:5]} belong to no node (edited file?)")
    return built


def load_model(path) -> Node:
    """Load a model written by :meth:`Node.save` / :func:`save_model`: new nodes with the saved
    structure, names, shapes, layer scopes and values. Layer objects are not restored: the scopes
    of one layer's calls share a :class:`SavedLayer` in their place.

    The whole file is checked (see :mod:`minigraph.archive` and :func:`rebuild_function`): it
    either loads into a model whose ``eval`` and ``grad`` work, or raises ModelFileError naming
    the file and what is wrong."""
    manifest, arrays = read_archive(path, MODEL_FORMAT, FORMAT_VERSION)
    where = os.fspath(path)
    if set(manifest) != _MODEL_KEYS:
        raise ModelFileError(f"{where}: a model manifest has the fields {sorted(_MODEL_KEYS)}, got {sorted(manifest)}")
    if not isinstance(manifest["minigraph_version"], str):
        raise ModelFileError(f"{where}: minigraph_version must be a string, "
                             f"got {_short(manifest['minigraph_version'])}")
    built = rebuild_graph(manifest, arrays, path)
    root = manifest["root"]
    if type(root) is not int or not 0 <= root < len(built):
        raise ModelFileError(f"{where}: root index {_short(root)} does not name a node")
    return built[root]


__all__ = ["SavedLayer", "graph_manifest", "load_model", "rebuild_function", "rebuild_graph", "save_model"]
