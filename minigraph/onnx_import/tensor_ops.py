"""ONNX's elementwise, linear-algebra, normalization, reduction, dropout and shape ops as minigraph
ops (attribute and input forms across opsets)."""
from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import constant
from ..onnx_export import BINARY, PLAIN_UNARY, REDUCE
from ..ops.base import OPS, make
from ..shapes import Dim, is_known, shape_str
from .conv import average_of_pending
from .core import (
    BATCH,
    INT_MAX,
    OnnxNode,
    PendingAverage,
    Value,
    against_batch,
    axes_of,
    broadcast_operands,
    check_elements,
    elements,
    imports,
    reshaped,
    static_axis,
    with_dtype,
)
from .folding import fold_arith, fold_concat, fold_squeeze

_UNARY = {onnx_op: mg_op for mg_op, onnx_op in PLAIN_UNARY.items() if onnx_op != "Identity"}
_UNARY["Softplus"] = "Softplus"
_BINARY = {onnx_op: mg_op for mg_op, onnx_op in BINARY.items()}


@imports(*_UNARY)
def _unary(node: OnnxNode):
    v = node.value(0)
    return [Value(make(OPS[_UNARY[node.op_type]], [v.node]), v.batched)]


@imports(*_BINARY)
def _binary(node: OnnxNode):
    values = [node.imp.lookup(n, node) for n in node.inputs[:2]]
    if all(isinstance(v, np.ndarray) for v in values):
        return [fold_arith(node, *values)]
    if node.op_type == "Div" and all(isinstance(v, PendingAverage) for v in values):
        return [average_of_pending(node, *values)]
    like = next(node.value(i) for i, v in enumerate(values) if not isinstance(v, np.ndarray))
    nodes, batched = broadcast_operands(node, [with_dtype(node.imp, node, i, like) for i in range(2)])
    return [Value(make(OPS[_BINARY[node.op_type]], nodes), batched)]


@imports("LeakyRelu")
def _leaky_relu(node):
    v = node.value(0)
    return [Value(ops.leaky_relu(v.node, node.float("alpha", 0.01)), v.batched)]


@imports("Elu")
def _elu(node):
    """``relu(x) + alpha * (exp(-relu(-x)) - 1)``: ``alpha * (exp(x) - 1)`` for negative x, without overflow."""
    v = node.value(0)
    alpha = node.float("alpha", 1.0)
    x = v.node
    return [Value(ops.relu(x) + alpha * (ops.exp(-ops.relu(-x)) - 1.0), v.batched)]


@imports("Clip")
def _clip(node):
    v = node.value(0)
    low, high = node.float("min", -np.inf), node.float("max", np.inf)  # the attribute form (opsets < 11)
    for i, what in ((1, "min"), (2, "max")):
        if node.has(i):
            arr = node.const(i, f"Clip {what}")
            if arr.size != 1:
                raise node.error(f"Clip {what} must be a scalar, got shape {arr.shape}")
            if what == "min":
                low = float(arr.reshape(()))
            else:
                high = float(arr.reshape(()))
    return [Value(ops.clip(v.node, low, high), v.batched)]


@imports("MatMul")
def _matmul(node):
    a, b = node.value(0), node.value(1)
    if a.batched and b.batched and a.rank == b.rank == 3:  # one matrix product per sample
        return [Value(ops.times(a.node, b.node), True)]
    if not a.batched or b.batched:
        raise node.error("supported forms: a value computed from the graph inputs times a weight matrix, or two "
                         "such values of shape (N, m, k) and (N, k, p)")
    if b.rank not in (1, 2) or a.rank < 2:
        raise node.error(f"weight of shape {shape_str(b.node.shape)}: MatMul needs a matrix (or vector) weight and "
                         f"an operand of rank >= 2")
    return [Value(ops.times(a.node, b.node, output_rank=b.rank - 1), True)]


