"""Dropout: inverted dropout while training, identity otherwise."""
from __future__ import annotations

from ..checks import check_number
from .base import Inferred, Op, export, make, register_op


class DropoutOp(Op):
    """Training: each element is zeroed with probability ``dropout_rate`` and the survivors are scaled
    by ``1 / (1 - dropout_rate)`` so that the expected value is unchanged; the mask is the residual.
    Evaluation: identity. Randomness comes from the run's generator (``ctx.rng``), so ``eval``/``grad``
    with ``seed=`` (or :func:`minigraph.set_seed`) reproduce masks.

    The mask has the shape of the array the op gets: one per sample for values that depend on a fed
    input, and a single one for a value computed only from parameters and constants (run-time batch
    axis 1), which is one tensor shared by every sample. As PyTorch's ``dropout`` of a weight tensor
    (DropConnect), every sample of the run then sees the same dropped entries."""

    name = "Dropout"
    saves_inputs = saves_output = False
    keeps_layout = True
    forward_temporaries = 2.0  # the uniform draws and the boolean mask before it is scaled

    def infer(self, in_shapes, in_dtypes, attrs, label):
        return Inferred(tuple(in_shapes[0]))

    def forward(self, step, xs, ctx):
        rate = step.attrs["dropout_rate"]
        if not ctx.training or rate == 0.0:
            return xs[0], None
        x = xs[0]
        mask = (ctx.rng.random(x.shape, dtype=x.dtype) >= rate).astype(x.dtype) / x.dtype.type(1.0 - rate)
        return x * mask, mask

    def vjp(self, step, g, xs, y, residual, needs):
        return [g if residual is None else g * residual]


DROPOUT = register_op(DropoutOp())


@export(builds=DROPOUT)
def dropout(x, dropout_rate: float = 0.5, name: str = ""):
    """Inverted dropout of ``x`` (same shape) in training runs (``training=True``); identity in evaluation.

    ``dropout_rate`` is the probability of dropping an element, in ``[0, 1)``. A value computed only
    from parameters (no batch axis) gets one mask per run, shared by every sample.
    """
    rate = check_number(dropout_rate, "dropout_rate", "dropout")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout: dropout_rate {dropout_rate} must be in [0, 1) (the probability of dropping)")
    return make(DROPOUT, [x], {"dropout_rate": rate}, name)
