"""Normalization ops: batch normalization (running statistics, train/eval mode) and layer normalization.

``batch_normalization`` normalizes with the statistics of the minibatch in training mode
(``ctx.training``) and folds them into running estimates kept in two :class:`~minigraph.graph.Constant`
nodes, updated in place; in eval mode it normalizes with those running estimates. The running
variance tracks the unbiased minibatch variance (``n / (n - 1)`` times the biased one, ``n`` values
per statistic), as PyTorch and cuDNN do; normalization itself uses the biased one. ``spatial=True``
shares one mean/variance per channel (axis 0 of the static shape) over the batch and every spatial
position, as convolutional networks want; ``spatial=False`` keeps one per element.
``layer_normalization`` normalizes each sample over all its static axes.

Large operands are processed in cache-sized chunks on the copy threads
(:func:`minigraph.threads.map_chunks`). When the chunks hold whole statistics (a batch-last
activation is cut into channel blocks), the batch statistics, and in the backward pass the two sums
and the input gradient, each take one pass over the chunk; otherwise the statistics are whole-array
reductions. Either way every thread count gives the same bits.
"""
from __future__ import annotations

import math

import numpy as np

from ..checks import check_bool, check_number
from ..graph import Constant
from ..shapes import InferredDimension, shape_str
from ..threads import empty_as, map_chunks, outer_axis, worth_chunks
from .base import Inferred, Op, ShapeError, align, export, make, register_op, sum_over, unbroadcast


