"""Model files: ``model.save(path)`` and ``load_model(path)``, and the archive format checkpoints share.

A file is a zip archive holding ``manifest.json`` (format name, format version, graph structure)
and one ``.npy`` per array, read back with ``allow_pickle=False``. Files are written atomically: to
a temporary file in the same folder, then renamed over the target, so a failed save leaves any
previous file intact. A truncated, foreign or newer-version file raises :class:`ModelFileError`.

The graph is stored node by node in topological order: kind (Input, Parameter, Constant,
Function), op name (a key of :data:`minigraph.ops.base.OPS`), the user attributes, input
references (positions in the list), name, static shape (symbolic dims as text such as ``2*H``),
dtype and layer scopes. Loading rebuilds every function node through its op, so the shape rules
run again and check the file.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import MinigraphError, ModelFileError
from .files import atomic_writer
from .graph import Constant, Function, Node, Parameter, Scope, Variable
from .shape_inference import settle_dtypes
from .ops.base import OPS
from .shapes import as_shape, shape_str

MODEL_FORMAT = "minigraph-model"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"


def library_version() -> str:
    from . import __version__  # the package sets it after importing its modules
    return __version__


# the archive: JSON manifest + .npy arrays, written atomically --------------------------------------
def write_archive(path, manifest: Mapping, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``manifest`` (JSON-able) and ``arrays`` (name -> array) to ``path`` atomically."""
    with atomic_writer(path) as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(_MANIFEST, json.dumps(manifest, indent=1))
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.asarray(arr), allow_pickle=False)
            zf.writestr(f"{name}.npy", buf.getvalue())


def read_archive(path, expected_format: str, max_version: int) -> tuple[dict, dict[str, np.ndarray]]:
    """Read what :func:`write_archive` wrote; check the format name and version."""
    path = os.fspath(path)
    with open(path, "rb") as fh:  # a missing or unreadable path raises the usual OSError
        return _read_zip(fh, path, expected_format, max_version)


