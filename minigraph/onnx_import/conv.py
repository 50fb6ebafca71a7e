"""ONNX's ``Conv``, ``ConvTranspose``, pools and ``Pad`` as minigraph ops: every ONNX padding rule
(``pads``, ``auto_pad``, ``output_padding``, ``output_shape``) resolved to minigraph's ``lower_pad`` /
``upper_pad`` (or one of its padding modes), which the op's shape rule re-checks."""
from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Node, constant
from ..ops import conv_geometry as geo
from ..shapes import is_known, shape_str
from .core import (
    AUTO_PADS,
    BATCH,
    Ones,
    PendingAverage,
    PendingPad,
    Value,
    axes_of,
    imports,
    pad_axis,
    per_axis_attr,
    with_dtype,
)


def _conv_common(node, x: Value, w: Value):
    if not x.batched or w.batched:
        raise node.error("the operand must be computed from the graph inputs and the kernel must be a weight")
    rank = w.rank - 2
    if rank < 1 or x.rank != rank + 2:
        raise node.error(f"operand of ONNX rank {x.rank} and kernel of shape {shape_str(w.node.shape)}: expected "
                         f"(N, C, *spatial) and (M, C/group, *kernel) with the same number of spatial axes")
    kernel = tuple(w.node.shape[2:])
    given = node.ints("kernel_shape")
    if given is not None and tuple(given) != kernel:
        raise node.error(f"kernel_shape {tuple(given)} does not match the kernel's shape {shape_str(w.node.shape)}")
    strides = per_axis_attr(node, "strides", rank, 1)
    dilations = per_axis_attr(node, "dilations", rank, 1)
    group = node.int("group", 1)
    if group < 1:
        raise node.error(f"group={group} must be positive")
    auto_pad = node.string("auto_pad", "NOTSET", AUTO_PADS)
    pads = node.ints("pads")
    if pads is not None and len(pads) != 2 * rank:
        raise node.error(f"pads {pads} must have {2 * rank} entries (begins then ends of {rank} spatial axes)")
    return rank, kernel, strides, dilations, group, auto_pad, pads


def _bias(node, y: Node, rank: int, like: Value) -> Node:
    if not node.has(2):
        return y
    b = with_dtype(node.imp, node, 2, like)
    if b.rank != 1:
        raise node.error(f"bias of shape {shape_str(b.node.shape)} must be 1-D (one value per output channel)")
    return y + ops.reshape(b.node, (b.node.shape[0],) + (1,) * rank)


