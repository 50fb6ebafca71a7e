"""Convolution and ConvolutionTranspose: N-D, strides, pads, dilation, groups, CNTK semantics.

Shapes (static, batch excluded): operand ``(C, *spatial)`` (``(*spatial)`` with ``reduction_rank=0``,
then ``C = 1``); convolution map ``(O, C/groups, *K)`` for :func:`convolution` and ``(C, O/groups, *K)``
for :func:`convolution_transpose`; output ``(O, *out_spatial)``. The number of spatial axes is the
kernel's rank. The shape rule resolves every padding option to per-axis ``lower_pad``/``upper_pad``
and the output size (``output_shape``), stored on the node; sizes follow
:mod:`minigraph.ops.conv_geometry` and the arithmetic runs in :mod:`minigraph.ops.conv_kernels`.
The two ops are adjoint: each one's backward-data is the other's forward.
"""
from __future__ import annotations

import numpy as np

from ..checks import check_int, is_int
from ..shapes import InferredDimension, is_known, shape_str
from . import conv_geometry as geo
from .base import Inferred, Op, ShapeError, cached, export, make, register_op
from .conv_kernels import (
    DIRECT_RUN_BYTES,
    Geometry,
    Plan,
    batch_first,
    batch_last,
    contiguous,
    correlate,
    is_batch_last,
    is_chunked,
    scatter,
)


class _ConvolutionOp(Op):
    """Shared by both ops: argument checks, channel rules, run-time plan. Inputs: ``[map, operand]``."""

    saves_output = False
    column_buffers = True
    direct_run_bytes = DIRECT_RUN_BYTES
    transposed = False
    in_channel_axis = 1  # axis of the map that holds (input channels / groups)

    # shape rule ---------------------------------------------------------------------------
    def infer(self, in_shapes, in_dtypes, attrs, label):
        w_shape, x_shape = (tuple(s) for s in in_shapes)
        kernel = self._kernel(w_shape, label)
        rank = len(kernel)
        rr = attrs["reduction_rank"]
        if not is_int(rr) or rr not in (0, 1):
            raise ValueError(f"{label}: reduction_rank must be 0 (operand without channel axis) or 1, got {rr!r}")
        if len(x_shape) != rank + rr:
            expected = f"(C, {rank} spatial)" if rr else f"({rank} spatial, no channel axis: reduction_rank=0)"
            raise ShapeError(f"{label}: operand of shape {shape_str(x_shape)} has rank {len(x_shape)}; the "
                             f"{rank}D kernel of convolution_map {shape_str(w_shape)} "
                             f"needs rank {rank + rr} {expected}")
        channels = x_shape[0] if rr else 1
        groups = _check_options(attrs, label)
        if is_known(channels) and channels % groups:
            raise ShapeError(f"{label}: groups={groups} does not divide the {channels} input channels of operand "
                             f"{shape_str(x_shape)}")
        w_full, out_channels = self._channels(w_shape, channels, groups, x_shape, label)
        strides = geo.per_axis_ints(attrs["strides"], "strides", rank, kernel, label, 1)
        dilation = geo.per_axis_ints(attrs["dilation"], "dilation", rank, kernel, label, 1)
        modes = _pad_modes(attrs, rank, kernel, label)
        spatial = x_shape[rr:]
        out, lower, upper = self._resolve(spatial, kernel, strides, dilation, modes, out_channels, attrs, label)
        resolved = {"kernel_shape": kernel, "strides": strides, "dilation": dilation,
                    "lower_pad": tuple(lower), "upper_pad": tuple(upper), "output_shape": tuple(out)}
        inputs = {0: w_full} if w_full != w_shape else {}
        return Inferred((out_channels, *out), resolved, inputs)

    @staticmethod
    def _kernel(w_shape, label) -> tuple:
        if len(w_shape) < 3:
            raise ShapeError(f"{label}: convolution_map of shape {shape_str(w_shape)} has rank {len(w_shape)}; "
                             f"expected (channels, channels/groups, *kernel) with at least one kernel axis")
        kernel = w_shape[2:]
        if not all(is_known(k) and k > 0 for k in kernel):
            raise ShapeError(f"{label}: convolution_map of shape {shape_str(w_shape)}: kernel sizes "
                             f"{shape_str(kernel)} must be positive ints (only the input-channel axis may be inferred)")
        return tuple(kernel)

    def _fill_in_channels(self, w_shape, per_group, x_shape, label) -> tuple:
        """The map's shape with its input-channel axis checked against, or inferred from, the operand."""
        axis = self.in_channel_axis
        have = w_shape[axis]
        if have == InferredDimension:
            return w_shape[:axis] + (per_group,) + w_shape[axis + 1:]
        if is_known(per_group) and have != per_group:
            raise ShapeError(f"{label}: channel mismatch: operand {shape_str(x_shape)} gives {per_group} input "
                             f"channels{self._per_group_note}, but convolution_map {shape_str(w_shape)} has "
                             f"{have} on its axis {axis}")
        return w_shape

    # run time -----------------------------------------------------------------------------
    def _plan(self, step) -> Plan:
        def plan() -> Plan:
            a = step.attrs
            x_spatial = tuple(step.in_shapes[1][a["reduction_rank"]:])
            y_spatial = tuple(step.out_shape[1:])
            big, small = (y_spatial, x_spatial) if self.transposed else (x_spatial, y_spatial)
            return Plan(Geometry(big, small, a["kernel_shape"], a["strides"], a["dilation"], a["lower_pad"]))
        return cached(step, "plan", plan)

    @staticmethod
    def _arrays(step, xs):
        """The map without its batch axis and the operand with a channel axis."""
        w, x = xs
        if w.shape[0] != 1:
            raise ShapeError(f"{step.label}: convolution_map varies over the batch (it depends on a fed input, "
                             f"array shape {w.shape}); per-sample kernels are not supported")
        if step.attrs["reduction_rank"] == 0:
            x = x[:, None]
        return w[0], x

    @staticmethod
    def _operand_grad(step, gx):
        return gx[:, 0] if step.attrs["reduction_rank"] == 0 else gx

    def describe(self, attrs):
        keys = ("kernel_shape", "strides", "dilation", "groups", "lower_pad", "upper_pad", "output_shape")
        return {k: attrs[k] for k in keys if k in attrs}


