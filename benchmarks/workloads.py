"""The transposed-convolution workloads of the suite: geometry, FLOP count, random inputs.

Each :class:`Workload` is one ConvolutionTranspose layer: ``x (N, I, *n)`` and ``W (I, O, *K)``
give ``y (N, O, *out)``. Pads are given the minigraph way (explicit ``(lo, hi)`` or CNTK
``pad=True`` with an ``output_shape``); :meth:`Workload.pads` reads the ``(lo, hi)`` per axis that
minigraph's shape rule resolved (``node.attributes``, docs/semantics.md) so that the peers
(PyTorch, ONNX Runtime) get the same geometry.
"""
from __future__ import annotations

import fnmatch
import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

import minigraph as mg


@dataclass(frozen=True)
class Workload:
    """One transposed-convolution layer. ``pad`` is ``None`` for CNTK auto-padding (pad=True,
    with ``output_shape``), else the explicit ``(lo, hi)`` applied on every spatial axis."""

    name: str
    group: str            # "dcgan", "mnist", "1d", "3d": which targets apply
    batch: int
    in_channels: int
    out_channels: int
    size: tuple           # input spatial size n per axis
    kernel: int
    stride: int
    pad: tuple | None = (1, 1)
    output_shape: tuple | None = None

    @property
    def rank(self) -> int:
        return len(self.size)

    def padding(self) -> dict:
        """The pad arguments of ``convolution_transpose`` for this workload."""
        if self.pad is None:
            return {"auto_padding": True, "output_shape": self.output_shape}
        return {"auto_padding": False, "lower_pad": self.pad[0], "upper_pad": self.pad[1]}

    @functools.cached_property
    def _node(self) -> mg.Function:
        """The layer's node on a symbolic-free input (built once, never run): its shape rule resolves the pads."""
        W = mg.parameter(self.w_shape, init=0.0, dtype=np.float32)
        return mg.ops.convolution_transpose(W, mg.input_variable(self.x_shape[1:]), strides=self.stride,
                                            **self.padding())

    def pads(self) -> list[tuple[int, int]]:
        """``(lo, hi)`` per spatial axis, as the shape rule resolved them (docs/semantics.md, "Pad placement")."""
        attributes = self._node.attributes
        return [(int(lo), int(hi)) for lo, hi in zip(attributes["lower_pad"], attributes["upper_pad"])]

    @property
    def out_size(self) -> tuple:
        return tuple(int(d) for d in self._node.shape[1:])

    @property
    def x_shape(self) -> tuple:
        return (self.batch, self.in_channels, *self.size)

    @property
    def w_shape(self) -> tuple:
        return (self.in_channels, self.out_channels, *(self.kernel,) * self.rank)

    @property
    def y_shape(self) -> tuple:
        return (self.batch, self.out_channels, *self.out_size)

    @property
    def flops(self) -> int:
        """Multiply-adds x 2 of the forward (every input pixel times every kernel tap, as peers count)."""
        return 2 * self.batch * self.in_channels * self.out_channels * math.prod(self.size) * self.kernel ** self.rank

    def gemm_buffer_bytes(self, samples: int, itemsize: int = 4) -> int:
        """Size of the channel GEMM's result ``cols (O*K^d, samples*n^d)`` for ``samples`` samples."""
        return samples * self.out_channels * self.kernel ** self.rank * math.prod(self.size) * itemsize

    def describe(self) -> str:
        n = "x".join(map(str, self.size))
        o = "x".join(map(str, self.out_size))
        pad = f"p{self.pad[0]}" if self.pad is not None and self.pad[0] == self.pad[1] else (
            f"p{self.pad}" if self.pad is not None else "pad=True")
        return f"N{self.batch} {self.in_channels}->{self.out_channels} {n}->{o} k{self.kernel} s{self.stride} {pad}"

    def arrays(self, seed: int = 0, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
        """Random ``x`` and ``W`` (scaled so outputs stay O(1))."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(self.x_shape).astype(dtype)
        fan_in = self.in_channels * self.kernel ** self.rank
        w = (rng.standard_normal(self.w_shape) / math.sqrt(fan_in)).astype(dtype)
        return x, w


def _dcgan() -> list[Workload]:
    layers = [Workload("dcgan1", "dcgan", 64, 100, 512, (1, 1), 4, 1, pad=(0, 0))]
    channels = [512, 256, 128, 64, 3]
    for i, (cin, cout) in enumerate(itertools.pairwise(channels)):
        n = 4 * 2 ** i
        layers.append(Workload(f"dcgan{i + 2}", "dcgan", 64, cin, cout, (n, n), 4, 2))
    return layers


WORKLOADS: list[Workload] = [
    *_dcgan(),
    Workload("mnist1_k4", "mnist", 64, 128, 64, (7, 7), 4, 2),
    Workload("mnist2_k4", "mnist", 64, 64, 1, (14, 14), 4, 2),
    Workload("mnist1_k5", "mnist", 64, 128, 64, (7, 7), 5, 2, pad=None, output_shape=(14, 14)),
    Workload("mnist2_k5", "mnist", 64, 64, 1, (14, 14), 5, 2, pad=None, output_shape=(28, 28)),
    Workload("conv1d", "1d", 32, 64, 64, (256,), 4, 2),
    Workload("conv3d", "3d", 4, 16, 16, (8, 8, 8), 4, 2),
]
"""Issue 8's workloads: DCGAN generator layers (batch 64), MNIST-size generator layers, 1D, 3D."""

TINY_WORKLOADS: list[Workload] = [
    Workload("tiny2d", "dcgan", 10, 4, 2, (3, 3), 4, 2),
    Workload("tiny_auto", "mnist", 3, 2, 3, (3, 4), 5, 2, pad=None, output_shape=(6, 8)),
    Workload("tiny1d", "1d", 2, 3, 2, (5,), 4, 2),
    Workload("tiny3d", "3d", 2, 2, 2, (2, 2, 2), 4, 2),
]
"""A few seconds' worth of the same machinery, for the smoke test."""


def select(workloads: list[Workload], patterns: list[str] | None) -> list[Workload]:
    """Workloads whose name or group matches one of the shell-style ``patterns`` (all when None)."""
    if not patterns:
        return list(workloads)
    return [w for w in workloads if any(fnmatch.fnmatch(w.name, p) or fnmatch.fnmatch(w.group, p) for p in patterns)]
