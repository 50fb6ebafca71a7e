"""Per-sample losses and metrics (CNTK names): each reduces ``(output, target)`` to one number per
sample, static shape ``()`` and run-time shape ``(N,)``. Output and target broadcast like ``plus``.

Each loss is a row: elementwise terms (summed over every static axis) and their derivatives with
respect to output and target, side by side.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..checks import check_int
from ..errors import GraphError
from .base import Inferred, Op, align, broadcast_rule, cached, check_axis, export, make, register_op, unbroadcast
from .reductions import stable_softmax

BCE_LOG_FLOOR = -100.0
"""binary_cross_entropy clamps ``log(output)`` and ``log(1 - output)`` to at least this (PyTorch's BCELoss)."""
BCE_GRAD_EPSILON = 1e-12
"""... and divides its output gradient by ``max(output * (1 - output), this)`` (PyTorch's BCELoss)."""


def _bce_logs(o: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log(o)`` and ``log(1 - o)``, each clamped to ``>= -100``, so that saturated outputs give a
    large finite loss (100 per element at most) instead of ``inf``."""
    with np.errstate(divide="ignore"):  # log(0) = -inf, clamped just below
        return np.maximum(np.log(o), BCE_LOG_FLOOR), np.maximum(np.log1p(-o), BCE_LOG_FLOOR)


def _bce_terms(o, t, attrs):
    if np.any(o < 0) or np.any(o > 1):  # (NaN passes: it propagates like any NaN)
        raise GraphError(f"{attrs['label']}: output must hold probabilities in [0, 1] (apply a sigmoid, or use "
                         f"binary_cross_entropy_with_logits on the scores); got values from {np.nanmin(o)} to "
                         f"{np.nanmax(o)}")
    log_o, log_1mo = _bce_logs(o)
    return -(t * log_o + (1 - t) * log_1mo), None


def _bce_grad_output(o, t, residual, attrs):
    """``(o - t) / max(o * (1 - o), 1e-12)``: still large for very confident wrong outputs (a
    discriminator output far below float32's eps), never zero, never infinite."""
    return (o - t) / np.maximum(o * (1 - o), o.dtype.type(BCE_GRAD_EPSILON))


def _bce_grad_target(o, t, residual, attrs):
    log_o, log_1mo = _bce_logs(o)
    return log_1mo - log_o


def _bce_logits_terms(x, t, attrs):
    """``max(x, 0) - x*t + log(1 + exp(-|x|))``: exact for every score, no overflow; the residual
    ``exp(-|x|)`` serves the gradient."""
    e = np.exp(-np.abs(x))
    return np.maximum(x, 0) - x * t + np.log1p(e), e


def _bce_logits_grad_output(x, t, e, attrs):
    """``sigmoid(x) - t``, with the sigmoid from ``e = exp(-|x|)``: ``1/(1+e)`` for x >= 0, ``e/(1+e)`` else."""
    return np.where(x >= 0, 1, e) / (1 + e) - t


def _ce_terms(o, t, attrs):
    axis = attrs["axis"] + 1
    log_p = stable_softmax(o, axis, log=True)
    return -t * log_p, log_p


def _ce_grad_output(o, t, log_p, attrs):
    return np.exp(log_p) * np.sum(t, axis=attrs["axis"] + 1, keepdims=True) - t


class LossOp(Op):
    """``loss[n] = sum(terms(output, target)[n])``; ``grads = (d terms / d output, d terms / d target)``,
    each ``(output, target, residual, attrs) -> array``; only the gradients backward needs are computed.
    ``forward_temporaries`` / ``backward_temporaries``: numpy temporaries in multiples of the output operand's
    size (the loss itself is one number per sample)."""

    saves_output = False
    temporaries_per_input = True

    def __init__(self, name: str, terms: Callable | None, grads: tuple[Callable, Callable] | None,
                 needs_axis: bool = False, forward_temporaries: float = 0.0, backward_temporaries: float = 0.0):
        self.name, self.terms, self.grads, self.needs_axis = name, terms, grads, needs_axis
        self.differentiable = grads is not None
        self.forward_temporaries, self.backward_temporaries = forward_temporaries, backward_temporaries

    def infer(self, in_shapes, in_dtypes, attrs, label):
        shape = broadcast_rule(in_shapes, label)
        if self.needs_axis:
            check_axis(attrs["axis"], len(shape), label)
        return Inferred(())

    def _aligned(self, step, xs):
        """Both inputs at the common static rank, and the attributes with ``axis`` resolved (once per
        shape) and the node's ``label`` (for messages)."""
        rank = max(len(s) for s in step.in_shapes)

        def resolved():
            attrs = {**step.attrs, "label": step.label}
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
                            (lambda o, t, residual, attrs: 2 * (o - t), lambda o, t, residual, attrs: 2 * (t - o)),
                            forward_temporaries=2.0, backward_temporaries=3.0),
    "binary_cross_entropy": LossOp("BinaryCrossEntropy", _bce_terms, (_bce_grad_output, _bce_grad_target),
                                   forward_temporaries=4.0, backward_temporaries=5.0),
    "binary_cross_entropy_with_logits": LossOp("BinaryCrossEntropyWithLogits", _bce_logits_terms,
                                               (_bce_logits_grad_output, lambda x, t, e, attrs: -x)),
    "cross_entropy_with_softmax": LossOp("CrossEntropyWithSoftmax", _ce_terms,
                                         (_ce_grad_output, lambda o, t, log_p, attrs: -log_p), needs_axis=True,
                                         forward_temporaries=3.0, backward_temporaries=3.0),
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

    As PyTorch's ``BCELoss``: each log is clamped to ``>= -100`` (saturated outputs give a large finite
    loss, not ``inf``) and the output gradient is ``(output - target) / max(output*(1 - output), 1e-12)``,
    so very confident wrong outputs (a discriminator's below float32's eps) still get a strong gradient.
    Outputs outside ``[0, 1]`` raise :class:`~minigraph.errors.GraphError` when the loss runs. For
    scores (logits), :func:`binary_cross_entropy_with_logits` is exact and stable.
    """
    return make(LOSSES["binary_cross_entropy"], [output, target], name=name)


@export(builds=LOSSES["binary_cross_entropy_with_logits"])
def binary_cross_entropy_with_logits(output, target, name: str = ""):
    """``binary_cross_entropy(sigmoid(output), target)`` computed from the scores ``output`` directly,
    stably (PyTorch's ``BCEWithLogitsLoss`` without weights): per element
    ``max(x, 0) - x*target + log(1 + exp(-|x|))``, gradient ``sigmoid(x) - target`` (w.r.t. the
    target: ``-x``). Summed over every static axis: one number per sample. Shapes broadcast like ``plus``.

    >>> import minigraph as mg, numpy as np
    >>> x, t = mg.input_variable((2,), np.float64), mg.input_variable((2,), np.float64)
    >>> mg.binary_cross_entropy_with_logits(x, t).eval({x: [[1000.0, -1000.0]], t: [[0.0, 0.0]]})
    array([1000.])

    Losses are training-time ops: :func:`minigraph.export_onnx` raises ``ExportError`` for them, as
    for every loss (export the model, not the criterion).
    """
    return make(LOSSES["binary_cross_entropy_with_logits"], [output, target], name=name)


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