class ConvolutionOp(_ConvolutionOp):
    """``y[b, o, i] = sum_{c, k} W[o, c, k] x[b, c, i*s + k*d - lo]`` (zeros outside the operand)."""

    name = "Convolution"
    _per_group_note = " per group"

    def _channels(self, w_shape, channels, groups, x_shape, label):
        out_channels = w_shape[0]
        if out_channels == InferredDimension or out_channels % groups:
            raise ShapeError(f"{label}: convolution_map {shape_str(w_shape)}: its output channels (axis 0) must be "
                             f"a positive multiple of groups={groups}")
        return self._fill_in_channels(w_shape, channels // groups, x_shape, label), out_channels

    def _resolve(self, spatial, kernel, strides, dilation, modes, out_channels, attrs, label):
        out, lower, upper = [], [], []
        for axis, (n, k, s, d, mode) in enumerate(zip(spatial, kernel, strides, dilation, modes)):
            size, lo, hi = geo.conv_axis(n, k, s, d, mode)
            if is_known(size) and size < 1:
                raise ShapeError(f"{label}: operand spatial shape {shape_str(spatial)} is too small on axis {axis}: "
                                 f"input {n} with pads {_pair(lo, hi)} is shorter than the dilated kernel "
                                 f"{geo.effective_kernel(k, d)} (filter {k}, dilation {d})")
            out.append(size), lower.append(lo), upper.append(hi)
        return out, lower, upper

    def forward(self, step, xs, ctx):
        w, x = self._arrays(step, xs)
        y, _ = correlate(x, w, self._plan(step), step.attrs["groups"], step.attrs["max_temp_mem_size_in_samples"])
        return y, None

    def vjp(self, step, g, xs, y, residual, needs):
        w, x = self._arrays(step, xs)
        plan, groups, chunk = self._plan(step), step.attrs["groups"], step.attrs["max_temp_mem_size_in_samples"]
        gw = correlate(x, w, plan, groups, chunk, small=g, want_out=False)[1][None] if needs[0] else None
        gx = self._operand_grad(step, scatter(g, w, plan, groups, chunk)) if needs[1] else None
        return [gw, gx]


class ConvolutionTransposeOp(_ConvolutionOp):
    """``y[b, o, i*s + k*d - lo] += W[c, o, k] x[b, c, i]``; contributions outside the output are dropped."""

    name = "ConvolutionTranspose"
    transposed = True
    in_channel_axis = 0
    _per_group_note = ""

    def _channels(self, w_shape, channels, groups, x_shape, label):
        if w_shape[1] == InferredDimension:
            raise ShapeError(f"{label}: convolution_map {shape_str(w_shape)}: output channels per group (axis 1) "
                             f"cannot be inferred; give them")
        return self._fill_in_channels(w_shape, channels, x_shape, label), w_shape[1] * groups

    def _resolve(self, spatial, kernel, strides, dilation, modes, out_channels, attrs, label):
        requested = _requested_output(attrs["output_shape"], len(kernel), out_channels, label)
        geometry = list(zip(spatial, kernel, strides, dilation, modes))
        out, lower, upper, invalid = [], [], [], []
        for axis, ((n, k, s, d, mode), want) in enumerate(zip(geometry, requested)):
            first, last = geo.transpose_sizes(n, k, s, d, mode)
            size, lo, hi = geo.transpose_axis(n, k, s, d, mode, want)
            if is_known(first) and not max(first, 1) <= size <= last:  # symbolic: checked once bound
                invalid.append((axis, first, last))
                continue
            out.append(size), lower.append(lo), upper.append(hi)
        if invalid:
            raise ShapeError(_output_shape_message(label, attrs["output_shape"], requested, geometry, invalid))
        return out, lower, upper

    def forward(self, step, xs, ctx):
        w, x = self._arrays(step, xs)
        chunk = step.attrs["max_temp_mem_size_in_samples"]
        kept = None
        if ctx.for_backward and not is_chunked(x.shape[0], chunk) and not is_batch_last(x):
            # the kernels read the operand batch-last: transpose it once, whole, and keep the copy for
            # the weight gradient, which would otherwise transpose it again (a run with a memory bound
            # per chunk transposes a block at a time instead)
            kept = contiguous(batch_last(x))
            x = batch_first(kept)
        y = scatter(x, w, self._plan(step), step.attrs["groups"], chunk)
        return y, kept

    def vjp(self, step, g, xs, y, residual, needs):
        w, x = self._arrays(step, xs)
        if residual is not None:
            x = batch_first(residual)
        gx, gw = correlate(g, w, self._plan(step), step.attrs["groups"], step.attrs["max_temp_mem_size_in_samples"],
                           small=x if needs[0] else None, want_out=needs[1])
        return [gw[None] if needs[0] else None, self._operand_grad(step, gx) if needs[1] else None]


CONVOLUTION = register_op(ConvolutionOp())
CONVOLUTION_TRANSPOSE = register_op(ConvolutionTransposeOp())


# argument checks ---------------------------------------------------------------------------------
def _check_options(attrs, label) -> int:
    groups = check_int(attrs["groups"], "groups", label, minimum=1)
    sharing = attrs["sharing"]
    if not all(v is True for v in (sharing if isinstance(sharing, tuple) else (sharing,))):
        raise ValueError(f"{label}: sharing={sharing!r}: unshared weights (sharing=False) are not supported; "
                         f"use sharing=True")
    check_int(attrs["max_temp_mem_size_in_samples"], "max_temp_mem_size_in_samples", label, minimum=0)  # 0: whole batch
    return groups


def _pad_modes(attrs, rank, kernel, label) -> tuple:
    """Per-axis pad modes; explicit ``lower_pad``/``upper_pad`` (a missing one is 0) take precedence."""
    lower, upper = attrs["lower_pad"], attrs["upper_pad"]
    if lower is None and upper is None:
        return geo.per_axis_pad_modes(attrs["auto_padding"], rank, kernel, label)
    pads = [geo.per_axis_ints(0 if v is None else v, arg, rank, kernel, label, 0)
            for arg, v in (("lower_pad", lower), ("upper_pad", upper))]
    return tuple(zip(*pads))


def _requested_output(output_shape, rank, out_channels, label) -> tuple:
    """Per-axis requested output sizes (None = smallest valid); the channel axis may come first."""
    if output_shape is None:
        return (None,) * rank
    sizes = output_shape if isinstance(output_shape, tuple) else (output_shape,)
    if not all(is_int(v) and v > 0 for v in sizes):
        raise ValueError(f"{label}: output_shape {output_shape!r} must hold positive ints")
    sizes = tuple(int(v) for v in sizes)
    if len(sizes) == rank + 1:
        if is_known(out_channels) and sizes[0] != out_channels:
            raise ShapeError(f"{label}: output_shape {sizes} starts with {sizes[0]} channels but the convolution "
                             f"map gives {out_channels}; give the spatial sizes only, or the right channel count")
        sizes = sizes[1:]
    if len(sizes) != rank:
        raise ValueError(f"{label}: output_shape {output_shape!r} has {len(sizes)} entries; expected {rank} spatial "
                         f"sizes (or {rank + 1} with the channel axis first)")
    return sizes


def _pair(lo, hi) -> str:
    return f"({lo}, {hi})"


def _mode_text(mode) -> str:
    return "explicit pads" if isinstance(mode, tuple) else f"auto_padding {mode!r}"


def _output_shape_message(label, output_shape, requested, geometry, invalid) -> str:
    """Which axes are invalid, with their geometry and valid sizes (as a range: strides may be huge),
    and a shape that would work."""
    axes = ", ".join(str(axis) for axis, _, _ in invalid)
    if output_shape is None:
        lines = [f"{label}: the output size is not positive on spatial axis {axes}."]
    else:
        lines = [f"{label}: output_shape {tuple(requested)} is invalid on spatial axis {axes}."]
    fixed = list(requested)
    for axis, first, last in invalid:
        n, k, s, d, mode = geometry[axis]
        low = max(first, 1)
        _, lo, hi = geo.transpose_axis(n, k, s, d, mode)  # the pads at the default size
        lines.append(f"  {_mode_text(mode)}: input {n}, filter {k}, strides {s}, pads {_pair(lo, hi)}, dilation {d} "
                     f"-> valid output sizes on axis {axis}: {_sizes_text(low, last)}")
        want = low if fixed[axis] is None else fixed[axis]
        fixed[axis] = min(max(want, low), last) if low <= last else None
    if None in fixed:
        lines.append("  Hint: use smaller pads or a larger input.")
    else:
        default = tuple(geo.transpose_axis(*g)[0] for g in geometry)  # first (or SAME's last): valid when >= 1
        valid_default = all(is_known(v) and v >= 1 for v in default)
        left_out = f", or leave it out to get {default}" if output_shape is not None and valid_default else ""
        lines.append(f"  Hint: pass output_shape={tuple(fixed)}{left_out}.")
    return "\n".join(lines)


def _sizes_text(low: int, last: int) -> str:
    """``"7, 8"``, ``"7 to 1000006"`` (a range when there are many), or none."""
    if low > last:
        return "none (the pads are too large for this input)"
    if last - low < 8:
        return ", ".join(map(str, range(low, last + 1)))
    return f"{low} to {last}"


# public functions --------------------------------------------------------------------------------
def _plain(value):
    """JSON-friendly attribute values: lists become tuples, numpy scalars Python scalars."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attrs(**kwargs) -> dict:
    return {k: _plain(v) for k, v in kwargs.items()}


@export(builds=CONVOLUTION)
def convolution(convolution_map, operand, strides=1, sharing=True, auto_padding=True, dilation=1,
                reduction_rank: int = 1, max_temp_mem_size_in_samples: int = 0, groups: int = 1,
                lower_pad=None, upper_pad=None, name: str = ""):
    """N-D convolution (CNTK's ``convolution``; cross-correlation, no kernel flip).

    convolution_map: ``(O, C/groups, *K)`` (a Parameter, Constant or any node; its input-channel axis may
    be ``InferredDimension``). operand: ``(C, *N)``, or ``(*N)`` with ``reduction_rank=0``.
    Returns ``(O, *n)`` with, per axis, ``n = ceil(N / s)`` for ``auto_padding=True`` (CNTK centred
    pads) and "same_*", ``(N + lo + hi - Keff)//s + 1`` otherwise (``Keff = (K - 1)*dilation + 1``).
    strides, dilation, auto_padding, lower_pad, upper_pad: a value or one per spatial axis; explicit
    pads take precedence over ``auto_padding``. ``max_temp_mem_size_in_samples=k > 0`` processes the
    batch k samples at a time (same values, smaller buffers).
    """
    return make(CONVOLUTION, [convolution_map, operand], _attrs(
        strides=strides, sharing=sharing, auto_padding=auto_padding, dilation=dilation,
        reduction_rank=reduction_rank, max_temp_mem_size_in_samples=max_temp_mem_size_in_samples, groups=groups,
        lower_pad=lower_pad, upper_pad=upper_pad), name)


@export(builds=CONVOLUTION_TRANSPOSE)
def convolution_transpose(convolution_map, operand, strides=1, sharing=True, auto_padding=True, output_shape=None,
                          dilation=1, reduction_rank: int = 1, max_temp_mem_size_in_samples: int = 0,
                          groups: int = 1, lower_pad=None, upper_pad=None, name: str = ""):
    """N-D transposed convolution (CNTK's ``convolution_transpose``): the adjoint of :func:`convolution`.

    convolution_map: ``(C, O/groups, *K)`` (its axis 0 may be ``InferredDimension``, filled from the
    operand). operand: ``(C, *n)``, or ``(*n)`` with ``reduction_rank=0``. Returns ``(O, *N)``: per axis
    ``N = (n - 1)*s + 1`` with ``auto_padding=True``, ``(n - 1)*s + Keff - lo - hi`` with False or explicit
    pads, ``n*s`` with "same_*"; ``output_shape`` (spatial, or with the channel axis first) picks
    another valid size, one that a convolution with the same options maps back to ``n``.

    >>> import minigraph as mg, numpy as np
    >>> x = mg.input_variable((1, 3, 3), dtype=np.float64)
    >>> w = mg.constant(np.array([[[[2., -1.], [-1., 2.]]]]))
    >>> y = mg.ops.convolution_transpose(w, x, auto_padding=False)
    >>> y.eval({x: np.arange(9.).reshape(1, 1, 3, 3)})[0, 0]
    array([[ 0.,  2.,  3., -2.],
           [ 6.,  4.,  6., -1.],
           [ 9., 10., 12.,  2.],
           [-6.,  5.,  6., 16.]])
    """
    return make(CONVOLUTION_TRANSPOSE, [convolution_map, operand], _attrs(
        strides=strides, sharing=sharing, auto_padding=auto_padding, output_shape=output_shape, dilation=dilation,
        reduction_rank=reduction_rank, max_temp_mem_size_in_samples=max_temp_mem_size_in_samples, groups=groups,
        lower_pad=lower_pad, upper_pad=upper_pad), name)
