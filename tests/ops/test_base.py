"""Shared op helpers: plans (axes, permutations, index tuples) are worked out once per shape."""
import numpy as np
import pytest

import minigraph as mg
from minigraph.ops import base, losses, reductions, shape_ops

from gradcheck import variable

PLANNED = {
    "slice": lambda x: mg.slice(x, 1, 1, 3),
    "getitem": lambda x: x[0, ::2],
    "transpose": lambda x: mg.transpose(x, (1, 0, 2)),
    "splice": lambda x: mg.splice(x, x, axis=1),
    "reduce_sum": lambda x: mg.reduce_sum(x, axis=(0, 2)),
    "reduce_mean": lambda x: mg.reduce_mean(x, axis=1, keepdims=False),
    "reduce_max": lambda x: mg.reduce_max(x, axis=-1),
    "softmax": lambda x: mg.softmax(x, axis=1),
    "log_softmax": mg.log_softmax,
    "cross_entropy_with_softmax": lambda x: mg.cross_entropy_with_softmax(x, x, axis=1),
}


@pytest.mark.parametrize("name", sorted(PLANNED))
def test_axes_are_resolved_once_per_shape(name, monkeypatch):
    x = variable((2, "W", 4), "x")
    y = PLANNED[name](x)
    feed = {x: np.random.default_rng(0).standard_normal((3, 2, 5, 4))}
    y.grad(feed, wrt=x)  # compiles the program and makes the plans
    calls, check_axis = [], base.check_axis

    def counting(*args):
        calls.append(args)
        return check_axis(*args)
    for module in (base, shape_ops, reductions, losses):
        monkeypatch.setattr(module, "check_axis", counting)
    for _ in range(2):
        y.grad(feed, wrt=x)
        y.eval(feed)
    assert calls == []


def test_every_op_has_a_function_that_rebuilds_it():
    """Model files rebuild each node through the function that builds its op (``@export(builds=OP)``)."""
    assert sorted(base.OPS) == sorted(base.BUILDERS)
