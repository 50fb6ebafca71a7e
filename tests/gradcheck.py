"""The generic gradient checker every op test reuses.

It compares minigraph's reverse-mode gradient with central finite differences in float64, along
random directions (HIPS/autograd's projection check: ``<J^T u, v>`` against
``(<u, f(x + eps v)> - <u, f(x - eps v)>) / 2 eps``), and optionally element by element for small
tensors. ``u`` is a random output gradient, so broadcasting and fan-out are exercised too.
"""
from __future__ import annotations

import numpy as np

import minigraph as mg
from minigraph.graph import Parameter, Variable


def _perturbed(root, feed, node, delta, seed, training):
    if isinstance(node, Parameter):
        old = node.value.copy()
        node.value = old + delta
        try:
            return root.eval(feed, seed=seed, training=training)
        finally:
            node.value = old
    new_feed = dict(feed)
    new_feed[node] = np.asarray(feed[node]) + delta
    return root.eval(new_feed, seed=seed, training=training)


def check_gradients(root, feed, wrt=None, *, eps=1e-6, rtol=1e-5, atol=1e-8, directions=3, elementwise=False,
                    seed=0, run_seed=0, training=False):
    """Assert that ``root.grad`` agrees with central differences for every node in ``wrt``.

    wrt: input variables and/or parameters (default: all arguments and parameters). Feeds and
    parameters must be float64. ``run_seed`` fixes random ops (dropout) between evaluations;
    ``training`` runs them in training mode.
    """
    rng = np.random.default_rng(seed)
    nodes = list(wrt) if wrt is not None else [*root.arguments, *root.parameters]
    for n in nodes:
        assert n.dtype == np.float64, f"gradient checks run in float64; {n.label} is {n.dtype}"
    y = root.eval(feed, seed=run_seed, training=training)
    u = rng.standard_normal(y.shape)
    grads = root.grad(feed, wrt=nodes, grad_root=u, seed=run_seed, training=training)
    for n in nodes:
        base = n.value if isinstance(n, Parameter) else np.asarray(feed[n])
        g = grads[n]
        assert g.shape == base.shape, f"{n.label}: gradient shape {g.shape} != value shape {base.shape}"
        for _ in range(directions):
            v = rng.standard_normal(base.shape)
            plus = _perturbed(root, feed, n, eps * v, run_seed, training)
            minus = _perturbed(root, feed, n, -eps * v, run_seed, training)
            numeric = float(np.sum(u * (plus - minus)) / (2 * eps))
            analytic = float(np.sum(g * v))
            assert np.isclose(analytic, numeric, rtol=rtol, atol=atol * max(1.0, np.abs(g).sum())), (
                f"{n.label}: <grad, v> = {analytic!r} but finite differences give {numeric!r}")
        if elementwise:
            numeric = np.zeros(base.shape)
            for idx in np.ndindex(base.shape):
                d = np.zeros(base.shape)
                d[idx] = eps
                numeric[idx] = np.sum(u * (_perturbed(root, feed, n, d, run_seed, training)
                                           - _perturbed(root, feed, n, -d, run_seed, training))) / (2 * eps)
            np.testing.assert_allclose(g, numeric, rtol=rtol, atol=atol * 100,
                                       err_msg=f"{n.label}: elementwise gradient mismatch")
    return grads


def variable(shape, name=""):
    """A float64 input variable (gradient checks run in float64)."""
    return mg.input_variable(shape, dtype=np.float64, name=name)


def param(value, name=""):
    """A float64 parameter holding ``value``."""
    return mg.parameter(init=np.asarray(value, dtype=np.float64), name=name)


def recording(fns, calls: list) -> tuple:
    """``fns`` (an op's per-input gradient functions), each appending its index to ``calls`` when it
    runs: to check that a vjp computes only the gradients backward asks for."""
    def spy(i, fn):
        def run(*args):
            calls.append(i)
            return fn(*args)
        return run
    return tuple(spy(i, fn) for i, fn in enumerate(fns))


__all__ = ["check_gradients", "variable", "param", "recording", "Variable"]
