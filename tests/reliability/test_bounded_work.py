"""Bounded work for absurd kernels: a transposed convolution whose kernel overhangs its output by far
(kernel 10**6 + 1 over 4 outputs) plans and runs only the taps that reach the output or read the
input, forward and backward, and gives PyTorch's values (``conv_transpose1d``/``2d`` with the centred
padding that ``auto_padding=True`` means)."""
from __future__ import annotations

import numpy as np
import pytest

import minigraph as mg

from tally import record

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("kernel,strides,small", [
    ((10**6 + 1,), (1,), (4,)),
    ((10**5 + 1,), (3,), (3,)),
    ((2001, 5), (2, 1), (3, 4)),
])
def test_overhanging_transposed_kernels_match_pytorch(kernel, strides, small):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, 3, *kernel))
    data = rng.standard_normal((2, 2, *small))
    x = mg.input_variable((2, *small), dtype=np.float64, name="x")
    weight = mg.parameter(init=w, name="W")
    y = mg.ops.convolution_transpose(weight, x, strides=strides, auto_padding=True)
    conv = torch.nn.functional.conv_transpose1d if len(kernel) == 1 else torch.nn.functional.conv_transpose2d
    tw, tx = torch.tensor(w, requires_grad=True), torch.tensor(data, requires_grad=True)
    expected = conv(tx, tw, stride=strides, padding=tuple(k // 2 for k in kernel))
    expected.sum().backward()
    out = y.eval({x: data})
    grads = y.grad({x: data}, wrt=[weight, x])
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(grads[weight], tw.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(grads[x], tx.grad.numpy(), rtol=1e-9, atol=1e-9)
    record("absurd kernels and windows", tried=1, clean=0)