@imports("Gemm")
def _gemm(node):
    a, b = node.value(0), node.value(1)
    alpha, beta = node.float("alpha", 1.0), node.float("beta", 1.0)
    trans_a, trans_b = node.int("transA", 0), node.int("transB", 0)
    if not a.batched or b.batched or trans_a or a.rank != 2 or b.rank != 2:
        raise node.error("supported form: Gemm(A, B[, C]) with A (N, K) computed from the graph inputs, transA=0, "
                         "and B a weight matrix")
    w = ops.transpose(b.node, (1, 0)) if trans_b else b.node
    y = ops.times(a.node, w)
    if alpha != 1.0:
        y = y * alpha
    if node.has(2) and beta != 0.0:
        c = with_dtype(node.imp, node, 2, a)
        c_node = against_batch(node, c, 2) if not c.batched else c.node
        y = y + (c_node * beta if beta != 1.0 else c_node)
    return [Value(y, True)]


@imports("BatchNormalization")
def _batch_norm(node):
    x = node.batched(0)
    eps = node.float("epsilon", 1e-5)
    momentum = node.float("momentum", 0.9)
    if node.int("training_mode", 0):
        raise node.error("training_mode=1 is not supported (minigraph chooses the mode per run: "
                         "eval(..., training=True))")
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise node.error("the running statistics outputs (training mode) are not supported")
    scale, bias = node.value(1), node.value(2)
    mean, var = (node.imp.value_of(node.inputs[i], node, role="statistic") for i in (3, 4))
    # ONNX: running = momentum * running + (1 - momentum) * batch statistic; minigraph's momentum is the latter
    y = ops.batch_normalization(x.node, scale.node, bias.node, mean.node, var.node, spatial=True, epsilon=eps,
                                momentum=1.0 - momentum)
    return [Value(y, True)]


@imports("InstanceNormalization")
def _instance_norm(node):
    x = node.batched(0)
    eps = node.float("epsilon", 1e-5)
    scale, bias = node.value(1), node.value(2)
    rank = x.rank - 2
    axes = list(range(1, rank + 1))
    mean = ops.reduce_mean(x.node, axis=axes)
    centered = x.node - mean
    var = ops.reduce_mean(ops.square(centered), axis=axes)
    per_channel = (scale.node.shape[0],) + (1,) * rank
    y = centered / ops.sqrt(var + eps) * ops.reshape(scale.node, per_channel) + ops.reshape(bias.node, per_channel)
    return [Value(y, True)]


@imports("LayerNormalization")
def _layer_norm(node):
    x = node.batched(0)
    axis = static_axis(node, node.int("axis", -1), x.rank)
    eps = node.float("epsilon", 1e-5)
    node.int("stash_type", 1)
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise node.error("the Mean and InvStdDev outputs are not supported")
    scale = node.value(1)
    bias = node.value(2) if node.has(2) else Value(constant(0.0, dtype=x.node.dtype), False)
    if axis == 0:
        return [Value(ops.layer_normalization(x.node, scale.node, bias.node, epsilon=eps), True)]
    axes = list(range(axis, x.rank - 1))
    mean = ops.reduce_mean(x.node, axis=axes)
    centered = x.node - mean
    var = ops.reduce_mean(ops.square(centered), axis=axes)
    return [Value(centered / ops.sqrt(var + eps) * scale.node + bias.node, True)]


@imports("Softmax", "LogSoftmax")
def _softmax(node):
    x = node.batched(0)
    fn = ops.softmax if node.op_type == "Softmax" else ops.log_softmax
    axis = static_axis(node, node.int("axis", -1 if node.opset >= 13 else 1), x.rank)
    static = x.node.shape
    if node.opset >= 13 or axis == len(static) - 1:
        return [Value(fn(x.node, axis=axis), True)]
    # opsets < 13: softmax over all axes from ``axis`` on, flattened
    flat = ops.reshape(x.node, (*static[:axis], -1))
    return [Value(ops.reshape(fn(flat, axis=-1), static), True)]


_REDUCERS = {onnx_op: mg_op for mg_op, onnx_op in REDUCE.items()}


