"""Numpy kernels of N-D convolution, transposed convolution and their weight gradient.

Seen from the convolution (docs/semantics.md): ``big`` ``(B, C, *N)`` is its input, ``small``
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

Memory layout: the kernels work on *batch-last* arrays ``(C, *spatial, B)``, so that every tap's
slice is made of long contiguous runs (spatial rows times the batch) and the GEMM operands need no
transposition; arrays come in and go out as ``(B, C, *spatial)`` views. Inputs laid out otherwise
are transposed one batch chunk at a time; a chain of convolutions never transposes. Loops run over kernel taps,
phases, groups and batch chunks only. A chunk of ``max_temp_mem_size_in_samples`` samples bounds the
temporary buffers; every chunk size gives the same values. The dtype (float32 or float64) is kept.

Tiny geometries (the digits demo's 8x8 images) gather and scatter through a 0/1 *selection matrix*
instead: ``S`` ``(prod(K) * prod(n), prod(N))`` holds a one where a tap of an output position reads a
position of ``big``, so im2col is one stacked GEMM ``S @ big`` and col2im ``S^T @ cols`` (see
:data:`SELECTION_FLOPS` for when).

The column and phase buffers come from :mod:`minigraph.workspace` (reused from call to call: a fresh
buffer of tens of MiB costs its page faults), and the copy passes (im2col, col2im, the batch
transposition) split their channels over :mod:`minigraph.threads` (``mg.set_num_threads``); every
thread count gives the same bits.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from math import prod

import numpy as np

from ..threads import parallel
from ..workspace import workspace

ALL = slice(None)


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

    Both directions split ``big`` by phase: on an axis with stride ``s``, big index ``j*s + r`` is
    row ``j`` of phase ``r``, and tap ``t`` with ``t*d - lo = shift*s + r`` connects small index ``i``
    with row ``i + shift`` of phase ``r``: unit-stride slices only.

    gather (im2col): per tap, its phase, the column index it fills, the phase index it reads and
    the slabs of columns that fall outside ``big`` (zeros; no padded copy of ``big`` is made).
    phases (col2im): per output phase, the index of ``big`` it covers, its buffer shape, whether the
    buffer must be zeroed first, and its taps ``(assign, columns index, buffer index)``: a tap is
    assigned where no earlier tap wrote, added elsewhere; the buffer is zeroed only when some cell
    would otherwise be added to before being written, or never written. Indexes are complete
    tuples (channel axis first, batch axis implicit) so that a call builds none.
    """

    def __init__(self, geom: Geometry):
        self.geom = geom
        self.tap_count = prod(geom.kernel)
        self.cells = prod(geom.small)
        axes = self._axes = list(zip(geom.big, geom.small, geom.strides, geom.dilation, geom.lower))
        self.strided = any(s > 1 for s in geom.strides)
        per_axis = [_axis_phases(N, n, k, s, d, lo) for (N, n, s, d, lo), k in zip(axes, geom.kernel)]
        # phases no tap reaches (strides beyond the kernel) are zeros: the output is cleared once
        # instead, so the plan's size follows the kernel, never the stride
        self.zero_first = any(len(phases) < min(s, N) for phases, (N, _, s, _, _) in zip(per_axis, axes))
        self.phases = []
        for combo in itertools.product(*per_axis):
            target = (ALL, *(slice(r, None, s) for (r, _, _), s in zip(combo, geom.strides)))
            shape = tuple(q for _, q, _ in combo)
            taps = [tuple(zip(*parts)) for parts in itertools.product(*(taps for _, _, taps in combo))]
            taps.sort(key=lambda t: t[1] != tuple(slice(0, q) for q in shape))  # a covering tap first
            self.phases.append((target, shape, prod(shape), *_schedule(shape, taps)))
        self.buffer_size = max((size for _, _, size, _, _ in self.phases), default=0)
        self.selection_size = self.tap_count * self.cells * prod(geom.big)  # elements of the selection matrix
        self._selections: dict = {}  # dtype -> the selection matrix in it

    @functools.cached_property
    def gather(self) -> list:
        """The im2col plan, ``(flat tap index, *_tap_gather(tap))`` per tap that reads ``big``; built on
        first use only, since a transposed convolution's forward needs only the col2im phases."""
        kernel = self.geom.kernel
        reach = [range(max(0, -(-(lo - s * (n - 1)) // d)), min(k, (N - 1 + lo) // d + 1))
                 for (N, n, s, d, lo), k in zip(self._axes, kernel)]
        # taps that read only padding are left out (their columns are zeros): the loop follows the
        # taps that reach ``big``, not a kernel that overhangs it
        return [(int(np.ravel_multi_index(tap, kernel)), *_tap_gather(tap, self._axes))
                for tap in itertools.product(*reach)]

    @functools.cached_property
    def gather_phases(self) -> dict:
        """The phases of ``big`` that im2col reads, each with its strided index."""
        return {phase: (ALL, *(slice(r, None, s) for r, s in zip(phase, self.geom.strides)))
                for phase in sorted({phase for _, phase, *_ in self.gather})}

    def selection_matrix(self, dtype) -> np.ndarray:
        """The 0/1 matrix ``S`` ``(prod(K) * prod(n), prod(N))`` in ``dtype``: row ``(tap, i)`` holds a
        one at the position of ``big`` that tap ``tap`` of output position ``i`` reads (none when it
        reads padding), so that ``cols = S @ big`` per channel and sample. Built once per dtype."""
        key = np.dtype(dtype)
        matrix = self._selections.get(key)
        if matrix is not None:
            return matrix
        g = self.geom
        rank = len(g.big)
        reads, inside = [], np.ones((1,) * (2 * rank), bool)
        for axis, (N, n, k, s, d, lo) in enumerate(zip(g.big, g.small, g.kernel, g.strides, g.dilation, g.lower)):
            shape = [1] * (2 * rank)
            shape[axis], shape[rank + axis] = k, n
            j = (np.arange(n)[None, :] * s + np.arange(k)[:, None] * d - lo).reshape(shape)  # read position
            reads.append(j)
            inside = inside & (j >= 0) & (j < N)
        inside = np.broadcast_to(inside, (*g.kernel, *g.small))
        rows = np.flatnonzero(inside)
        cols = np.ravel_multi_index(tuple(np.broadcast_to(j, inside.shape)[inside] for j in reads), g.big)
        matrix = np.zeros((self.tap_count * self.cells, prod(g.big)), key)
        matrix[rows, cols] = 1
        self._selections[key] = matrix  # a race builds it twice, the same
        return matrix

    def selection_for(self, channels: int, batch: int, dtype) -> np.ndarray | None:
        """``S`` in ``dtype`` when gathering ``channels`` x ``batch`` columns through it is cheaper
        than the strided copies (:data:`SELECTION_FLOPS`, :data:`SELECTION_MAX_SIZE`), else None."""
        if (self.selection_size > SELECTION_MAX_SIZE
                or 2 * max(channels * batch, 1) * self.selection_size > SELECTION_FLOPS):
            return None
        return self.selection_matrix(dtype)


def _schedule(shape: tuple, taps: list) -> tuple[bool, list]:
    """Whether a phase buffer must be zeroed, and for each tap whether it is assigned or added."""
    written = np.zeros(shape, bool)
    needs_zero, ops = False, []
    for tap, buf_slices, in_slices in taps:
        region = written[buf_slices]
        assign = not region.any()
        needs_zero |= not assign and not region.all()
        region[...] = True
        ops.append((assign, (ALL, *tap, *in_slices), (ALL, *buf_slices)))
    return needs_zero or not written.all(), ops


def _tap_gather(tap: tuple, axes: list) -> tuple:
    """For one tap: (phase of ``big``, column slices, phase slices, zero slabs). Output ``i`` reads
    ``i*s + t*d - lo``, row ``i + shift`` of phase ``r``, inside ``big`` for ``i0 <= i < i1``."""
    phase, dst, src, slabs = [], [], [], []
    for axis, (t, (N, n, s, d, lo)) in enumerate(zip(tap, axes)):
        shift, r = divmod(t * d - lo, s)
        i0 = min(n, max(0, -shift))
        i1 = max(i0, min(n, (N - 1 - r) // s - shift + 1))
        phase.append(r)
        dst.append(slice(i0, i1))
        src.append(slice(i0 + shift, i1 + shift))
        before = (ALL,) * (axis + 1)
        slabs += [before + (slice(0, i0),)] if i0 > 0 else []
        slabs += [before + (slice(i1, n),)] if i1 < n else []
    return tuple(phase), (ALL, *dst), (ALL, *src), slabs


def _axis_phases(N: int, n: int, k: int, s: int, d: int, lo: int) -> list:
    """For each output phase ``r`` on one axis that some tap reaches: ``(r, count, [(tap, buffer slice,
    input slice)])`` (at most ``k`` phases, whatever the stride).

    Output ``o = q*s + r`` receives tap ``t`` from input ``i = q - shift`` when
    ``t*d - lo - r = shift*s``.
    """
    phases = []
    # (t*d - lo) % s repeats with period s in t; only the taps t with 1 - n <= shift < count reach the
    # output, so the loops scale with the input and output, not with a kernel that overhangs them
    for r in sorted(r for r in {(t * d - lo) % s for t in range(min(k, s))} if r < N):
        count = (N - r + s - 1) // s
        taps = []
        first = max(0, -(-(lo + r + s * (1 - n)) // d))
        last = min(k - 1, (lo + r + s * (count - 1)) // d)
        for t in range(first, last + 1):
            shift, rem = divmod(t * d - lo - r, s)
            if rem:
                continue
            q0, q1 = max(0, shift), min(count, n + shift)
            if q0 < q1:
                taps.append((t, slice(q0, q1), slice(q0 - shift, q1 - shift)))
        if taps:
            phases.append((r, count, taps))
    return phases


def batch_last(a: np.ndarray) -> np.ndarray:
    """``(B, C, *S)`` -> the ``(C, *S, B)`` view (contiguous when ``a`` is laid out batch-last)."""
    return a.transpose(*range(1, a.ndim), 0)


def is_batch_last(a: np.ndarray) -> bool:
    """Whether ``a`` ``(B, C, *S)`` is laid out batch-last (its ``(C, *S, B)`` view is C-contiguous)."""
    return batch_last(a).flags.c_contiguous


def batch_first(a: np.ndarray) -> np.ndarray:
    """``(C, *S, B)`` -> the ``(B, C, *S)`` view."""
    return a.transpose(a.ndim - 1, *range(a.ndim - 1))


def is_chunked(batch: int, chunk: int) -> bool:
    """Whether ``max_temp_mem_size_in_samples=chunk`` splits a batch of ``batch`` samples (0: never)."""
    return 0 < chunk < batch


def _chunks(batch: int, chunk: int) -> list:
    """``[(b0, b1), ...]`` covering the batch ``chunk`` samples at a time (0: all); none for an empty batch."""
    step = chunk if is_chunked(batch, chunk) else max(batch, 1)
    return [(b, min(b + step, batch)) for b in range(0, batch, step)]


BATCH_BLOCK = 8
"""Samples per copy when a batch-first array is transposed to batch-last: each copied row is then 8
values (32 bytes of float32) long instead of one, which made the transposition 2.5-3.5x faster than
one whole-array copy (measured on 64x64x32x32, 32x64x256 and 64x3x64x64 float32 arrays)."""


def contiguous(a: np.ndarray) -> np.ndarray:
    """``a`` (any view whose last axis is the batch) as a C-contiguous array: ``a`` itself when it is
    one, else a copy made ``BATCH_BLOCK`` samples at a time, channel ranges on parallel threads (the
    same values as ``np.ascontiguousarray``)."""
    if a.flags.c_contiguous:
        return a
    out = np.empty(a.shape, a.dtype)

    def copy(c0: int, c1: int) -> None:
        for b in range(0, a.shape[-1], BATCH_BLOCK):
            out[c0:c1, ..., b:b + BATCH_BLOCK] = a[c0:c1, ..., b:b + BATCH_BLOCK]

    parallel(copy, a.shape[0], out.nbytes)
    return out


SELECTION_FLOPS = 2_500_000
"""The most multiply-adds (times 2) a selection-matrix im2col or col2im may cost: below it, the one
stacked GEMM beats a strided copy per tap, whose numpy calls cost more than their data (digits demo,
one thread, batch 48: im2col of 1 x 8x8 -> 3x3/2 13.9 -> 9.3 us, col2im of 24 x 2x2 -> 4x4/2 51.7 ->
22.1 us). Above it the GEMM's flops, ``2 * channels * batch * prod(K) * prod(n) * prod(N)``, lose
(24 channels of 8x8 -> 3x3/2: 41 -> 177 us). A call decides once for its whole batch, so every
``max_temp_mem_size_in_samples`` gives the same bits. Read at call time, so tests can force either path."""


SELECTION_MAX_SIZE = 1 << 15
"""The most elements a selection matrix may have (128 KiB in float32, cached per plan): a larger one
read for few columns is a matrix-vector product bound by memory (1 channel, 1 sample, 16x16 with a
3x3 kernel: 14 -> 62 us), and would stay in memory with its plan. The digits demo's largest is
16,384 (4x4 kernel, 4x4 -> 8x8)."""


DIRECT_RUN_BYTES = 128
"""The shortest run of contiguous samples (bytes) that im2col reads straight from a strided input:
shorter runs (a chunk of 8 float32 samples) gather 1.5-2x faster from one contiguous copy per phase."""


def _rows(a: np.ndarray, groups: int) -> np.ndarray:
    """Samples ``(Bc, C, *S)`` -> GEMM operand ``(groups, C/groups, prod(S) * Bc)``, batch-last: a view
    when ``a`` is already laid out so, else a copy of this chunk only."""
    return contiguous(batch_last(a)).reshape(groups, a.shape[1] // groups, -1)


def _finite(a: np.ndarray) -> bool:
    """Whether every value of ``a`` is finite (a finite sum says so; an overflowing one says no, and
    sends the caller to the copies, which are right for every value). The sum's own overflow or
    ``inf - inf`` warns no one: the copies report what the data does."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.add.reduce(a, axis=None)))


def _selection(plan: Plan, channels: int, operand: np.ndarray) -> np.ndarray | None:
    """The selection matrix for a whole call on ``operand`` ``(B, C, ...)`` (its im2col input or the
    transposed convolution's input), decided once so that every chunk of the batch takes the same
    path; None for the copies, also when ``operand`` holds a NaN or an infinity, which the matrix's
    zeros would spread over its whole sample (``0 * inf``) where the copies keep it at the
    positions that read it."""
    selection = plan.selection_for(channels, operand.shape[0], operand.dtype)
    return selection if selection is not None and _finite(operand) else None


def _im2col(big: np.ndarray, plan: Plan, selection: np.ndarray | None = None) -> np.ndarray:
    """Batch-last ``(C, *N, Bc)`` (any strides) -> columns ``(C, prod(K), *n, Bc)``, the taps of ``big`` seen by
    each output: one stacked GEMM through ``selection`` (:func:`_selection`) when given, else a
    strided copy per tap."""
    c, b = big.shape[0], big.shape[-1]
    cols = workspace("columns", (c, plan.tap_count, *plan.geom.small, b), big.dtype)
    if selection is not None:  # one 1 per row: the columns are copies of the input's values, exactly
        np.matmul(selection, contiguous(big).reshape(c, -1, b), out=cols.reshape(c, selection.shape[0], b))
        return cols
    gather = plan.gather
    missing = len(gather) < plan.tap_count  # taps that read only padding: zero columns
    direct = big.strides[-1] == big.itemsize and b * big.itemsize >= DIRECT_RUN_BYTES

    def fill(c0: int, c1: int) -> None:
        """The columns of channels ``[c0, c1)``."""
        part = big[c0:c1]
        if missing:
            cols[c0:c1].fill(0)
        if direct:
            # batch-last with long runs of samples: every tap reads them straight from ``big`` (a first
            # copy per phase cost 15-70 % more in all on the DCGAN layers at batch 64)
            phases = {phase: part[index] for phase, index in plan.gather_phases.items()}
        else:  # one strided copy per phase first, so that the taps read long runs
            phases = {phase: contiguous(part[index]) for phase, index in plan.gather_phases.items()}
        for t, phase, dst, src, slabs in gather:
            tap_cols = cols[c0:c1, t]
            tap_cols[dst] = phases[phase][src]
            for slab in slabs:
                tap_cols[slab] = 0

    parallel(fill, c, cols.nbytes)
    return cols


def _col2im(cols: np.ndarray, out: np.ndarray, plan: Plan, selection: np.ndarray | None = None) -> None:
    """Columns ``(C, *K, *n, Bc)`` -> batch-last ``out`` ``(C, *N, Bc)`` (overwritten), phase by phase.
    Without strides the single phase is ``out`` itself and needs no buffer. With ``selection``
    (:func:`_selection`), one stacked GEMM ``S^T @ cols``; a non-finite result (columns that overflowed
    from finite inputs: ``0 * inf`` spread it) is redone by the copies."""
    c, b = cols.shape[0], cols.shape[-1]
    if selection is not None:
        whole = (out if out.flags.c_contiguous else workspace("phases", out.shape, out.dtype)).reshape(c, -1, b)
        with np.errstate(invalid="ignore"):  # 0 * inf: redone below
            np.matmul(selection.T, cols.reshape(c, selection.shape[0], b), out=whole)
        if _finite(whole):
            if not out.flags.c_contiguous:  # a chunk of the batch: written into its columns of the output
                out[...] = whole.reshape(out.shape)
            return
    flat = workspace("phases", (c * b * plan.buffer_size,), cols.dtype) if plan.strided else None

    def add(c0: int, c1: int) -> None:
        """The output of channels ``[c0, c1)``, each range in its own part of the phase buffer."""
        if plan.zero_first:
            out[c0:c1].fill(0)
        for target, shape, size, needs_zero, taps in plan.phases:
            buf = flat[:c * b * size].reshape(c, *shape, b)[c0:c1] if plan.strided else out[c0:c1]
            if needs_zero:
                buf.fill(0)
            for assign, src, dst in taps:
                view = buf[dst]
                if assign:
                    np.copyto(view, cols[c0:c1][src])
                else:
                    np.add(view, cols[c0:c1][src], out=view)
            if plan.strided:
                out[c0:c1][target] = buf

    parallel(add, c, cols.nbytes)


def correlate(big: np.ndarray, w: np.ndarray, plan: Plan, groups: int, chunk: int,
              small: np.ndarray | None = None, want_out: bool = True):
    """Convolution of ``big`` ``(B, C, *N)`` with ``w`` ``(O, C/groups, *K)``: ``(B, O, *n)``, and the
    weight gradient ``sum_b small @ cols^T`` (shape of ``w``) when ``small`` ``(B, O, *n)`` is given.

    Returns ``(out or None, weight gradient or None)``.
    """
    batch, o, dtype = big.shape[0], w.shape[0], big.dtype
    out = np.empty((o, *plan.geom.small, batch), dtype) if want_out else None
    w_g = w.reshape(groups, o // groups, -1)
    w_grad = np.zeros(w_g.shape, dtype) if small is not None else None
    selection = _selection(plan, big.shape[1], big)
    for b0, b1 in _chunks(batch, chunk):
        cols = _im2col(batch_last(big[b0:b1]), plan, selection).reshape(groups, -1, plan.cells * (b1 - b0))
        if want_out:
            whole = b1 - b0 == batch
            res = (out.reshape(groups, o // groups, -1) if whole
                   else np.empty((groups, o // groups, cols.shape[-1]), dtype))
            for g in range(groups):
                np.matmul(w_g[g], cols[g], out=res[g])
            if not whole:
                out[..., b0:b1] = res.reshape(o, *plan.geom.small, b1 - b0)
        if small is not None:
            rows = _rows(small[b0:b1], groups)
            for g in range(groups):
                w_grad[g] += _weight_product(rows[g], cols[g])
    return (batch_first(out) if out is not None else None), (w_grad.reshape(w.shape) if small is not None else None)


def _weight_product(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``rows @ cols^T`` (``(O, M) @ (M, CK)``), a reduction over ``M`` positions times samples.
    When ``M`` dwarfs ``O`` and ``CK > O``, OpenBLAS runs the transposed product ``cols @ rows^T``
    about twice as fast (measured on the DCGAN layers); with ``CK <= O`` (few channels times taps,
    e.g. 64->3 channels, k4: ``CK = 48``) the transposed product is up to 10x slower instead, so the
    operand with more rows goes first. Both give the same sums up to rounding."""
    if rows.shape[1] >= 8 * rows.shape[0] and cols.shape[0] > rows.shape[0]:
        return (cols @ rows.T).T
    return rows @ cols.T


def scatter(small: np.ndarray, w: np.ndarray, plan: Plan, groups: int, chunk: int) -> np.ndarray:
    """Transposed convolution of ``small`` ``(B, O, *n)`` with ``w`` ``(O, C/groups, *K)``: ``(B, C, *N)``."""
    batch, o = small.shape[:2]
    c, cells = w.shape[1] * groups, plan.cells
    out = np.empty((c, *plan.geom.big, batch), small.dtype)
    w_g = w.reshape(groups, o // groups, -1)
    selection = _selection(plan, c, small)  # finite input columns can still overflow: _col2im checks
    for b0, b1 in _chunks(batch, chunk):
        samples = batch_last(small[b0:b1] if b1 - b0 < batch else small).reshape(o, cells, b1 - b0)
        cols = workspace("columns", (groups, w_g.shape[-1], cells * (b1 - b0)), out.dtype)
        # an input not laid out batch-last is transposed a block of positions at a time, each copy no
        # larger than the GEMM's result (an input with many channels can dwarf it) or 1/16 of the input
        step = cells if samples.flags.c_contiguous else max(-(-cells // 16), cells * c * plan.tap_count // o)
        for p0 in range(0, cells, step):
            p1 = min(p0 + step, cells)
            rows = contiguous(samples[:, p0:p1]).reshape(groups, o // groups, -1)
            for g in range(groups):
                np.matmul(w_g[g].T, rows[g], out=cols[g][:, p0 * (b1 - b0):p1 * (b1 - b0)])
            del rows  # before the next block's copy
        _col2im(cols.reshape(c, *plan.geom.kernel, *plan.geom.small, b1 - b0),
                out[..., b0:b1] if b1 - b0 < batch else out, plan, selection)
    return batch_first(out)