@imports("Conv")
def _conv(node):
    pending = node.imp.lookup(node.inputs[0], node)
    if isinstance(pending, PendingPad):
        return _conv_after_pad(node, pending)
    x, w = node.value(0), node.value(1)
    rank, kernel, strides, dilations, group, auto_pad, pads = _conv_common(node, x, w)
    spatial = x.node.shape[1:]
    if auto_pad == "NOTSET":
        lower, upper = (list(pads[:rank]), list(pads[rank:])) if pads else ([0] * rank, [0] * rank)
        if any(p < 0 for p in lower + upper):
            raise node.error(f"pads {pads} must be non-negative")
        options = {"lower_pad": tuple(lower), "upper_pad": tuple(upper)}
    elif auto_pad == "VALID":
        options = {"auto_padding": False}
    elif all(is_known(n) for n in spatial):  # SAME: resolve to explicit pads (ONNX clamps them at 0)
        lower, upper = [], []
        for n, k, s, d in zip(spatial, kernel, strides, dilations):
            out = -(-n // s)
            total = max((out - 1) * s + geo.effective_kernel(k, d) - n, 0)
            lo = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            lower.append(lo), upper.append(total - lo)
        options = {"lower_pad": tuple(lower), "upper_pad": tuple(upper)}
    else:  # symbolic sizes: minigraph's own SAME modes compute the same pads at run time
        options = {"auto_padding": auto_pad.lower()}
    y = ops.convolution(w.node, x.node, strides=strides, dilation=dilations, groups=group, **options)
    return [Value(_bias(node, y, rank, x), True)]


def _mode_of(node, n, k: int, s: int, d: int, lo, hi, axis: int):
    """The minigraph padding mode whose pads on this axis are ``(lo, hi)`` (expressions compared as
    such: they must agree for every value of the symbolic sizes)."""
    for mode in (True, "same_upper", "same_lower", False):
        _, mlo, mhi = geo.conv_axis(n, k, s, d, mode)
        if mlo == lo and mhi == hi:
            return mode
    raise node.error(f"pads ({lo}, {hi}) on spatial axis {axis} (size {n}, kernel {k}, stride {s}, dilation {d}) "
                     f"depend on the input size in a way none of minigraph's padding modes (centred, SAME, none) "
                     f"does")


def _pending_modes(node, pending: PendingPad, kernel, strides, dilations, fill: float) -> list:
    x = pending.source
    if not isinstance(x, Value) or not x.batched:
        raise node.error("a run-time Pad must pad a value computed from the graph inputs")
    if not (pending.fill == fill or np.isnan(fill) and np.isnan(pending.fill)):
        raise node.error(f"the Pad before it fills with {pending.fill}; expected {fill}")
    if pending.lower[0] != 0 or pending.upper[0] != 0:
        raise node.error("the Pad before it pads the channel axis")
    if node.ints("pads") and any(node.ints("pads")) or node.string("auto_pad", "NOTSET", AUTO_PADS) != "NOTSET":
        raise node.error("padding both in a Pad node and in the op is not supported when the sizes are symbolic")
    spatial = x.node.shape[1:]
    return [_mode_of(node, n, k, s, d, lo, hi, axis) for axis, (n, k, s, d, lo, hi) in
            enumerate(zip(spatial, kernel, strides, dilations, pending.lower[1:], pending.upper[1:]))]


def _conv_after_pad(node, pending: PendingPad):
    x, w = pending.source, node.value(1)
    if not isinstance(x, Value):
        raise node.error("a run-time Pad must pad a value computed from the graph inputs")
    rank, kernel, strides, dilations, group, _, _ = _conv_common(node, x, w)
    modes = _pending_modes(node, pending, kernel, strides, dilations, 0.0)
    y = ops.convolution(w.node, x.node, strides=strides, dilation=dilations, groups=group, auto_padding=modes)
    return [Value(_bias(node, y, rank, x), True)]


def transpose_pads(node, n, k: int, s: int, d: int, extra: int, lo, hi, out):
    """ONNX's resolved ConvTranspose geometry on one axis (input ``n``, pads ``lo``/``hi``, output_padding
    ``extra``, output ``out``) as minigraph's ``(lower_pad, upper_pad, output_shape)``: a negative upper
    pad (ONNX extends the output past the last contribution) becomes ``upper_pad=0`` with
    ``output_shape`` (the op resolves it to the negative upper pad and re-checks it); the fourth value
    counts zero rows to append beyond that (ONNX allows ``max(stride, dilation) - 1`` in all)."""
    keff = geo.effective_kernel(k, d)
    upper = (n - 1) * s + keff - lo - out
    if not is_known(lo) or lo < 0:
        raise node.error(f"a negative begin pad ({lo}) is not supported")
    if not is_known(upper):
        raise node.error(f"the output size {out} depends on a symbolic input size ({n}) through output_shape; "
                         f"give the input a fixed size with input_shapes")
    if upper >= 0:
        return lo, upper, None, 0
    if -upper > max(s, d) - 1:
        raise node.error(f"output {out} extends {-upper} rows past the last contribution (input {n}, kernel {k}, "
                         f"stride {s}, dilation {d}, pads ({lo}, {hi}), output_padding {extra}); ONNX allows at "
                         f"most max(stride, dilation) - 1 = {max(s, d) - 1}")
    if not is_known(out):
        raise node.error(f"output_padding {extra} with a symbolic input size ({n}) is not supported")
    # up to stride - 1 rows are the op's own (output_shape); rows beyond are zeros added after it
    rows = min(-upper, s - 1)
    return lo, 0, (out + upper + rows if rows else None), -upper - rows


@imports("ConvTranspose")
def _conv_transpose(node):
    x, w = node.value(0), node.value(1)
    rank, kernel, strides, dilations, group, auto_pad, pads = _conv_common(node, x, w)
    extras = per_axis_attr(node, "output_padding", rank, 0, minimum=0)
    output_shape = node.ints("output_shape")
    if output_shape is not None:
        if len(output_shape) == rank + 2:
            output_shape = output_shape[2:]
        if len(output_shape) != rank or any(v < 1 for v in output_shape):
            raise node.error(f"output_shape {output_shape} must hold {rank} positive spatial sizes")
    spatial = x.node.shape[1:]
    lower, upper, sizes, zero_rows = [], [], [], []
    for axis, (n, k, s, d, extra) in enumerate(zip(spatial, kernel, strides, dilations, extras)):
        keff = geo.effective_kernel(k, d)
        explicit = auto_pad == "NOTSET" and pads is not None
        if output_shape is not None and not explicit or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = output_shape[axis] if output_shape is not None else n * s
            total = s * (n - 1) + extra + keff - out  # an int for SAME without output_shape
            if not is_known(total):
                raise node.error(f"output_shape with a symbolic input size ({n}) is not supported")
            lo = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            hi = total - lo
        else:
            lo, hi = (pads[axis], pads[axis + rank]) if explicit else (0, 0)
            if lo < 0 or hi < 0:
                raise node.error(f"pads {pads} must be non-negative")
            out = output_shape[axis] if output_shape is not None else s * (n - 1) + extra + keff - lo - hi
        lo, up, size, rows = transpose_pads(node, n, k, s, d, extra, lo, hi, out)
        lower.append(lo), upper.append(up), sizes.append(size), zero_rows.append(rows)
    options = {}
    if any(size is not None for size in sizes):
        options["output_shape"] = tuple(
            size if size is not None else (n - 1) * s + geo.effective_kernel(k, d) - lo - up
            for size, n, k, s, d, lo, up in zip(sizes, spatial, kernel, strides, dilations, lower, upper))
        if not all(is_known(v) for v in options["output_shape"]):
            raise node.error("output sizes depend on a symbolic input size; pass input_shapes")
    y = ops.convolution_transpose(w.node, x.node, strides=strides, dilation=dilations, groups=group,
                                  lower_pad=tuple(lower), upper_pad=tuple(upper), **options)
    for axis, rows in enumerate(zero_rows):
        if rows:
            y = pad_axis(node, y, axis + 1, 0, rows, 0.0)
    return [Value(_bias(node, y, rank, x), True)]


def _pool_modes(node, spatial, kernel, strides, auto_pad, pads, rank):
    """ONNX pool padding as one minigraph pad mode per axis (minigraph pools take modes only)."""
    modes = []
    for axis, (n, k, s) in enumerate(zip(spatial, kernel, strides)):
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            modes.append(auto_pad.lower())
            continue
        lo, hi = (pads[axis], pads[axis + rank]) if auto_pad == "NOTSET" and pads else (0, 0)
        for mode in (False, True, "same_upper", "same_lower"):
            size, mlo, mhi = geo.conv_axis(n, k, s, 1, mode)
            exact = mlo == lo and mhi == hi
            # a window that stops before the end (negative pad) equals a zero pad with the same outputs
            clipped = is_known(size) and is_known(mhi) and mlo == lo and max(mhi, 0) == hi and \
                (n + lo + hi - k) // s + 1 == size
            if exact or clipped:
                modes.append(mode)
                break
        else:
            raise node.error(f"pads ({lo}, {hi}) on spatial axis {axis} (size {n}, window {k}, stride {s}) are not "
                             f"one of minigraph's pooling paddings (none, centred, SAME)")
    return modes


@imports("MaxPool", "AveragePool")
def _pool(node):
    pending = node.imp.lookup(node.inputs[0], node)
    if isinstance(pending, PendingPad):
        return _pool_after_pad(node, pending)
    x = node.batched(0)
    kernel = node.ints("kernel_shape")
    if not kernel:
        raise node.error("kernel_shape is required")
    rank = len(kernel)
    if x.rank != rank + 2:
        raise node.error(f"operand of rank {x.rank} with a {rank}-D window: expected (N, C, *spatial)")
    strides = per_axis_attr(node, "strides", rank, 1)
    if per_axis_attr(node, "dilations", rank, 1) != (1,) * rank:
        raise node.error("dilations other than 1 are not supported for pooling")
    auto_pad = node.string("auto_pad", "NOTSET", AUTO_PADS)
    pads = node.ints("pads")
    if node.int("ceil_mode", 0):
        raise node.error("ceil_mode=1 is not supported")
    if node.op_type == "MaxPool" and node.int("storage_order", 0):
        raise node.error("storage_order=1 is not supported")
    if node.op_type == "AveragePool" and node.int("count_include_pad", 0) and any(pads or ()):
        raise node.error("count_include_pad=1 with padding is not supported (minigraph averages real elements)")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise node.error("the Indices output is not supported")
    modes = _pool_modes(node, x.node.shape[1:], kernel, strides, auto_pad, pads, rank)
    kind = "max" if node.op_type == "MaxPool" else "average"
    return [Value(ops.pooling(x.node, kind, tuple(kernel), strides=strides, auto_padding=modes), True)]


def _pool_after_pad(node, pending: PendingPad):
    kernel = tuple(node.ints("kernel_shape") or ())
    rank = len(kernel)
    strides = per_axis_attr(node, "strides", rank, 1)
    node.int("ceil_mode", 0), node.int("count_include_pad", 0), node.int("storage_order", 0)
    if per_axis_attr(node, "dilations", rank, 1) != (1,) * rank:
        raise node.error("dilations other than 1 are not supported for pooling")
    if node.op_type == "MaxPool":
        modes = _pending_modes(node, pending, kernel, strides, (1,) * rank, -np.inf)
        return [Value(ops.pooling(pending.source.node, "max", kernel, strides=strides, auto_padding=modes), True)]
    source = pending.source
    static = source.static if isinstance(source, Ones) else source.node.shape
    probe = PendingPad(Value(constant(np.zeros((1,) * len(static), np.float32)), True), pending.lower,
                       pending.upper, pending.fill)
    spatial = static[len(static) - rank:]
    modes = tuple(_mode_of(node, n, k, s, 1, lo, hi, axis) for axis, (n, k, s, lo, hi) in enumerate(
        zip(spatial, kernel, strides, probe.lower[-rank:], probe.upper[-rank:])))
    return [PendingAverage(source, kernel, strides, modes)]


def average_of_pending(node, num: PendingAverage, den: PendingAverage) -> Value:
    """``AveragePool(Pad(x)) / AveragePool(Pad(ones))``: minigraph's average pooling of ``x``."""
    if not isinstance(den.source, Ones) or isinstance(num.source, Ones) or (num.window, num.strides, num.modes) != (
            den.window, den.strides, den.modes) or den.source.static != tuple(num.source.node.shape):
        raise node.error("only AveragePool(Pad(x)) / AveragePool(Pad(ones of x's shape)) with the same window, "
                         "strides and pads is supported when pads are symbolic")
    return Value(ops.pooling(num.source.node, "average", num.window, strides=num.strides, auto_padding=num.modes),
                 True)


@imports("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(node):
    x = node.batched(0)
    axes = list(range(1, x.rank - 1))
    reduce = ops.reduce_mean if node.op_type == "GlobalAveragePool" else ops.reduce_max
    return [Value(reduce(x.node, axis=axes, keepdims=True), True)]


@imports("Pad")
def _pad(node):
    mode = node.string("mode", "constant", ("constant",))
    del mode
    fill = 0.0
    if node.has(2):
        fill = float(node.const(2, "constant_value").reshape(()))
    raw = node.const(1, "pads").reshape(-1)
    if raw.dtype == object and not node.has(3):
        return [_pending_pad(node, raw, fill)]
    x = node.value(0)
    pads = node.const_ints(1, "pads")
    axes = node.const_ints(3, "axes") if node.has(3) else list(range(x.rank))
    if len(pads) != 2 * len(axes):
        raise node.error(f"pads {pads} must have two entries per axis ({len(axes)} axes)")
    y = x.node
    for i, a in enumerate(axes):
        lo, hi = pads[i], pads[i + len(axes)]
        if not lo and not hi:
            continue
        static = axes_of(node, x, [a])[0]
        y = pad_axis(node, y, static, lo, hi, fill)
    return [Value(y, x.batched)]


def _pending_pad(node, pads: np.ndarray, fill: float) -> PendingPad:
    source = node.imp.lookup(node.inputs[0], node)
    if not isinstance(source, Ones):
        source = node.batched(0)
    rank = len(pads) // 2
    lower, upper = list(pads[:rank]), list(pads[rank:])
    if any(v is BATCH for v in lower + upper):
        raise node.error("pads depend on the batch size")
    if lower[0] != 0 or upper[0] != 0:
        raise node.error("padding the batch axis is not supported")
    return PendingPad(source, tuple(lower[1:]), tuple(upper[1:]), fill)


