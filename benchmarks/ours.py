"""minigraph's side of a workload: the graph a user would build, run as a user runs it.

Forward is ``y.eval({x: x})``; forward+backward is ``y.grad({x: x}, wrt=[x, W])`` (the gradient of
the sum of the outputs, i.e. an all-ones output gradient, as the peers get). Both go through the
whole engine: feed binding, the compiled program, the op's kernels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import minigraph as mg

from .peers import Runner
from .workloads import Workload


@dataclass
class Built:
    """A workload's graph: input ``x``, map ``W``, output ``y`` and the feed to run it with."""

    x: mg.Variable
    W: mg.Parameter
    y: mg.Function
    feed: dict

    def runner(self) -> Runner:
        x, W, y, feed = self.x, self.W, self.y, self.feed

        def forward_backward():
            grads = y.grad(feed, wrt=[x, W])
            return grads[x], grads[W]

        return Runner(lambda: y.eval(feed), forward_backward)


def build(w: Workload, x: np.ndarray, W: np.ndarray, max_temp_mem_size_in_samples: int = 0) -> Built:
    """The ConvolutionTranspose node of ``w`` on ``x`` with map ``W`` (pads as the workload says)."""
    xv = mg.input_variable(w.x_shape[1:], dtype=x.dtype, name="x")
    Wp = mg.parameter(init=W, name="W")
    y = mg.ops.convolution_transpose(Wp, xv, strides=w.stride, name=w.name, **w.padding(),
                                     max_temp_mem_size_in_samples=max_temp_mem_size_in_samples)
    if tuple(y.shape) != w.y_shape[1:]:
        raise AssertionError(f"{w.name}: minigraph gives output shape {tuple(y.shape)}; the workload expects "
                             f"{w.y_shape[1:]} (pads {w.pads()})")
    return Built(xv, Wp, y, {xv: x})
