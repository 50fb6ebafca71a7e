"""Independent loop oracles for convolution and transposed convolution (docs/semantics.md).

Every function here walks the index relation directly, one position and one kernel tap at a time:

    o = i * s + k * d - lo

``i`` indexes the small side (the convolution's output, the transposed convolution's input), ``o``
the big side (the convolution's input, the transposed convolution's output), ``k`` a kernel tap,
``s`` the stride, ``d`` the dilation and ``lo`` the lower pad; pairs with ``o`` outside ``[0, N)``
read or write padding and drop out. Channels are split into ``groups`` equal groups.

Arrays carry the batch axis: small ``(B, C, *n)``, big ``(B, O, *N)``. Kernels have the transposed
convolution's layout ``(C, O // groups, *K)``: ``C`` small-side channels, ``O`` big-side channels;
a convolution from ``O`` channels to ``C`` channels uses the same layout (PyTorch's ``Conv`` layout
``(out, in // groups, *K)``). Loops only: slow, obviously right, for small test sizes.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def triples(small: Sequence[int], big: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
            dilation: Sequence[int], lower: Sequence[int]) -> Iterator[tuple[tuple, tuple, tuple]]:
    """Every (small index i, tap k, big index o) with ``o = i*s + k*d - lo`` inside the big side."""
    for i in np.ndindex(*small):
        for k in np.ndindex(*kernel):
            o = tuple(a * s + t * d - lo for a, t, s, d, lo in zip(i, k, strides, dilation, lower))
            if all(0 <= p < n for p, n in zip(o, big)):
                yield i, k, o


def _groups(w: np.ndarray, groups: int) -> Iterator[tuple[slice, slice]]:
    """Per group: its slice of small-side channels and its slice of big-side channels."""
    cg, og = w.shape[0] // groups, w.shape[1]
    for g in range(groups):
        yield slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)


def _at(channels: slice, position: tuple) -> tuple:
    return (slice(None), channels, *position)


def scatter(x: np.ndarray, w: np.ndarray, big: Sequence[int], *, strides: Sequence[int],
            lower: Sequence[int], dilation: Sequence[int] | None = None, groups: int = 1) -> np.ndarray:
    """The transposed convolution: ``y[o] += x[i] @ w[k]``; x ``(B, C, *n)`` -> ``(B, O, *big)``.

    Also the input gradient of the convolution (``x`` is then the output gradient)."""
    dilation = (1,) * len(big) if dilation is None else dilation
    y = np.zeros((x.shape[0], w.shape[1] * groups, *big))
    for i, k, o in triples(x.shape[2:], big, w.shape[2:], strides, dilation, lower):
        for sc, bc in _groups(w, groups):
            y[_at(bc, o)] += x[_at(sc, i)] @ w[(sc, slice(None), *k)]
    return y


def gather(z: np.ndarray, w: np.ndarray, small: Sequence[int], *, strides: Sequence[int],
           lower: Sequence[int], dilation: Sequence[int] | None = None, groups: int = 1) -> np.ndarray:
    """The convolution: ``c[i] = sum_k w[k] z[o]``; z ``(B, O, *N)`` -> ``(B, C, *small)``.

    Also the input gradient of the transposed convolution (``z`` is then the output gradient)."""
    dilation = (1,) * len(small) if dilation is None else dilation
    c = np.zeros((z.shape[0], w.shape[0], *small))
    for i, k, o in triples(small, z.shape[2:], w.shape[2:], strides, dilation, lower):
        for sc, bc in _groups(w, groups):
            c[_at(sc, i)] += z[_at(bc, o)] @ w[(sc, slice(None), *k)].T
    return c


def kernel_gradient(small: np.ndarray, big: np.ndarray, kernel: Sequence[int], *, strides: Sequence[int],
                    lower: Sequence[int], dilation: Sequence[int] | None = None, groups: int = 1) -> np.ndarray:
    """The kernel gradient of either op, ``(C, O // groups, *K)``: ``sum small[i]^T big[o]`` over the
    pairs, with ``small`` and ``big`` the values (or output gradients) on the two sides."""
    dilation = (1,) * len(kernel) if dilation is None else dilation
    c, o_total = small.shape[1], big.shape[1]
    gw = np.zeros((c, o_total // groups, *kernel))
    for i, k, o in triples(small.shape[2:], big.shape[2:], kernel, strides, dilation, lower):
        for sc, bc in _groups(gw, groups):
            gw[(sc, slice(None), *k)] += small[_at(sc, i)].T @ big[_at(bc, o)]
    return gw


def centred_lower_pad(small: int, kernel: int, stride: int, big: int, dilation: int = 1) -> int:
    """``lo`` of ``pad=True`` (docs/semantics.md, "Pad placement"): the dilated kernel centred, the
    spare positions of the big side (those no stride reaches) taken off the start by half, rounded down."""
    extent = (kernel - 1) * dilation + 1
    spare = big - ((small - 1) * stride + 1)
    return (extent - 1) // 2 - spare // 2


__all__ = ["centred_lower_pad", "gather", "kernel_gradient", "scatter", "triples"]