def _normalized(x: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    inv = 1.0 / np.sqrt(var + x.dtype.type(eps))
    return (x - mean) * inv, inv


def _whole_statistics_per_chunk(out: np.ndarray, stats: tuple) -> bool:
    """Whether :func:`~minigraph.threads.map_chunks` into ``out`` cuts only between statistics of
    shape ``stats`` (1 on the reduced axes): its chunks then hold every value of their statistics,
    as the channel blocks of a batch-last activation do."""
    return worth_chunks(out) and stats[outer_axis(out)] > 1


def _reduced_axes(stats_chunk: np.ndarray) -> tuple:
    """The axes a chunk's statistics reduce over: those of length 1 in their own chunk."""
    return tuple(axis for axis, n in enumerate(stats_chunk.shape) if n == 1)


def _batch_moments(x: np.ndarray, axes: tuple, stats: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, biased variance, x - mean)`` over ``axes`` (kept as size-1 axes, shape ``stats``):
    numpy's two-pass ``mean``/``var`` steps, with the centred operand kept for the normalization
    instead of being computed twice. Where chunks hold whole statistics, all three come from one
    chunked pass (the chunk read from memory once)."""
    centred = empty_as(x)
    if not _whole_statistics_per_chunk(centred, stats):
        count = x.size // math.prod(stats)
        mean = sum_over(x, axes)
        mean /= count
        np.subtract(x, mean, out=centred)
        var = sum_over(np.square(centred), axes)
        var /= count
        return mean, var, centred
    mean, var = np.empty(stats, x.dtype), np.empty(stats, x.dtype)

    def moments(centred, x, mean, var):
        reduced = _reduced_axes(mean)
        np.mean(x, axis=reduced, keepdims=True, out=mean)
        np.subtract(x, mean, out=centred)
        np.mean(np.square(centred), axis=reduced, keepdims=True, out=var)

    map_chunks(moments, centred, x, mean, var)
    return mean, var, centred


def _normalized_grad(dxhat: np.ndarray, xhat: np.ndarray, inv: np.ndarray, axes: tuple) -> np.ndarray:
    """Gradient w.r.t. ``x`` of ``xhat = (x - mean(x)) / sqrt(var(x) + eps)`` with statistics over ``axes``."""
    count = math.prod(dxhat.shape[a] for a in axes)
    return inv / count * (count * dxhat - dxhat.sum(axes, keepdims=True)
                          - xhat * (dxhat * xhat).sum(axes, keepdims=True))


class BatchNormOp(Op):
    """Inputs: operand ``(C, *spatial)`` (or any shape when not spatial), scale, bias, running mean,
    running variance, all of the statistics shape ``(C,)`` (spatial) or the operand's shape. The
    residual holds what the vjp reads (normalized operand, inverse deviation, mode, scale), so the
    operand itself need not be kept for backward."""

    file_defaults = {"unbiased_running_variance": False}  # files from before the option keep the biased variance

    name = "BatchNormalization"
    saves_inputs = saves_output = False
    keeps_layout = True
    forward_temporaries, backward_temporaries = 1.0, 2.0  # the squares of the centred operand; g*xhat, a product
    updates_inputs = (3, 4)  # the running mean and variance

    def infer(self, in_shapes, in_dtypes, attrs, label):
        shape = tuple(in_shapes[0])
        if attrs["spatial"] and not shape:
            raise ShapeError(f"{label}: spatial batch normalization needs an operand with a channel axis; got a "
                             f"scalar shape ()")
        stats = shape[:1] if attrs["spatial"] else shape
        filled = {}
        for slot, what in ((1, "scale"), (2, "bias"), (3, "running_mean"), (4, "running_var")):
            given = tuple(in_shapes[slot])
            if len(given) == len(stats) and all(g == InferredDimension or g == s for g, s in zip(given, stats)):
                if given != stats:
                    filled[slot] = stats
                continue
            per = "per channel (axis 0)" if attrs["spatial"] else "per element (spatial=False)"
            raise ShapeError(f"{label}: {what} has shape {shape_str(given)}; expected {shape_str(stats)} "
                             f"for an operand of shape {shape_str(shape)} ({per})")
        # a node without the attribute comes from a model file saved before the running variance
        # became unbiased: it keeps the biased running variance it was trained with
        return Inferred(shape, attrs={"unbiased_running_variance": attrs.get("unbiased_running_variance", False)},
                        input_shapes=filled)

    def check_stored_values(self, values, names, label):
        """A running mean is finite and a running variance finite and >= 0 (else eval mode gives NaN)."""
        for slot, what in ((3, "running mean"), (4, "running variance")):
            value = values[slot]
            if value is None or value.size == 0:
                continue
            if not np.isfinite(value).all():
                raise ValueError(f"{label}: the {what} {names[slot]!r} holds NaN or infinite values")
            if slot == 4 and value.min() < 0:
                raise ValueError(f"{label}: the running variance {names[slot]!r} must be >= 0, it holds "
                                 f"{value.min():.6g}")

    def describe(self, attrs):
        """The attributes in effect: ``momentum`` when given, else the time constant (never both)."""
        shown = dict(attrs)
        shown.pop("normalization_time_constant" if attrs.get("momentum") is not None else "momentum", None)
        return shown

    @staticmethod
    def _layout(step):
        """Reduction axes of the arrays (batch axis 0 included) and the broadcastable statistics shape."""
        rank = len(step.in_shapes[0])
        if step.attrs["spatial"]:
            return (0,) + tuple(range(2, rank + 1)), (1, step.in_shapes[0][0]) + (1,) * (rank - 1)
        return (0,), (1, *step.in_shapes[0])

    def forward(self, step, xs, ctx):
        x, scale, bias, running_mean, running_var = xs
        axes, stats = self._layout(step)
        eps = step.attrs["epsilon"]
        if ctx.training:
            mean, var, xhat = _batch_moments(x, axes, stats)
            count = x.size // mean.size  # values per statistic
            unbiased = step.attrs["unbiased_running_variance"] and count > 1
            var_estimate = var * (count / (count - 1)) if unbiased else var
            if ctx.statistics is None:
                self._update_running(step, x.shape[0], mean, var_estimate)
            else:  # collected, in the order of updates_inputs (mg.update_bn); the running estimates stay
                ctx.statistics[step.node] = (mean.reshape(running_mean.shape), var_estimate.reshape(running_var.shape))
        else:
            mean, var = running_mean.reshape(stats), running_var.reshape(stats)
            xhat = x - mean
        inv = 1.0 / np.sqrt(var + x.dtype.type(eps))
        scale, bias = scale.reshape(stats), bias.reshape(stats)
        y = empty_as(xhat, np.result_type(xhat, scale, bias))  # xhat's layout, as xhat * scale had

        def normalize(y, xhat, inv, scale, bias):  # the centred operand becomes the normalized one in place
            xhat *= inv
            np.multiply(xhat, scale, out=y)
            y += bias

        map_chunks(normalize, y, xhat, inv, scale, bias)
        return y, (xhat, inv, ctx.training, scale)

    @staticmethod
    def _update_running(step, batch: int, mean: np.ndarray, var: np.ndarray) -> None:
        """``running = (1 - m) * running + m * batch statistic``, in place in the Constant nodes.

        ``m`` is ``momentum`` when given, else CNTK's ``1 - exp(-batch / normalization_time_constant)``
        (time constant 0: the last minibatch only; infinite: never updated). ``var`` is the
        unbiased minibatch variance unless the node keeps the biased one.
        """
        momentum = step.attrs["momentum"]
        if momentum is None:
            tc = step.attrs["normalization_time_constant"]
            momentum = 1.0 if tc == 0 else -math.expm1(-batch / tc)
        for node, value in zip(step.node.inputs_direct[3:], (mean, var)):
            running = node.value
            running *= 1.0 - momentum
            running += momentum * value.reshape(running.shape)

    def vjp(self, step, g, xs, y, residual, needs):
        xhat, inv, training, scale = residual
        axes, stats = self._layout(step)
        grads = [None] * 5
        centring = needs[0] and training  # the batch statistics depend on x: the two sums enter dx
        a = scale * inv
        dx = empty_as(g, np.result_type(g, a)) if needs[0] else None
        if centring and _whole_statistics_per_chunk(dx, stats):
            sum_g, sum_gx = np.empty(a.shape, dx.dtype), np.empty(a.shape, dx.dtype)
            map_chunks(_centred_input_gradient(xhat.size // a.size, sums_in_chunk=True), dx, g, xhat, a, sum_g, sum_gx)
        else:
            sum_g = sum_over(g, axes) if centring or needs[2] else None
            sum_gx = sum_over(g * xhat, axes) if centring or needs[1] else None
            if centring:
                map_chunks(_centred_input_gradient(xhat.size // a.size), dx, g, xhat, a, sum_g, sum_gx)
            elif needs[0]:
                map_chunks(lambda dx, g, a: np.multiply(g, a, out=dx), dx, g, a)  # statistics fixed (eval mode)
        grads[0] = dx
        if needs[1]:
            grads[1] = sum_gx.reshape(step.in_array_shapes[1])
        if needs[2]:
            grads[2] = sum_g.reshape(step.in_array_shapes[2])
        return grads


def _centred_input_gradient(count: int, sums_in_chunk: bool = False):
    """The chunk function of training-mode batch normalization's input gradient,
    ``dx = a * (g - sum(g) / count - xhat * sum(g * xhat) / count)`` with ``a = scale * inv`` and
    ``count`` values per statistic, for :func:`~minigraph.threads.map_chunks` over
    ``(dx, g, xhat, a, sum_g, sum_gx)``. With ``sums_in_chunk`` (chunks that hold whole statistics)
    it first writes each chunk's two sums, so that ``dx`` follows while the chunk is in cache; else
    the sums are given."""
    def input_gradient(dx, g, xhat, a, sum_g, sum_gx):
        if sums_in_chunk:
            reduced = _reduced_axes(sum_g)
            np.sum(g, axis=reduced, keepdims=True, out=sum_g)
            np.multiply(g, xhat, out=dx)  # dx holds g * xhat until its sum is taken
            np.sum(dx, axis=reduced, keepdims=True, out=sum_gx)
        np.multiply(g, a, out=dx)
        dx -= xhat * (a * sum_gx / count)
        dx -= a * sum_g / count

    return input_gradient


BATCH_NORM = register_op(BatchNormOp())


@export(builds=BATCH_NORM)
def batch_normalization(operand, scale, bias, running_mean, running_var, spatial: bool = True,
                        normalization_time_constant: float = 5000, momentum: float | None = None,
                        epsilon: float = 1e-5, unbiased_running_variance: bool = True, name: str = ""):
    """``scale * (x - mean) / sqrt(var + epsilon) + bias`` with minibatch statistics in training mode
    and the running statistics (Constants, updated in place while training) in eval mode.

    Shapes: ``operand (C, *spatial)``; ``scale``, ``bias``, ``running_mean``, ``running_var`` ``(C,)``
    when ``spatial`` (statistics over batch and spatial positions), else the operand's shape
    (statistics over the batch only). ``momentum`` (0..1) overrides CNTK's
    ``normalization_time_constant`` (in samples): ``m = 1 - exp(-N / time_constant)`` per minibatch of
    ``N`` samples. ``unbiased_running_variance`` (default True, as PyTorch and cuDNN): the running
    variance tracks ``n / (n - 1)`` times the biased minibatch variance (``n`` values per statistic:
    ``N * prod(spatial)`` when ``spatial``, else ``N``; the biased one when ``n == 1``); False keeps
    the biased one (what models saved before this option was added were trained with). The
    normalization always uses the biased minibatch variance.
    """
    fn = "batch_normalization"
    spatial = check_bool(spatial, "spatial", fn)
    tc = check_number(normalization_time_constant, "normalization_time_constant", fn, minimum=0)
    m = None if momentum is None else check_number(momentum, "momentum", fn, minimum=0, maximum=1)
    eps = check_number(epsilon, "epsilon", fn, minimum=0)
    unbiased = check_bool(unbiased_running_variance, "unbiased_running_variance", fn)
    for what, node in (("running_mean", running_mean), ("running_var", running_var)):
        if not isinstance(node, Constant):
            raise TypeError(f"batch_normalization: {what} must be a Constant (its value is updated in place "
                            f"while training), got {node!r}")
    attrs = {"spatial": spatial, "normalization_time_constant": tc, "momentum": m, "epsilon": eps,
             "unbiased_running_variance": unbiased}
    return make(BATCH_NORM, [operand, scale, bias, running_mean, running_var], attrs, name)


class LayerNormOp(Op):
    """Inputs: operand, scale, bias; scale and bias broadcast against the operand's static shape.
    The residual holds what the vjp reads (normalized operand, inverse deviation, aligned scale)."""

    name = "LayerNormalization"
    saves_inputs = saves_output = False
    forward_temporaries, backward_temporaries = 3.0, 4.0

    def infer(self, in_shapes, in_dtypes, attrs, label):
        shape = tuple(in_shapes[0])
        for slot, what in ((1, "scale"), (2, "bias")):
            given = tuple(in_shapes[slot])
            fits = len(given) <= len(shape) and all(g == 1 or g == s for g, s in zip(given[::-1], shape[::-1]))
            if not fits:
                raise ShapeError(f"{label}: {what} of shape {shape_str(given)} does not broadcast to the operand's "
                                 f"shape {shape_str(shape)}; use () for one value or a trailing part of the shape")
        return Inferred(shape)

    @staticmethod
    def _axes(step):
        return tuple(range(1, len(step.in_shapes[0]) + 1))

    def forward(self, step, xs, ctx):
        x, scale, bias = xs
        axes, rank = self._axes(step), len(step.in_shapes[0])
        xhat, inv = _normalized(x, x.mean(axes, keepdims=True), x.var(axes, keepdims=True), step.attrs["epsilon"])
        scale = align(scale, rank)
        return scale * xhat + align(bias, rank), (xhat, inv, scale)

    def vjp(self, step, g, xs, y, residual, needs):
        xhat, inv, scale = residual
        grads = [None] * 3
        if needs[0]:
            grads[0] = _normalized_grad(g * scale, xhat, inv, self._axes(step))
        if needs[1]:
            grads[1] = unbroadcast(g * xhat, step.in_array_shapes[1])
        if needs[2]:
            grads[2] = unbroadcast(g, step.in_array_shapes[2])
        return grads


LAYER_NORM = register_op(LayerNormOp())


@export(builds=LAYER_NORM)
def layer_normalization(operand, scale, bias, epsilon: float = 1e-5, name: str = ""):
    """``scale * (x - mean) / sqrt(var + epsilon) + bias`` with mean and variance over all static axes
    of each sample. ``scale``/``bias`` broadcast against the operand (``()`` for one value each)."""
    eps = check_number(epsilon, "epsilon", "layer_normalization", minimum=0)
    return make(LAYER_NORM, [operand, scale, bias], {"epsilon": eps}, name)
