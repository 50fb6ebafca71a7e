"""Parameter initializers (CNTK names): ``init(shape, dtype) -> array``.

Each takes ``scale`` and ``seed``; without a seed it draws from the global init generator
(:func:`minigraph.set_seed`). Fan-in and fan-out follow a layout, as CNTK computes them from a
parameter's filter rank and output rank: ``"dense"`` for ``(*I, *O)`` weights (the last
``output_rank`` axes are outputs; by default all but the first), ``"conv"`` for convolution kernels
``(O, I/groups, *K)`` and ``"conv_transpose"`` for transposed-convolution kernels
``(I, O/groups, *K)``. The receptive field ``prod(K)`` multiplies both fans. For the transposed
kernel CNTK counts the *leading* axis (the input depth ``I``) as the output side, because the kernel
is that of the convolution it is the adjoint of: fan-in ``O/groups * prod(K)``, fan-out
``I * prod(K)`` (PyTorch computes the same fans for its transposed kernels). Layers pick the layout
with :meth:`Initializer.with_layout`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .checks import check_seed
from .limits import check_memory
from .rng import init_rng

LAYOUTS = ("dense", "conv", "conv_transpose")


def fans(shape, layout: str = "dense", filter_rank: int = 0, output_rank: int | None = None) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` in ``layout`` with ``filter_rank`` kernel axes.

    ``output_rank`` (``"dense"`` only): how many trailing axes are outputs; ``None`` means all but
    the first (a 1-D shape counts as both input and output).

    >>> fans((3, 5))
    (3, 5)
    >>> fans((16, 64, 2, 2), "dense", output_rank=3)   # Dense((64, 2, 2)) on a 16-vector
    (16, 256)
    >>> fans((4, 6, 5), "dense", output_rank=1)        # Dense(5, input_rank=2)
    (24, 5)
    >>> fans((64, 32, 3, 3), "conv", 2)        # (O, I, kh, kw): fan_in = 32*9, fan_out = 64*9
    (288, 576)
    >>> fans((32, 64, 4, 4), "conv_transpose", 2)   # (I, O, kh, kw): fan_in = 64*16, fan_out = 32*16
    (1024, 512)
    """
    shape = tuple(int(d) for d in shape)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    if len(shape) == 0:
        return 1, 1
    if layout == "dense":
        if output_rank is None:
            if len(shape) == 1:
                return shape[0], shape[0]
            output_rank = len(shape) - 1
        if not 0 <= output_rank <= len(shape):
            raise ValueError(f"output_rank {output_rank} does not fit a weight of shape {shape}")
        split = len(shape) - output_rank
        return math.prod(shape[:split]), math.prod(shape[split:])
    if not 0 <= filter_rank < len(shape):
        raise ValueError(f"filter_rank {filter_rank} does not fit a {layout} kernel of shape {shape}")
    # both kernels count their leading axis as the output side (CNTK's output_rank=-1): the output
    # channels of a convolution, the input depth of a transposed convolution (its adjoint's output)
    field_size = math.prod(shape[len(shape) - filter_rank:])
    lead = shape[0]
    rest = math.prod(shape[1:len(shape) - filter_rank])
    return rest * field_size, lead * field_size


@dataclass(frozen=True)
class Initializer:
    """A random or constant initializer; call it with ``(shape, dtype)``."""

    kind: str
    scale: float = 1.0
    seed: int | None = None
    layout: str = "dense"
    filter_rank: int = 0
    value: float = 0.0
    output_rank: int | None = None

    def with_layout(self, layout: str, filter_rank: int = 0, output_rank: int | None = None) -> Initializer:
        """The same initializer with fans computed for ``layout`` (see :func:`fans`)."""
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
        return replace(self, layout=layout, filter_rank=filter_rank, output_rank=output_rank)

    def __call__(self, shape, dtype=np.float32) -> np.ndarray:
        shape = tuple(int(d) for d in shape)
        # values are drawn in float64 first: check that before allocating (mg.set_memory_limit)
        check_memory(math.prod(shape) * 8, f"the initial value of shape {shape}", hint="use smaller layers")
        rng = np.random.default_rng(self.seed) if self.seed is not None else init_rng()
        fan_in, fan_out = fans(shape, self.layout, self.filter_rank, self.output_rank)
        k = self.kind
        if k == "constant":
            out = np.full(shape, self.value)
        elif k == "uniform":
            out = rng.uniform(-self.scale, self.scale, shape)
        elif k == "normal":
            out = rng.normal(0.0, self.scale, shape)
        elif k == "truncated_normal":
            out = rng.normal(0.0, self.scale, shape)
            bad = np.abs(out) > 2 * self.scale
            while bad.any():  # redraw outside two standard deviations, as CNTK/TF do
                out[bad] = rng.normal(0.0, self.scale, int(bad.sum()))
                bad = np.abs(out) > 2 * self.scale
        elif k == "glorot_uniform":
            limit = self.scale * math.sqrt(6.0 / (fan_in + fan_out))
            out = rng.uniform(-limit, limit, shape)
        elif k == "glorot_normal":
            out = rng.normal(0.0, self.scale * math.sqrt(2.0 / (fan_in + fan_out)), shape)
        elif k == "he_uniform":
            limit = self.scale * math.sqrt(6.0 / fan_in)
            out = rng.uniform(-limit, limit, shape)
        elif k == "he_normal":
            out = rng.normal(0.0, self.scale * math.sqrt(2.0 / fan_in), shape)
        else:
            raise ValueError(f"unknown initializer kind {k!r}")
        return np.asarray(out, dtype=dtype)


def _check(scale, seed):
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale) or scale < 0:
        raise ValueError(f"initializer scale must be a finite number >= 0, got {scale!r}")
    check_seed(seed, "initializer")


def _factory(kind: str, default_scale: float):
    def make(scale: float = default_scale, seed: int | None = None) -> Initializer:
        _check(scale, seed)
        return Initializer(kind, float(scale), seed)
    make.__name__ = kind
    make.__qualname__ = kind
    make.__doc__ = f"``{kind}`` initializer (scale={default_scale} by default); see the module docstring."
    return make


glorot_uniform = _factory("glorot_uniform", 1.0)
glorot_normal = _factory("glorot_normal", 1.0)
he_uniform = _factory("he_uniform", 1.0)
he_normal = _factory("he_normal", 1.0)
uniform = _factory("uniform", 1.0)
normal = _factory("normal", 1.0)
truncated_normal = _factory("truncated_normal", 1.0)


def constant_initializer(value: float = 0.0) -> Initializer:
    """Every element ``value``."""
    return Initializer("constant", value=float(value))


def zeros() -> Initializer:
    return constant_initializer(0.0)


def ones() -> Initializer:
    return constant_initializer(1.0)


__all__ = ["Initializer", "fans", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "uniform",
           "normal", "truncated_normal", "zeros", "ones", "constant_initializer"]
