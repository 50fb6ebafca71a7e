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


@pytest.mark.parametrize("layout", ["batch-first", "batch-last", "reversed", "broadcast"])
@pytest.mark.parametrize("axes", [(0, 2, 3), (0,), (2, 3), (0, 1, 2, 3), (1,)])
def test_sum_over_is_numpys_sum_for_every_layout(layout, axes):
    """``sum_over`` sums the outer axes first (fewer loops over short runs): the same sums as numpy's
    one-pass ``sum`` up to rounding, with kept size-1 axes, whatever the memory layout."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5, 3, 2))
    if layout == "batch-last":
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 0, -1)), -1, 0)
    elif layout == "reversed":
        x = x[::-1, :, ::-1]
    elif layout == "broadcast":
        x = np.broadcast_to(x[:1], x.shape)
    got = base.sum_over(x, axes)
    np.testing.assert_allclose(got, x.sum(axis=axes, keepdims=True), rtol=1e-13, atol=1e-13)
    assert got.shape == tuple(1 if a in axes else n for a, n in enumerate(x.shape))


def test_sum_over_adds_the_batch_axis_first_for_batch_first_operands(monkeypatch):
    """A batch-first ``(B, C, H, W)`` summed to ``(1, C, 1, 1)``: the batch axis first (whole samples
    added), then the short spatial runs of the small result."""
    calls = []
    x = np.ones((4, 3, 2, 2))
    real_sum = np.ndarray.sum

    class Tracked(np.ndarray):
        def sum(self, axis=None, **kwargs):
            calls.append(axis)
            return real_sum(np.asarray(self), axis=axis, **kwargs).view(Tracked)

    base.sum_over(x.view(Tracked), (0, 2, 3))
    assert calls == [(0,), (2, 3)]
    calls.clear()
    base.sum_over(np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 0, -1)), -1, 0).view(Tracked), (0, 2, 3))
    assert calls == [(0, 2, 3)]  # batch-last: one pass over each channel's contiguous block