@imports(*_REDUCERS)
def _reduce(node):
    x = node.batched(0)
    keepdims = bool(node.int("keepdims", 1))
    axes_as_input = node.op_type == "ReduceSum" and node.opset >= 13 or node.opset >= 18
    if axes_as_input:
        axes = node.const_ints(1, "axes") if node.has(1) else None
        if node.int("noop_with_empty_axes", 0) and not axes:
            return [x]
    else:
        axes = node.ints("axes")
    if not axes:
        raise node.error("reducing every axis (the batch axis too) is not supported; give axes without 0")
    static = axes_of(node, x, axes)
    fn = {"ReduceSum": ops.reduce_sum, "ReduceMean": ops.reduce_mean, "ReduceMax": ops.reduce_max}
    return [Value(fn[_REDUCERS[node.op_type]](x.node, axis=static, keepdims=keepdims), True)]


@imports("Dropout")
def _dropout(node):
    """Dropout stays a dropout (active in training mode, the identity in eval): fine-tuning drops as
    the original model did."""
    x = node.value(0)
    rate = node.float("ratio", 0.5)  # an attribute up to opset 11, an input from opset 12
    if node.has(1):
        rate = float(node.const(1, "ratio").reshape(()))
    if node.has(2) and bool(node.const(2, "training_mode").reshape(())):
        raise node.error("training_mode=True in the file is not supported (minigraph chooses the mode per run)")
    node.int("seed")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise node.error("the mask output is not supported")
    return [x if rate == 0 else Value(ops.dropout(x.node, rate), x.batched)]


def _target_shape(node, x: Value, shape: list, allow_zero: bool) -> tuple:
    """An ONNX Reshape target (0 copies, -1 computes) as a static shape for the batched ``x``."""
    dims = [BATCH, *x.node.shape]
    out = []
    for i, s in enumerate(shape):
        if isinstance(s, (int, np.integer)) and s == 0 and not allow_zero:
            if i >= len(dims):
                raise node.error(f"shape {shape}: 0 at position {i} copies an axis the input (rank {len(dims)}) "
                                 f"does not have")
            out.append(dims[i])
        else:
            out.append(s if s is BATCH or isinstance(s, Dim) else int(s))
    file_batch = node.imp.file_batch
    if out and (out[0] is BATCH or (file_batch is not None and out[0] == file_batch)):
        rest = out[1:]
    elif out and out[0] == -1 and all(not (is_known(v) and v == -1) for v in out[1:]):
        rest = out[1:]
        total, kept = elements(x.node.shape), elements(rest)
        if not total == kept:
            raise node.error(f"shape {shape} would change the batch axis: the input's samples have {total} "
                             f"elements, the target's {kept}")
    else:
        raise node.error(f"shape {shape}: its first entry must keep the batch axis (0, -1 or the batch size read "
                         f"with Shape)")
    if any(v is BATCH for v in rest):
        raise node.error(f"shape {shape} moves the batch size to another axis")
    return tuple(rest)


@imports("Reshape")
def _reshape(node):
    shape = node.const(1, "shape").reshape(-1).tolist()
    allow_zero = bool(node.int("allowzero", 0))
    raw = node.imp.lookup(node.inputs[0], node)
    if isinstance(raw, np.ndarray):
        return [raw.reshape([raw.shape[i] if v == 0 and not allow_zero else v for i, v in enumerate(shape)])]
    x = node.value(0)
    if not x.batched:
        target = [x.node.shape[i] if v == 0 and not allow_zero else int(v) for i, v in enumerate(shape)]
        return [Value(ops.reshape(x.node, tuple(target)), False)]
    return [reshaped(x, _target_shape(node, x, shape, allow_zero))]


@imports("Flatten")
def _flatten(node):
    x = node.batched(0)
    axis = node.int("axis", 1)
    if axis % x.rank != 1 if x.rank > 1 else True:
        raise node.error(f"axis={axis}: only axis 1 (flatten each sample) keeps the batch axis")
    return [reshaped(x, (elements(x.node.shape),))]


@imports("Transpose")
def _transpose(node):
    raw = node.imp.lookup(node.inputs[0], node)
    perm = node.ints("perm")
    if isinstance(raw, np.ndarray):
        return [np.transpose(raw, perm)]
    x = node.value(0)
    perm = list(range(x.rank))[::-1] if perm is None else perm
    if sorted(perm) != list(range(x.rank)):
        raise node.error(f"perm {perm} is not a permutation of {x.rank} axes")
    if not x.batched:
        return [Value(ops.transpose(x.node, perm), False)]
    if perm[0] != 0:
        raise node.error(f"perm {perm} moves the batch axis")
    static = [p - 1 for p in perm[1:]]
    return [x if static == sorted(static) else Value(ops.transpose(x.node, static), True)]