def _read_zip(fh, path: str, expected_format: str, max_version: int) -> tuple[dict, dict[str, np.ndarray]]:
    what = expected_format.replace("minigraph-", "")
    try:
        with zipfile.ZipFile(fh) as zf:
            names = set(zf.namelist())
            if _MANIFEST not in names:
                raise ModelFileError(f"{path}: not a minigraph {what} file (zip archive without {_MANIFEST})")
            manifest = json.loads(zf.read(_MANIFEST))
            if not isinstance(manifest, dict) or "format" not in manifest:
                raise ModelFileError(f"{path}: not a minigraph {what} file (manifest has no format field)")
            if manifest["format"] != expected_format:
                raise ModelFileError(f"{path}: this is a {manifest['format']!r} file, not a {expected_format!r} file")
            version = manifest.get("version")
            if not isinstance(version, int) or isinstance(version, bool):
                raise ModelFileError(f"{path}: manifest has no valid format version ({version!r})")
            if version > max_version:
                raise ModelFileError(f"{path}: format version {version} was written by a newer minigraph "
                                     f"({manifest.get('minigraph_version', '?')}); this minigraph "
                                     f"({library_version()}) reads versions up to {max_version}")
            arrays = {n[:-4]: np.load(io.BytesIO(zf.read(n)), allow_pickle=False)
                      for n in sorted(names) if n.endswith(".npy")}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as exc:
        raise ModelFileError(f"{path}: not a minigraph {what} file, or truncated ({exc})") from None
    except (ValueError, OSError, KeyError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: corrupted minigraph {what} file ({type(exc).__name__}: {exc})") from None
    return manifest, arrays


def require_array(arrays: Mapping[str, np.ndarray], key: str, path, shape=None) -> np.ndarray:
    """The array ``key`` from a file (of ``shape`` when given), or a ModelFileError."""
    if key not in arrays:
        raise ModelFileError(f"{os.fspath(path)}: array {key!r} is missing (truncated or edited file)")
    arr = arrays[key]
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise ModelFileError(f"{os.fspath(path)}: array {key!r} has shape {arr.shape}; expected {tuple(shape)}")
    return arr


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


def _decode(value):
    if isinstance(value, dict):
        return tuple(_decode(v) for v in value["tuple"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


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
def _positions(rec: Mapping, key: str, limit: int, what: str) -> list[int]:
    """``rec[key]``: a list of ints in ``[0, limit)`` (a negative one would silently pick another entry)."""
    value = rec[key]
    if not isinstance(value, list) or not all(type(j) is int and 0 <= j < limit for j in value):
        raise ValueError(f"{key!r} must list positions of {what} (0 to {limit - 1}), got {value!r}")
    return value


def _rebuild_node(i: int, rec: Mapping, built: list, scopes: list[Scope], arrays: Mapping, path) -> Node:
    if not isinstance(rec, dict):
        raise TypeError(f"a node record must be an object, got {rec!r}")
    kind, name, dtype = rec["kind"], rec["name"], rec["dtype"]
    shape = as_shape(rec["shape"])
    if kind == "Input":
        node: Node = Variable(shape, dtype, name)
    elif kind == "Parameter":
        node = Parameter(shape, require_array(arrays, f"p{i}", path, shape), dtype, name)
    elif kind == "Constant":
        node = Constant(require_array(arrays, f"c{i}", path, shape), dtype, name)
    elif kind == "Function":
        if rec["op"] not in OPS:
            raise ModelFileError(f"{os.fspath(path)}: node {i} ({name!r}) uses op {rec['op']!r}, which this minigraph "
                                 f"does not have (import the module that defines it first)")
        inputs = [built[j] for j in _positions(rec, "inputs", i, "earlier nodes")]
        if not isinstance(rec["attributes"], dict):
            raise TypeError(f"'attributes' must be an object, got {rec['attributes']!r}")
        attributes = {k: _decode(v) for k, v in rec["attributes"].items()}
        node = Function(OPS[rec["op"]], inputs, attributes, name)
        if shape_str(node.shape) != shape_str(shape):
            raise ModelFileError(f"{os.fspath(path)}: {node.label} rebuilt with shape {shape_str(node.shape)}, "
                                 f"but the file says {shape_str(shape)}")
    else:
        raise ModelFileError(f"{os.fspath(path)}: node {i} has unknown kind {kind!r}")
    node.scope = tuple(scopes[j] for j in _positions(rec, "scope", len(scopes), "the scope table"))
    return node


def _rebuild_scopes(rows: list) -> list[Scope]:
    owners: dict[int, SavedLayer] = {}
    return [Scope(name, kind, None if owner is None else owners.setdefault(owner, SavedLayer(name, kind)))
            for name, kind, owner in rows]


def rebuild_graph(graph: Mapping, arrays: Mapping, path) -> list[Node]:
    """Nodes rebuilt from the ``nodes`` and ``scopes`` entries :func:`graph_manifest` made, in order.
    Any record that does not rebuild (malformed, or rejected by its op's shape rule) raises
    ModelFileError naming the file and the node's position."""
    where = os.fspath(path)
    records, rows = graph.get("nodes", []), graph.get("scopes", [])
    for key, value in (("nodes", records), ("scopes", rows)):
        if not isinstance(value, list):
            raise ModelFileError(f"{where}: manifest entry {key!r} must be a list, got {value!r}")
    try:
        scopes = _rebuild_scopes(rows)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{where}: the scope table is malformed ({exc})") from None
    built: list[Node] = []
    for i, rec in enumerate(records):
        try:
            built.append(_rebuild_node(i, rec, built, scopes, arrays, path))
        except ModelFileError:
            raise
        except (MinigraphError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{where}: node {i} does not rebuild ({type(exc).__name__}: {exc})") from None
    return built


def load_model(path) -> Node:
    """Load a model written by :meth:`Node.save` / :func:`save_model`: new nodes with the saved
    structure, names, shapes, layer scopes and values. Layer objects are not restored: the scopes
    of one layer's calls share a :class:`SavedLayer` in their place."""
    manifest, arrays = read_archive(path, MODEL_FORMAT, FORMAT_VERSION)
    built = rebuild_graph(manifest, arrays, path)
    root = manifest.get("root")
    if type(root) is not int or not 0 <= root < len(built):
        raise ModelFileError(f"{os.fspath(path)}: root index {root!r} does not name a node")
    return built[root]


__all__ = ["SavedLayer", "graph_manifest", "load_model", "read_archive", "rebuild_graph", "save_model", "write_archive"]
