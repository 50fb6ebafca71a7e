"""The peers minigraph is compared with: PyTorch (forward, forward+backward) and ONNX Runtime
(forward). Both are optional: each runner returns ``None`` when its package is not installed,
and the report leaves that column out.

Geometry is translated from resolved ``(lo, hi)`` pads: PyTorch takes a symmetric ``padding=lo``
plus ``output_padding=lo - hi`` (extra rows at the end, as CNTK puts them); ONNX takes the pads
as they are. Weights have the same layout everywhere: ``(I, O/groups, *K)``, no kernel flip.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .workloads import Workload


@dataclass
class Runner:
    """Callables for one framework on one workload; ``forward_backward`` is None if not offered.
    ``forward`` returns the output array; ``forward_backward`` returns ``(dx, dW)`` for an
    all-ones output gradient."""

    forward: Callable[[], np.ndarray]
    forward_backward: Callable[[], tuple] | None = None


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def set_torch_threads(threads: int) -> str | None:
    """Pin PyTorch's intra-op threads; returns its version, or None when it is not installed."""
    if not installed("torch"):
        return None
    import torch
    torch.set_num_threads(threads)
    return torch.__version__


def torch_geometry(w: Workload) -> dict:
    """``stride``, ``padding`` and ``output_padding`` for ``torch.nn.functional.conv_transpose*d``."""
    pads = w.pads()
    extra = [lo - hi for lo, hi in pads]
    if any(not 0 <= e < w.stride for e in extra):
        raise ValueError(f"{w.name}: pads {pads} have no PyTorch equivalent (needs 0 <= lo - hi < stride)")
    return {"stride": w.stride, "padding": tuple(lo for lo, _ in pads), "output_padding": tuple(extra)}


def torch_runner(w: Workload, x: np.ndarray, W: np.ndarray) -> Runner | None:
    if not installed("torch"):
        return None
    import torch
    import torch.nn.functional as F
    conv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[w.rank]
    geometry = torch_geometry(w)
    tx, tw = torch.from_numpy(x), torch.from_numpy(W)
    gx, gw = tx.clone().requires_grad_(True), tw.clone().requires_grad_(True)
    ones = torch.ones(w.y_shape, dtype=tx.dtype)

    def forward():
        with torch.no_grad():
            return conv(tx, tw, **geometry).numpy()

    def forward_backward():
        y = conv(gx, gw, **geometry)
        dx, dw = torch.autograd.grad(y, [gx, gw], ones)
        return dx.numpy(), dw.numpy()

    return Runner(forward, forward_backward)


def onnxruntime_runner(w: Workload, x: np.ndarray, W: np.ndarray, threads: int) -> Runner | None:
    if not (installed("onnxruntime") and installed("onnx")):
        return None
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    pads = w.pads()
    node = helper.make_node("ConvTranspose", ["x", "W"], ["y"], kernel_shape=[w.kernel] * w.rank,
                            strides=[w.stride] * w.rank, pads=[lo for lo, _ in pads] + [hi for _, hi in pads])
    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    graph = helper.make_graph([node], w.name, [helper.make_tensor_value_info("x", elem, list(w.x_shape))],
                              [helper.make_tensor_value_info("y", elem, list(w.y_shape))],
                              initializer=[numpy_helper.from_array(W, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # understood by every ONNX Runtime release that has opset 17
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"x": x}
    return Runner(lambda: session.run(None, feed)[0])

