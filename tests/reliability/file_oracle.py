"""The models whose files the reliability tests mutate, and the judge of what a mutated file gave.

A mutated file must either be refused with a minigraph error (``clean``) or load into a model that
works: ``eval`` and ``grad`` run, give finite values, and the model saves and reloads to the same
results. A mutation that ``preserves`` the content (e.g. stored instead of deflated entries) must
moreover give exactly the original's outputs and gradients. Anything else is ``garbage``; an
exception that is not a minigraph error is an ``escape``.
"""
from __future__ import annotations

import os
import traceback

import numpy as np

import minigraph as mg
from minigraph.errors import MinigraphError

L = mg.layers


def _init(seed):
    return mg.initializers.glorot_uniform(seed=seed)


def conv_net():
    """Convolution, batch norm, max pooling, dense (a discriminator's pieces)."""
    x = mg.input_variable((2, 6, 6), name="image")
    net = L.Sequential([L.Convolution((3, 3), 4, activation=mg.relu, pad=True, init=_init(1)),
                        L.BatchNormalization(), L.MaxPooling((2, 2), strides=2),
                        L.Dense(3, init=_init(2))], name="disc")
    return x, net(x)


def generator_net():
    """Dense, reshape, transposed convolution, layer norm, average pooling, dropout (a generator's)."""
    z = mg.input_variable((5,), name="z")
    net = L.Sequential([L.Dense((2, 3, 3), activation=mg.leaky_relu, init=_init(3)),
                        L.ConvolutionTranspose((3, 3), 2, strides=2, pad=True, init=_init(4)),
                        L.LayerNormalization(), L.AveragePooling((2, 2), strides=1, pad=True),
                        L.Dropout(0.25), L.Activation(mg.tanh)], name="gen")
    return z, net(z)


def ops_net():
    """Plain ops: slicing, splice, reductions, softmax, clip, cast, transpose, times."""
    x = mg.input_variable((3, 4), name="x", dtype=np.float64)
    w = mg.parameter((4, 4), init=_init(5), dtype=np.float64, name="w")
    h = mg.clip(mg.times(x, w), -2.0, 2.0)
    parts = mg.splice(h[0:1], mg.reduce_mean(h, axis=0), axis=0)
    y = mg.softmax(mg.transpose(parts, (1, 0)), axis=0) + mg.reduce_sum(mg.square(h[1]), axis=0)
    return x, mg.cast(y, np.float32)


MODELS = {"conv": conv_net, "generator": generator_net, "ops": ops_net}


def feed_for(node, seed=0):
    x = node.arguments[0]
    shape = tuple(d if isinstance(d, int) else 6 for d in x.shape)
    return {x: np.random.default_rng(seed).standard_normal((3, *shape)).astype(x.dtype or np.float32)}


def results(model):
    """Outputs and parameter gradients (in parameter order) on a fixed feed: what a working model gives."""
    feed = feed_for(model)
    out = model.eval(feed)
    grads = model.grad(feed, wrt=list(model.parameters)) if model.parameters else {}
    return out, [grads[p] for p in model.parameters]


def _same(a, b) -> bool:
    (out_a, grads_a), (out_b, grads_b) = a, b
    return (out_a.shape == out_b.shape and np.array_equal(out_a, out_b) and len(grads_a) == len(grads_b)
            and all(g.shape == h.shape and np.array_equal(g, h) for g, h in zip(grads_a, grads_b)))


def judge(load, path, reference, preserves: bool, scratch) -> tuple[str, str]:
    """``(outcome, detail)``: outcome ``clean``, ``escape``, ``garbage`` or ``ok`` for the file at ``path``
    loaded with ``load(path)``; ``reference`` is :func:`results` of the original model."""
    try:
        model = load(path)
    except MinigraphError as exc:
        return "clean", str(exc)
    except Exception as exc:  # noqa: BLE001 - what escapes is the measurement
        return "escape", "".join(traceback.format_exception_only(type(exc), exc)) + traceback.format_exc(limit=-3)
    try:
        got = results(model)
        if not all(np.all(np.isfinite(a)) for a in (got[0], *got[1])):
            return "garbage", "loaded, but eval or grad is not finite"
        if preserves and not _same(got, reference):
            return "garbage", "loaded, but a content-preserving mutation changed the results"
        again = os.path.join(scratch, "resaved")
        model.save(again)
        if not _same(results(load(again)), got):
            return "garbage", "loaded, but saving and reloading changes the results"
    except Exception as exc:  # noqa: BLE001
        return "garbage", f"loaded, but it does not work: {type(exc).__name__}: {exc}"
    return "ok", ""
