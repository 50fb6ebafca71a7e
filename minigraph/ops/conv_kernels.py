"""Numpy kernels of N-D convolution, transposed convolution and their weight gradient.

Seen from the convolution (SEMANTICS.md): ``big`` ``(B, C, *N)`` is its input, ``small``
``(B, O, *n)`` its output, ``w`` ``(O, C/groups, *K)`` its weight, and
``small[b, o, i] = sum_{c, k} w[o, c, k] * big[b, c, i*s + k*d - lo]`` (zeros outside ``[0, N)``).
The transposed convolution with map ``(I, O/groups, *K)`` is the same relation read backwards (its
input is ``small``, its output ``big``), so three kernels serve both ops:

* :func:`correlate` - gather every kernel tap of ``big`` (im2col, one strided copy per tap) and
  multiply by ``w`` in one GEMM over channels (convolution forward, transposed-convolution
  backward-data); the same gathered columns give the weight gradient ``small @ cols^T``.
* :func:`scatter` - one GEMM ``cols = w^T small`` on the raw input (no multiplications by inserted
  zeros), then col2im by output phase: for each phase ``r in [0, s)^d`` the taps that land on it are
  added densely into a contiguous buffer, written to ``big[..., r::s]`` in one strided copy
  (transposed-convolution forward, convolution backward-data).

Loops run over kernel taps, phases and batch chunks only. A chunk of ``max_temp_mem_size_in_samples``
samples bounds the temporary buffers; every chunk size gives the same values. The dtype of the inputs
(float32 or float64) is kept.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from math import prod

import numpy as np

from .conv_geometry import effective_kernel


@dataclass(frozen=True)
class Geometry:
    """Concrete per-axis geometry: lengths ``big`` (N) and ``small`` (n), kernel, strides, dilation, lower pads."""

    big: tuple
    small: tuple
    kernel: tuple
    strides: tuple
    dilation: tuple
    lower: tuple


class Plan:
    """The index plan of one geometry, built once per node and shape (cached by the ops).

    gather: for each kernel tap, the slices of the zero-padded ``big`` that it reads.
    phases: for each output phase, the slices of ``big`` it covers, its buffer shape and the
    ``(tap, buffer slices, small slices)`` it receives; the first entry covers the whole buffer
    when some tap does (then the buffer is assigned, not zeroed and added to).
    """

    def __init__(self, geom: Geometry):
        self.geom = geom
        self.taps = list(np.ndindex(*geom.kernel))
        axes = list(zip(geom.big, geom.small, geom.kernel, geom.strides, geom.dilation, geom.lower))
        # im2col: padded position p = big index + lo, covering [0, (n - 1)*s + keff)
        self.padded = tuple((n - 1) * s + effective_kernel(k, d) for N, n, k, s, d, lo in axes)
        self.copy_to = tuple(slice(max(lo, 0), min(L, N + lo)) for (N, n, k, s, d, lo), L in zip(axes, self.padded))
        self.copy_from = tuple(slice(max(-lo, 0), min(N, L - lo)) for (N, n, k, s, d, lo), L in zip(axes, self.padded))
        self.unpadded = all(lo == 0 and L == N for (N, n, k, s, d, lo), L in zip(axes, self.padded))
        self.gather = [tuple(slice(t * d, t * d + (n - 1) * s + 1, s) for t, (N, n, k, s, d, lo) in zip(tap, axes))
                       for tap in self.taps]
        # col2im by phase
        per_axis = [_axis_phases(*a) for a in axes]
        self.phases = []
        for combo in itertools.product(*per_axis):
            out_slices = tuple(slice(r, None, s) for (r, _, _), s in zip(combo, geom.strides))
            shape = tuple(q for _, q, _ in combo)
            adds = []
            for parts in itertools.product(*(taps for _, _, taps in combo)):
                tap = tuple(p[0] for p in parts)
                full = all(qs == slice(0, q) for (_, qs, _), q in zip(parts, shape))
                adds.append((full, tap, tuple(p[1] for p in parts), tuple(p[2] for p in parts)))
            adds.sort(key=lambda a: not a[0])  # a covering tap first
            self.phases.append((out_slices, shape, bool(adds) and adds[0][0], [a[1:] for a in adds]))
        self.buffer_size = max((prod(shape) for _, shape, _, _ in self.phases), default=0)


def _axis_phases(N: int, n: int, k: int, s: int, d: int, lo: int) -> list:
    """For each output phase ``r`` on one axis: ``(r, count, [(tap, buffer slice, input slice)])``.

    Output ``o = q*s + r`` receives tap ``t`` from input ``i = q - shift`` when
    ``t*d - lo - r = shift*s``.
    """
    phases = []
    for r in range(min(s, N)):
        count = (N - r + s - 1) // s
        taps = []
        for t in range(k):
            shift, rem = divmod(t * d - lo - r, s)
            if rem:
                continue
            q0, q1 = max(0, shift), min(count, n + shift)
            if q0 < q1:
                taps.append((t, slice(q0, q1), slice(q0 - shift, q1 - shift)))
        phases.append((r, count, taps))
    return phases


def _chunks(batch: int, chunk: int):
    step = chunk if chunk > 0 else batch
    return [(b, min(b + step, batch)) for b in range(0, batch, step)]


def _im2col(big: np.ndarray, plan: Plan) -> np.ndarray:
    """``(B, C, *N)`` -> columns ``(C, prod(K), B * prod(n))``, the taps of ``big`` seen by each output."""
    b, c = big.shape[:2]
    src = big.swapaxes(0, 1)
    if not plan.unpadded:
        padded = np.zeros((c, b, *plan.padded), big.dtype)
        padded[(slice(None), slice(None), *plan.copy_to)] = src[(slice(None), slice(None), *plan.copy_from)]
        src = padded
    cols = np.empty((c, len(plan.taps), b, *plan.geom.small), big.dtype)
    for t, sl in enumerate(plan.gather):
        cols[:, t] = src[(slice(None), slice(None), *sl)]
    return cols.reshape(c, len(plan.taps), -1)


def _col2im(cols: np.ndarray, out: np.ndarray, plan: Plan) -> None:
    """Columns ``(C, *K, B, *n)`` -> ``out`` ``(B, C, *N)`` (overwritten), phase by phase."""
    c, b = cols.shape[0], out.shape[0]
    flat = np.empty(c * b * plan.buffer_size, cols.dtype)
    out_t = out.swapaxes(0, 1)
    everything = (slice(None), slice(None))
    for out_slices, shape, covered, adds in plan.phases:
        target = out_t[(*everything, *out_slices)]
        if not adds:
            target[...] = 0
            continue
        buf = flat[:c * b * prod(shape)].reshape(c, b, *shape)
        if not covered:
            buf.fill(0)
        for j, (tap, buf_slices, in_slices) in enumerate(adds):
            src = cols[(slice(None), *tap, slice(None), *in_slices)]
            if j == 0 and covered:
                np.copyto(buf, src)
            else:
                dst = buf[(*everything, *buf_slices)]
                np.add(dst, src, out=dst)
        target[...] = buf


def _grouped(a: np.ndarray, groups: int) -> np.ndarray:
    """``(C, ...)`` -> ``(groups, C/groups * ..., last)``: one GEMM operand per group."""
    return a.reshape(groups, -1, a.shape[-1])


def correlate(big: np.ndarray, w: np.ndarray, plan: Plan, groups: int, chunk: int,
              small: np.ndarray | None = None, want_out: bool = True):
    """Convolution of ``big`` ``(B, C, *N)`` with ``w`` ``(O, C/groups, *K)``: ``(B, O, *n)``, and the
    weight gradient ``sum_b small @ cols^T`` (shape of ``w``) when ``small`` ``(B, O, *n)`` is given.

    Returns ``(out or None, weight gradient or None)``.
    """
    batch, o = big.shape[0], w.shape[0]
    dtype = np.result_type(big, w)
    out = np.empty((batch, o, *plan.geom.small), dtype) if want_out else None
    w_g = w.reshape(groups, o // groups, -1)
    w_grad = np.zeros(w_g.shape, dtype) if small is not None else None
    for b0, b1 in _chunks(batch, chunk):
        cols = _grouped(_im2col(big[b0:b1], plan), groups)
        if want_out:
            res = np.matmul(w_g, cols).reshape(o, b1 - b0, *plan.geom.small)
            out[b0:b1] = res.swapaxes(0, 1)
        if small is not None:
            rows = small[b0:b1].swapaxes(0, 1).reshape(groups, o // groups, -1)
            w_grad += np.matmul(rows, cols.transpose(0, 2, 1))
    return out, (w_grad.reshape(w.shape) if w_grad is not None else None)


def scatter(small: np.ndarray, w: np.ndarray, plan: Plan, groups: int, chunk: int) -> np.ndarray:
    """Transposed convolution of ``small`` ``(B, O, *n)`` with ``w`` ``(O, C/groups, *K)``: ``(B, C, *N)``."""
    batch, o = small.shape[:2]
    c = w.shape[1] * groups
    out = np.empty((batch, c, *plan.geom.big), np.result_type(small, w))
    w_t = w.reshape(groups, o // groups, -1).transpose(0, 2, 1)
    for b0, b1 in _chunks(batch, chunk):
        rows = small[b0:b1].swapaxes(0, 1).reshape(groups, o // groups, -1)
        cols = np.matmul(w_t, rows).reshape(c, *plan.geom.kernel, b1 - b0, *plan.geom.small)
        _col2im(cols, out[b0:b1], plan)
    return out
