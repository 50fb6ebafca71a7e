"""Tensor product: CNTK's ``times``.

``times(left, right, output_rank)`` contracts the trailing ``k`` axes of ``left`` with the leading
``k`` axes of ``right``, where ``k = rank(right) - output_rank`` (the reduction rank); the last
``output_rank`` axes of ``right`` are the output axes::

    left (*L, *K) times right (*K, *R)  ->  (*L, *R)        len(R) == output_rank

Internally both operands are seen as matrices ``(m, k) @ (k, p)`` per sample, with
``m = prod(L)``, ``k = prod(K)``, ``p = prod(R)``.
"""
from __future__ import annotations

import math

import numpy as np

from ..checks import check_int
from ..shapes import InferredDimension, is_known, shape_str
from .base import Inferred, Op, ShapeError, export, make, register_op


def _fill_inferred(shape: tuple, axes: range, source: tuple) -> tuple:
    """``shape`` with its InferredDimension entries on ``axes`` taken from ``source`` (same length)."""
    filled = list(shape)
    for axis, d in zip(axes, source):
        if filled[axis] == InferredDimension:
            filled[axis] = d
    return tuple(filled)


class TimesOp(Op):
    name = "Times"

    def infer(self, in_shapes, in_dtypes, attrs, label):
        left, right = (tuple(s) for s in in_shapes)
        out_rank = attrs["output_rank"]
        k = len(right) - out_rank
        if k < 0 or k > len(left):
            raise ShapeError(f"{label}: cannot multiply {shape_str(left)} by {shape_str(right)} with output_rank="
                             f"{out_rank}: right needs rank output_rank + k with 0 <= k <= rank(left) = {len(left)} "
                             f"(k trailing axes of left are contracted with the k leading axes of right)")
        lo = len(left) - k
        filled = {}
        new_right = _fill_inferred(right, range(k), left[lo:])
        if new_right != right:
            filled[1] = right = new_right
        new_left = _fill_inferred(left, range(lo, len(left)), right[:k])
        if new_left != left:
            filled[0] = left = new_left
        for side, shape in (("left", left), ("right", right)):
            if InferredDimension in [d for d in shape if is_known(d)]:
                raise ShapeError(f"{label}: {side} operand {shape_str(shape)} keeps an InferredDimension that "
                                 f"times cannot infer (only contracted axes are filled from the other operand)")
        for i in range(k):
            a, b = left[lo + i], right[i]
            if a != b:
                raise ShapeError(f"{label}: cannot multiply {shape_str(left)} by {shape_str(right)} "
                                 f"(output_rank={out_rank}): contracted axis {i} has size {a} in left but {b} "
                                 f"in right; expected the last {k} axes of left {shape_str(left[lo:])} to equal "
                                 f"the first {k} axes of right")
        return Inferred(left[:lo] + right[k:], input_shapes=filled)

    @staticmethod
    def _sizes(step):
        left, right = step.in_shapes
        k = len(right) - step.attrs["output_rank"]
        return math.prod(left[:len(left) - k]), math.prod(right[:k]), math.prod(right[k:])

    def forward(self, step, xs, ctx):
        a, b = xs
        m, k, p = self._sizes(step)
        if b.shape[0] == 1:  # weights shared by every sample: one big matrix product over the batch
            y = a.reshape(a.shape[0] * m, k) @ b.reshape(k, p)
        else:
            y = np.matmul(a.reshape(a.shape[0], m, k), b.reshape(b.shape[0], k, p))
        return y.reshape((-1, *step.out_shape)), None

    def vjp(self, step, g, xs, y, residual, needs):
        a, b = xs
        m, k, p = self._sizes(step)
        ga = gb = None
        if b.shape[0] == 1:
            g2 = g.reshape(g.shape[0] * m, p)
            b2 = b.reshape(k, p)
            if needs[0]:
                ga = g2 @ b2.T
                ga = ga.reshape(g.shape[0], m * k).sum(axis=0, keepdims=True) if a.shape[0] == 1 else ga
            if needs[1]:
                gb = a.reshape(-1, k).T @ g2  # a has the batch of g here: sum over samples and rows
        else:
            g3 = g.reshape(g.shape[0], m, p)
            b3 = b.reshape(b.shape[0], k, p)
            if needs[0]:
                ga = np.matmul(g3, b3.transpose(0, 2, 1))
                ga = ga.sum(axis=0, keepdims=True) if a.shape[0] == 1 else ga
            if needs[1]:
                gb = np.matmul(a.reshape(a.shape[0], m, k).transpose(0, 2, 1), g3)
        return [None if ga is None else ga.reshape(step.in_array_shapes[0]),
                None if gb is None else gb.reshape(step.in_array_shapes[1])]


TIMES = register_op(TimesOp())


@export(operator="times", builds=TIMES)
def times(left, right, output_rank: int = 1, infer_input_rank_to_map: int = -1, name: str = ""):
    """Tensor product of ``left (*L, *K)`` and ``right (*K, *R)`` -> ``(*L, *R)``, ``len(R) = output_rank``.

    Examples: ``x (H, W, 3) times w (3, 5) -> (H, W, 5)``;
    ``x (16,) times W (16, 128, 7, 7)`` with ``output_rank=3`` -> ``(128, 7, 7)``.

    A parameter operand with ``InferredDimension`` in its contracted axes takes them from the other
    operand. ``infer_input_rank_to_map`` exists for CNTK signature compatibility: only the default
    -1 is supported. ``x @ w`` is ``times(x, w)``.
    """
    output_rank = check_int(output_rank, "output_rank", "times", minimum=0)
    if infer_input_rank_to_map != -1:
        raise ValueError(f"times: infer_input_rank_to_map={infer_input_rank_to_map!r} is not supported; "
                         f"leave it at -1 and give right its full shape (use InferredDimension for inferred sizes)")
    return make(TIMES, [left, right], {"output_rank": output_rank}, name)
