"""Per-sample losses and metrics (CNTK names): each reduces ``(output, target)`` to one number per
sample, static shape ``()`` and run-time shape ``(N,)``. Output and target broadcast like ``plus``.

Each loss is a row: elementwise terms (summed over every static axis) and their derivatives with
respect to output and target, side by side.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..checks import check_int
from .base import Inferred, Op, align, broadcast_rule, cached, check_axis, export, make, register_op, unbroadcast
from .reductions import stable_softmax


def _bce_clip(o: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output clipped to ``[eps, 1 - eps]`` (eps = machine epsilon of its dtype) so logs stay finite,
    and the mask of entries left unclipped (the gradient is 0 where clipping acted)."""
    eps = np.finfo(o.dtype).eps
    clipped = np.clip(o, eps, 1 - eps)
    return clipped, (clipped == o).astype(o.dtype)


def _bce_terms(o, t, attrs):
    c, _ = _bce_clip(o)
    return -(t * np.log(c) + (1 - t) * np.log1p(-c)), None


def _bce_grad_output(o, t, residual, attrs):
    c, inside = _bce_clip(o)
    return inside * ((1 - t) / (1 - c) - t / c)


def _bce_grad_target(o, t, residual, attrs):
    c, _ = _bce_clip(o)
    return np.log1p(-c) - np.log(c)


def _ce_terms(o, t, attrs):
    axis = attrs["axis"] + 1
    log_p = stable_softmax(o, axis, log=True)
    return -t * log_p, log_p


def _ce_grad_output(o, t, log_p, attrs):
    return np.exp(log_p) * np.sum(t, axis=attrs["axis"] + 1, keepdims=True) - t


class LossOp(Op):
    """``loss[n] = sum(terms(output, target)[n])``; ``grads = (d terms / d output, d terms / d target)``,
    each ``(output, target, residual, attrs) -> array``; only the gradients backward needs are computed."""

    saves_output = False

    def __init__(self, name: str, terms: Callable, grads: tuple[Callable, Callable] | None,
                 needs_axis: bool = False):
        self.name, self.terms, self.grads, self.needs_axis = name, terms, grads, needs_axis
        self.differentiable = grads is not None

    def infer(self, in_shapes, in_dtypes, attrs, label):
        shape = broadcast_rule(in_shapes, label)
        if self.needs_axis:
            check_axis(attrs["axis"], len(shape), label)
        return Inferred(())

    def _aligned(self, step, xs):
        """Both inputs at the common static rank, and the attributes with ``axis`` resolved (once per shape)."""
        rank = max(len(s) for s in step.in_shapes)

        def resolved():
            attrs = dict(step.attrs)
            if self.needs_axis:
                attrs["axis"] = check_axis(attrs["axis"], rank, step.label)
            return attrs
        return align(xs[0], rank), align(xs[1], rank), cached(step, "attrs", resolved)

    def forward(self, step, xs, ctx):
        o, t, attrs = self._aligned(step, xs)
        terms, residual = self.terms(o, t, attrs)
        return terms.reshape(terms.shape[0], -1).sum(axis=1), residual

    def vjp(self, step, g, xs, y, residual, needs):
        o, t, attrs = self._aligned(step, xs)
        full = np.broadcast_shapes(o.shape, t.shape)
        g = g.reshape((g.shape[0],) + (1,) * (len(full) - 1))
        return [unbroadcast(np.broadcast_to(g * grad(o, t, residual, attrs), full), shp) if need else None
                for grad, shp, need in zip(self.grads, step.in_array_shapes, needs)]


class ErrorOp(LossOp):
    """classification_error: the fraction of positions (along every axis but ``axis``) where the
    target's class is not among the ``topN`` highest outputs. Not differentiable (a metric)."""

    def forward(self, step, xs, ctx):
        o, t, attrs = self._aligned(step, xs)
        o, t = np.broadcast_arrays(o, t)
        axis = attrs["axis"] + 1
        target_score = np.take_along_axis(o, np.expand_dims(np.argmax(t, axis=axis), axis), axis=axis)
        wrong = np.sum(o > target_score, axis=axis) >= attrs["topN"]
        return wrong.reshape(wrong.shape[0], -1).mean(axis=1).astype(step.dtype), None


LOSSES = {
    "squared_error": LossOp("SquaredError", lambda o, t, attrs: ((o - t) ** 2, None),
                            (lambda o, t, residual, attrs: 2 * (o - t), lambda o, t, residual, attrs: 2 * (t - o))),
    "binary_cross_entropy": LossOp("BinaryCrossEntropy", _bce_terms, (_bce_grad_output, _bce_grad_target)),
    "cross_entropy_with_softmax": LossOp("CrossEntropyWithSoftmax", _ce_terms,
                                         (_ce_grad_output, lambda o, t, log_p, attrs: -log_p), needs_axis=True),
    "classification_error": ErrorOp("ClassificationError", None, None, needs_axis=True),
}
for _op in LOSSES.values():
    register_op(_op)


@export(builds=LOSSES["squared_error"])
def squared_error(output, target, name: str = ""):
    """``sum((output - target)**2)`` over every static axis: one number per sample (as CNTK)."""
    return make(LOSSES["squared_error"], [output, target], name=name)


@export(builds=LOSSES["binary_cross_entropy"])
def binary_cross_entropy(output, target, name: str = ""):
    """``-sum(target*log(output) + (1-target)*log(1-output))`` per sample; ``output`` is a probability.

    ``output`` is clipped to ``[eps, 1 - eps]`` (machine epsilon of the dtype) so that saturated
    outputs give a large finite loss instead of ``inf``; where clipping acts the output gradient is 0.
    """
    return make(LOSSES["binary_cross_entropy"], [output, target], name=name)


@export(builds=LOSSES["cross_entropy_with_softmax"])
def cross_entropy_with_softmax(output_vector, target_vector, axis: int = -1, name: str = ""):
    """``-sum(target * log_softmax(output, axis))`` per sample (summed over the other axes too).

    ``output_vector`` holds unnormalised scores (logits); computed stably (no overflow for large scores).
    """
    axis = check_int(axis, "axis", "cross_entropy_with_softmax")
    return make(LOSSES["cross_entropy_with_softmax"], [output_vector, target_vector], {"axis": axis}, name)


@export(builds=LOSSES["classification_error"])
def classification_error(output_vector, target_vector, axis: int = -1, topN: int = 1, name: str = ""):  # noqa: N803
    """1 where the target's class (argmax of ``target_vector`` along ``axis``) is not among the ``topN``
    highest scores of ``output_vector``, else 0; averaged over any other axes. A metric: no gradient.
    Ties count in the target's favour."""
    attrs = {"axis": check_int(axis, "axis", "classification_error"),
             "topN": check_int(topN, "topN", "classification_error", minimum=1)}
    return make(LOSSES["classification_error"], [output_vector, target_vector], attrs, name)
