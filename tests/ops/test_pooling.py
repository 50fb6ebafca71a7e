"""Pooling: sizes/pads from the convolution geometry, values against a direct loop oracle,
gradients against finite differences, errors."""
import itertools

import numpy as np
import pytest

import minigraph as mg
from minigraph.ops import conv_geometry as geo

from gradcheck import check_gradients, variable


def _oracle(x, kind, window, strides, pads):
    """Loop over every output position; windows read only real elements (padding excluded)."""
    lead = x.ndim - len(window)
    sizes, lows = [], []
    for n, k, s, pad in zip(x.shape[lead:], window, strides, pads):
        size, lo, _ = geo.conv_axis(n, k, s, 1, pad)
        sizes.append(size)
        lows.append(lo)
    out = np.zeros(x.shape[:lead] + tuple(sizes))
    for pos in itertools.product(*(range(n) for n in sizes)):
        ranges = []
        for i, k, s, lo, n in zip(pos, window, strides, lows, x.shape[lead:]):
            start = i * s - lo
            ranges.append(slice(max(start, 0), min(start + k, n)))
        block = x[(Ellipsis, *ranges)].reshape(x.shape[:lead] + (-1,))
        out[(Ellipsis, *pos)] = block.max(-1) if kind == "max" else block.mean(-1)
    return out


CASES = [  # static shape, window, strides, pad
    ((2, 7), (3,), (2,), False),
    ((2, 7), (3,), (2,), True),
    ((1, 6), (2,), (3,), True),
    ((3, 5, 6), (2, 2), (2, 2), False),
    ((3, 5, 6), (3, 3), (1, 2), True),
    ((2, 5, 4), (2, 3), (2, 1), (True, False)),
    ((5, 5), (4, 2), (3, 3), True),
    ((2, 4, 3, 5), (2, 2, 3), (1, 2, 2), True),
]


@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize("shape,window,strides,pad", CASES)
def test_pooling_values_and_gradients(kind, shape, window, strides, pad):
    x = variable(shape, "x")
    y = mg.pooling(x, kind, window, strides, pad)
    rng = np.random.default_rng(0)
    data = rng.permutation(np.arange(2 * np.prod(shape), dtype=np.float64)).reshape((2, *shape)) / 7  # no ties
    pads = pad if isinstance(pad, tuple) else (pad,) * len(window)
    expected = np.stack([_oracle(d, kind, window, strides, pads) for d in data])
    np.testing.assert_allclose(y.eval({x: data}), expected, rtol=1e-12)
    assert y.shape == expected.shape[1:]
    check_gradients(y, {x: data}, elementwise=np.prod(shape) <= 40)


def test_resolved_pads_and_symbolic_sizes():
    x = mg.input_variable((4, "H", "W"))
    y = mg.max_pooling(x, (3, 3), strides=2, auto_padding=True)
    assert [str(d) for d in y.shape] == ["4", "(H + 1)//2", "(W + 1)//2"]
    z = mg.average_pooling(mg.input_variable((4, 8, 8)), (3, 3), strides=2, auto_padding=True)
    assert z.shape == (4, 4, 4)
    assert z.attributes["lower_pad"] == (1, 1) and z.attributes["upper_pad"] == (0, 0)
    out = y.eval({x: np.ones((1, 4, 5, 8), np.float32)})
    assert out.shape == (1, 4, 3, 4) and out.dtype == np.float32


def test_max_ties_send_the_gradient_to_one_element():
    x = variable((1, 4), "x")
    y = mg.max_pooling(x, (2,), strides=2)
    g = y.grad({x: np.ones((1, 1, 4))}, wrt=x)
    np.testing.assert_array_equal(g, [[[1.0, 0.0, 1.0, 0.0]]])


def test_pooling_errors():
    x = mg.input_variable((3, 4, 4))
    with pytest.raises(ValueError, match="pooling_type"):
        mg.pooling(x, "min", (2, 2))
    with pytest.raises(ValueError, match="strides"):
        mg.max_pooling(x, (2, 2), strides=(2, 2, 2))
    with pytest.raises(ValueError, match="pooling_window_shape"):
        mg.max_pooling(x, (0, 2))
    with pytest.raises(mg.ShapeError, match="too small on spatial axis 0"):
        mg.max_pooling(x, (5, 2))
    with pytest.raises(mg.ShapeError, match="rank 1"):
        mg.max_pooling(mg.input_variable((4,)), (2, 2))


@pytest.mark.parametrize("kind", ["max", "average"])
def test_backward_does_not_keep_the_operand(kind):
    x = variable((2, 6, 6), "x")
    h = x + 1.0  # an intermediate value read only by the pooling
    y = mg.pooling(h, kind, (2, 2), 2)
    state = y.forward({x: np.ones((3, 2, 6, 6))})
    assert h not in state.values
    check_gradients(y, {x: np.random.default_rng(0).standard_normal((3, 2, 6, 6))})


@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize("window,strides,pad", [
    ((9, 15), (1, 2), True),           # windows longer than the operand, padded to fit
    ((10**9, 10**9), (1, 3), True),    # absurd windows: only the offsets reaching the operand are run
    ((10**9, 2), (2, 1), ("same_lower", False)),
])
def test_windows_longer_than_the_operand_cost_what_the_operand_costs(kind, window, strides, pad):
    """The plan keeps only window offsets that reach a real element (as PyTorch clips its windows):
    a 10**9 x 10**9 window over 5 x 6 elements runs like a 9 x 11 one, on symbolic and concrete sizes."""
    data = np.random.default_rng(1).permutation(np.arange(2 * 2 * 5 * 6, dtype=np.float64)).reshape(2, 2, 5, 6) / 7
    pads = pad if isinstance(pad, tuple) else (pad,) * len(window)
    expected = np.stack([_oracle(d, kind, window, strides, pads) for d in data])
    for shape in ((2, 5, 6), (2, "H", "W")):
        x = variable(shape, "x")
        y = mg.pooling(x, kind, window, strides, pad)
        np.testing.assert_allclose(y.eval({x: data}), expected, rtol=1e-12)
    x = variable((2, 5, 6), "x")
    check_gradients(mg.pooling(x, kind, window, strides, pad), {x: data}, elementwise=False)
