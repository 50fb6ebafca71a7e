"""A model's weights by name: ``model.state_dict()`` and ``model.load_state_dict(d)``, as in PyTorch.

The names are the layer path and the parameter's name, ``generator/up1/W``: the scopes of the layer
calls that use the parameter, down to the layer that owns it (a parameter outside any layer, e.g. one
imported from ONNX, keeps its own name, ``main.0.weight``). Besides the parameters, the dict holds the
constants that ops update while training (batch normalization's ``running_mean``/``running_var``),
as PyTorch's holds its buffers, in the order the graph uses them. Names are unique (a clash gets
``_1``, ``_2``... in that order) and the same for the same construction code, run after run.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .errors import GraphError, ShapeError
from .graph import Constant, Function, Node, Parameter


class LoadResult(NamedTuple):
    """What :func:`load_state_dict` did not match (empty lists when ``strict=True`` succeeded)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def running_statistics(*roots: Node) -> list[Constant]:
    """The constants that a training run of the graphs of ``roots`` updates in place: the inputs each
    op declares in ``Op.updates_inputs`` (batch normalization's running statistics), by creation order."""
    found = {n.inputs_direct[slot]: None for root in roots for n in root.topological_order()
             if isinstance(n, Function) for slot in n.op.updates_inputs}
    return sorted((c for c in found if isinstance(c, Constant)), key=lambda n: n.uid)


def _owned_by(scope, leaf: Node) -> bool:
    params = getattr(scope.owner, "_params", None)
    return isinstance(params, dict) and any(p is leaf for p in params.values())


def _path(leaf: Node, consumers: dict[Node, Function]) -> str:
    """``outer/inner/name``: the consumer's layer scopes down to the leaf's owning layer."""
    user = consumers.get(leaf)
    scopes = list(user.scope) if user is not None else []
    owner = next((i for i in range(len(scopes) - 1, -1, -1) if _owned_by(scopes[i], leaf)), None)
    if owner is None:  # not used by its owner's call (or no layer): the leaf's own creation scope
        scopes, owner = list(leaf.scope), len(leaf.scope) - 1
    names = [s.name for s in scopes[:owner + 1] if s.name and s.owner is not None]  # layers, not ONNX nodes
    return "/".join([*names, leaf.name or leaf.kind.lower()])


def named_state(root: Node) -> dict[str, Node]:
    """``{name: node}`` for every parameter and running statistic of ``root``'s graph, in the order the
    graph first uses them (then creation order)."""
    consumers: dict[Node, Function] = {}
    order = root.topological_order()
    for node in order:
        if isinstance(node, Function):
            for x in node.inputs_direct:
                consumers.setdefault(x, node)
    position = {node: i for i, node in enumerate(order)}
    leaves = sorted({*root.parameters, *running_statistics(root)},
                    key=lambda n: (position[consumers[n]] if n in consumers else -1, n.uid))
    out: dict[str, Node] = {}
    for leaf in leaves:
        base = _path(leaf, consumers)
        name, i = base, 1
        while name in out:
            name, i = f"{base}_{i}", i + 1
        out[name] = leaf
    return out


def state_dict(root: Node) -> dict[str, np.ndarray]:
    """``{scoped name: copy of the value}`` (see the module docstring)."""
    return {name: np.array(node.value, copy=True) for name, node in named_state(root).items()}


def load_state_dict(root: Node, state: Mapping, strict: bool = True) -> LoadResult:
    """Copy ``state``'s arrays into the graph's parameters and running statistics, by name.

    Everything is checked before anything changes: every array must have the node's shape (values are
    cast to its dtype) and be finite; with ``strict`` the names must match exactly (missing and
    unexpected names are listed in the :class:`GraphError`). Returns the names that did not match.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"load_state_dict: state must be a dict {{name: array}}, got {type(state).__name__}")
    nodes = named_state(root)
    missing = [k for k in nodes if k not in state]
    unexpected = [k for k in state if k not in nodes]
    if strict and (missing or unexpected):
        raise GraphError(f"load_state_dict into {root.label}: missing names {missing}, unexpected names "
                         f"{unexpected}; the model's names: {list(nodes)} (strict=False loads the matching ones)")
    arrays = {}
    for name, node in nodes.items():
        if name not in state:
            continue
        try:
            arr = np.asarray(state[name])
        except ValueError as exc:
            raise TypeError(f"load_state_dict: {name!r} is not an array ({exc})") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"load_state_dict: {name!r} has dtype {arr.dtype}; expected numbers")
        if arr.shape != tuple(node.shape):
            raise ShapeError(f"load_state_dict: {name!r} has shape {arr.shape}; {node.label} has shape "
                             f"{tuple(node.shape)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"load_state_dict: {name!r} holds NaN or infinite values")
        arrays[name] = arr
    for name, arr in arrays.items():
        node = nodes[name]
        if isinstance(node, Parameter):
            node.value = arr  # copies, in the parameter's dtype
        else:
            node.value[...] = arr  # in place: ops hold this array as their running statistic
    return LoadResult(missing, unexpected)