@imports("Squeeze", "Unsqueeze")
def _squeeze(node):
    if node.opset >= 13:
        axes = node.const_ints(1, "axes") if node.has(1) else None
    else:
        axes = node.ints("axes")
    raw = node.imp.lookup(node.inputs[0], node)
    if isinstance(raw, np.ndarray):
        return [fold_squeeze(node, raw, axes)]
    x = node.value(0)
    full = [BATCH, *x.node.shape] if x.batched else list(x.node.shape)
    if node.op_type == "Squeeze":
        if axes is None:
            keep = [d for d in full if not (is_known(d) and d == 1)]
        else:
            drop = {a % len(full) for a in axes}
            if any(not (is_known(full[a]) and full[a] == 1) for a in drop):
                raise node.error(f"axes {axes} of shape {full} are not all of size 1")
            keep = [d for i, d in enumerate(full) if i not in drop]
    else:
        if axes is None:
            raise node.error("axes are required")
        rank = len(full) + len(axes)
        added = {a % rank for a in axes}
        it = iter(full)
        keep = [1 if i in added else next(it) for i in range(rank)]
    if x.batched and (not keep or keep[0] is not BATCH):
        raise node.error(f"axes {axes} touch the batch axis")
    return [reshaped(x, keep[1:] if x.batched else keep)]


@imports("Concat")
def _concat(node):
    raw = [node.imp.lookup(n, node) for n in node.inputs]
    axis = node.int("axis")
    if axis is None:
        raise node.error("attribute 'axis' is required")
    if all(isinstance(r, np.ndarray) for r in raw):
        return [fold_concat(node, raw, axis)]
    values = [node.value(i) for i in range(len(node.inputs))]
    batched = [v for v in values if v.batched]
    like = batched[0] if batched else values[0]
    values = [with_dtype(node.imp, node, i, like) for i in range(len(values))]
    if not batched:
        return [Value(ops.splice(*[v.node for v in values], axis=axis % like.rank), False)]
    static = static_axis(node, axis, like.rank)
    nodes, _ = broadcast_operands(node, values)
    if any(len(n.shape) != len(like.node.shape) for n in nodes):
        raise node.error("inputs of different ranks")
    return [Value(ops.splice(*nodes, axis=static), True)]


@imports("Slice")
def _slice(node):
    starts, ends = node.const_ints(1, "starts"), node.const_ints(2, "ends")
    axes = node.const_ints(3, "axes") if node.has(3) else list(range(len(starts)))
    steps = node.const_ints(4, "steps") if node.has(4) else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise node.error(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} must have equal lengths")
    raw = node.imp.lookup(node.inputs[0], node)
    if isinstance(raw, np.ndarray):
        index = [slice(None)] * raw.ndim
        for b, e, a, s in zip(starts, ends, axes, steps):
            index[a] = slice(b, e, s)
        return [raw[tuple(index)]]
    x = node.value(0)
    cols = [[], [], [], []]
    full = [BATCH, *x.node.shape] if x.batched else list(x.node.shape)
    for b, e, a, s in zip(starts, ends, axes, steps):
        a %= len(full)
        if s <= 0:
            raise node.error(f"steps {steps}: only positive steps are supported")
        if x.batched and a == 0:
            if b == 0 and e >= INT_MAX:
                continue
            raise node.error("slicing the batch axis is not supported")
        size = full[a]
        if is_known(size):
            b, e, _ = slice(b, e, s).indices(size)
            if e <= b:
                raise node.error(f"the slice {b}:{e} of axis {a} (size {size}) is empty")
            e = 0 if e == size else e
        elif e >= INT_MAX:
            e = 0
        elif e <= 0 or b < 0 and b < -INT_MAX:
            raise node.error(f"slice {b}:{e} of the symbolic axis {a} (size {size}) is not supported")
        cols[0].append(a - x.batched), cols[1].append(b), cols[2].append(e), cols[3].append(s)
    if not cols[0]:
        return [x]
    return [Value(ops.slice(x.node, *cols), x.batched)]


