"""Framework overhead: what running a node through the graph costs beyond its numpy kernels.

Two tiny graphs, where the arithmetic is negligible and the engine's bookkeeping dominates:
a single 1x1x2x2 ConvolutionTranspose (2x2 kernel, stride 1, no padding: output 1x1x3x3) and a
chain of 20 elementwise ``tanh`` nodes on a (1, 4) input. Overhead per node is the graph's time
minus the time of the plain numpy code that computes the same values, divided by the number of
function nodes. A one-node graph's overhead includes the fixed cost of a run (binding the feed,
finding the compiled program), which a 1-node tanh graph measures on its own.
"""
from __future__ import annotations

import numpy as np

import minigraph as mg

from .timing import Settings, best_times

CHAIN_LENGTH = 20


def _conv_raw(x: np.ndarray, W: np.ndarray):
    """Plain numpy transposed convolution (stride 1, no pad), and its backward for ones."""
    K = W.shape[2:]
    n = x.shape[2:]
    taps = [(a, b) for a in range(K[0]) for b in range(K[1])]

    def forward():
        cols = np.tensordot(W, x, axes=([0], [1]))  # (O, Ka, Kb, N, h, w)
        y = np.zeros((x.shape[0], W.shape[1], n[0] + K[0] - 1, n[1] + K[1] - 1), x.dtype)
        for a, b in taps:
            y[:, :, a:a + n[0], b:b + n[1]] += cols[:, a, b].transpose(1, 0, 2, 3)
        return y

    def forward_backward():
        y = forward()
        g = np.ones_like(y)
        patches = np.stack([g[:, :, a:a + n[0], b:b + n[1]] for a, b in taps], axis=2)  # (N, O, taps, h, w)
        dx = np.tensordot(patches, W.reshape(W.shape[0], W.shape[1], -1), axes=([1, 2], [1, 2])).transpose(0, 3, 1, 2)
        dw = np.tensordot(x, patches, axes=([0, 2, 3], [0, 3, 4])).reshape(W.shape)
        return dx, dw

    return forward, forward_backward


def _chain_raw(x: np.ndarray, length: int):
    def forward():
        h = x
        for _ in range(length):
            h = np.tanh(h)
        return h

    def forward_backward():
        outs = [x]
        for _ in range(length):
            outs.append(np.tanh(outs[-1]))
        g = np.ones_like(outs[-1])
        for y in reversed(outs[1:]):
            g = g * (1 - y * y)
        return g

    return forward, forward_backward


def _measure(name, nodes, graph_fwd, graph_fwd_bwd, raw_fwd, raw_fwd_bwd, settings: Settings, target: bool) -> dict:
    times = best_times({"graph_forward_s": graph_fwd, "graph_fwd_bwd_s": graph_fwd_bwd,
                        "raw_forward_s": raw_fwd, "raw_fwd_bwd_s": raw_fwd_bwd}, settings)
    return {"name": name, "function_nodes": nodes, "target": target, **times,
            "forward_us_per_node": (times["graph_forward_s"] - times["raw_forward_s"]) / nodes * 1e6,
            "fwd_bwd_us_per_node": (times["graph_fwd_bwd_s"] - times["raw_fwd_bwd_s"]) / nodes * 1e6}


def _chain(rng, length: int, settings: Settings, target: bool) -> dict:
    a = rng.standard_normal((1, 4)).astype(np.float32)
    v = mg.input_variable((4,), name="a")
    h = v
    for _ in range(length):
        h = mg.tanh(h)
    feed = {v: a}
    raw_fwd, raw_fwd_bwd = _chain_raw(a, length)
    np.testing.assert_allclose(h.eval(feed), raw_fwd(), rtol=1e-5)
    np.testing.assert_allclose(h.grad(feed, wrt=v), raw_fwd_bwd(), rtol=1e-5)
    return _measure(f"{length}-node tanh chain", length, lambda: h.eval(feed), lambda: h.grad(feed, wrt=[v]),
                    raw_fwd, raw_fwd_bwd, settings, target)


def measure_overhead(settings: Settings) -> list[dict]:
    """Per-node overhead of issue 8's two tiny graphs (``target: True``), and of a single tanh node,
    whose overhead is mostly the fixed cost of one run (feed binding, program lookup), for reference.
    Graph and plain numpy results are checked to agree first."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 2, 2)).astype(np.float32)
    W = rng.standard_normal((1, 1, 2, 2)).astype(np.float32)
    xv = mg.input_variable((1, 2, 2), name="x")
    Wp = mg.parameter(init=W, name="W")
    y = mg.ops.convolution_transpose(Wp, xv, auto_padding=False, name="tiny")
    feed = {xv: x}
    raw_fwd, raw_fwd_bwd = _conv_raw(x, W)
    grads = y.grad(feed, wrt=[xv, Wp])
    np.testing.assert_allclose(y.eval(feed), raw_fwd(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[xv], raw_fwd_bwd()[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[Wp], raw_fwd_bwd()[1], rtol=1e-5, atol=1e-6)
    conv = _measure("ConvolutionTranspose 1x1x2x2", 1, lambda: y.eval(feed), lambda: y.grad(feed, wrt=[xv, Wp]),
                    raw_fwd, raw_fwd_bwd, settings, target=True)
    return [conv, _chain(rng, CHAIN_LENGTH, settings, target=True), _chain(rng, 1, settings, target=False)]