@imports("Upsample", "Resize")
def _resize(node):
    x = node.batched(0)
    mode = node.string("mode", "nearest", ("nearest",))
    del mode
    if node.op_type == "Upsample":
        scales = node.const(1, "scales").reshape(-1).tolist()
    else:
        transform = node.string("coordinate_transformation_mode", "half_pixel",
                                ("half_pixel", "pytorch_half_pixel", "asymmetric"))
        nearest = node.string("nearest_mode", "round_prefer_floor",
                              ("round_prefer_floor", "round_prefer_ceil", "floor"))
        if (transform == "asymmetric") != (nearest == "floor"):
            raise node.error(f"coordinate_transformation_mode={transform!r} with nearest_mode={nearest!r} does not "
                             f"repeat pixels; supported: asymmetric+floor or half_pixel+round_prefer_*")
        for key in ("cubic_coeff_a", "extrapolation_value"):
            node.float(key)
        node.int("exclude_outside", 0)
        node.string("keep_aspect_ratio_policy")
        if node.has(3):
            sizes = node.const_ints(3, "sizes")
            full = [None, *x.node.shape]
            if len(sizes) != x.rank or not all(is_known(d) for d in full[1:]):
                raise node.error(f"sizes {sizes} need a known input shape of rank {x.rank}")
            scales = [1.0] + [s / d for s, d in zip(sizes[1:], full[1:])]
        elif node.has(2):
            scales = node.const(2, "scales").reshape(-1).tolist()
        else:
            raise node.error("needs scales or sizes")
    if len(scales) != x.rank or any(s != int(s) or s < 1 for s in scales) or scales[0] != 1:
        raise node.error(f"scales {scales}: only positive integer scales, with 1 on the batch axis, are supported")
    factors = [int(s) for s in scales[1:]]
    shape = x.node.shape
    split = [d for size, f in zip(shape, factors) for d in (size, 1)]
    mask = [d for f in factors for d in (1, f)]
    check_elements(node, mask, "the upsampling mask")
    if all(is_known(d) for d in shape):
        check_elements(node, [d * f for d, f in zip(shape, factors)], "the upsampled output (per sample)")
    ones = constant(np.ones(mask, x.node.dtype), dtype=x.node.dtype)
    spread = ops.reshape(x.node, tuple(split)) * ones
    return [Value(ops.reshape(spread, tuple(size * f for size, f in zip(shape, factors))), True)]


@imports("Cast")
def _cast(node):
    to = node.int("to")
    node.int("saturate")
    onnx = node.imp.onnx
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(to))
    except Exception:
        raise node.error(f"unknown target type {to}") from None
    raw = node.imp.lookup(node.inputs[0], node)
    if isinstance(raw, np.ndarray):
        return [raw if raw.dtype == object else raw.astype(dtype)]
    x = node.value(0)
    if dtype not in (np.float32, np.float64):
        raise node.error(f"casting a tensor to {dtype} is not supported (minigraph computes in float32/float64)")
    return [x if x.node.dtype == dtype else Value(ops.cast(x.node, dtype), x.batched)]


@imports("Identity")
def _identity(node):
    return [node.imp.lookup(node.inputs[0], node)]  # an alias: a weight stays the initializer it names


@imports("Constant")
def _constant(node):
    found = []
    for key, kind in (("value", "tensor"), ("value_float", "float"), ("value_floats", "floats"), ("value_int", "int"),
                      ("value_ints", "ints")):
        v = getattr(node, kind)(key)
        if v is not None:
            found.append((key, v))
    for key in ("sparse_value", "value_string", "value_strings"):
        if key in node._attrs:
            raise node.error(f"attribute {key!r} is not supported (numeric constants only)")
    if len(found) != 1:
        raise node.error(f"exactly one value attribute is required, got {[k for k, _ in found]}")
    key, v = found[0]
    dtype = np.float32 if "float" in key else np.int64 if "int" in key else None
    return [np.array(v, dtype=dtype)]


