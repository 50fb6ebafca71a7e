"""Sizes and pads of convolution and transposed convolution, one spatial axis at a time.

Pure functions, the single source of truth for the shape rules (:mod:`minigraph.ops.conv`) and the
kernels (:mod:`minigraph.ops.conv_kernels`). They work on ints and on symbolic dims
(:class:`minigraph.shapes.Dim`) alike: only ``+ - * //`` and :func:`~minigraph.shapes.ceil_div`.

Names follow docs/semantics.md, seen from the convolution: ``big`` is the convolution's input length (the
transposed convolution's output, ``N``), ``small`` the convolution's output length (the transposed
convolution's input, ``n``), ``k`` the kernel length, ``s`` the stride, ``d`` the dilation and
``lo``/``hi`` the pads. Both ops use one index relation, ``big index = small index * s + tap * d - lo``.

A pad *mode* per axis is one of ``True`` (CNTK auto-padding), ``False`` or ``"valid"`` (none),
``"same_upper"``/``"same_lower"`` (TF/ONNX SAME, odd pad at the end/start), or an explicit
``(lo, hi)`` pair.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import sympy as sp

from ..checks import is_int
from ..shapes import DimLike, ceil_div, make_dim

SAME_MODES = ("same_upper", "same_lower")
STRING_MODES = ("valid",) + SAME_MODES
PadMode = bool | str | tuple  # True | False | "valid" | "same_upper" | "same_lower" | (lo, hi)


def per_axis(value, arg: str, rank: int, kernel_shape: Sequence, label: str, channel_entry) -> tuple:
    """One entry per spatial axis: a scalar repeats, a sequence must have ``rank`` entries.

    CNTK's op form, a sequence with one more entry for the channel axis first, is accepted when
    that entry is the neutral ``channel_entry`` (``False`` for pads, ``1`` for strides/dilation).
    """
    if not isinstance(value, (list, tuple)):
        return (value,) * rank
    if len(value) == rank:
        return tuple(value)
    first = value[0] if value else None
    if len(value) == rank + 1 and first == channel_entry and isinstance(first, bool) == isinstance(channel_entry, bool):
        return tuple(value[1:])
    channel_form = f" or {rank + 1} with a first (channel axis) entry {channel_entry!r}"
    raise ValueError(f"{label}: {arg}={_show(value)} has {len(value)} entries; expected one per spatial axis "
                     f"({rank} for kernel shape {tuple(kernel_shape)}){channel_form}, or a single value")


def _show(value) -> str:
    return repr(tuple(value)) if isinstance(value, list) else repr(value)


def per_axis_ints(value, arg: str, rank: int, kernel_shape: Sequence, label: str, minimum: int) -> tuple[int, ...]:
    """Per-axis ints ``>= minimum`` (strides, dilation: 1, channel entry 1; pads: 0, channel entry 0).
    Bools and floats are rejected; messages show the value as given."""
    values = per_axis(value, arg, rank, kernel_shape, label, minimum)
    for v in values:
        if not is_int(v):
            raise TypeError(f"{label}: {arg} must hold ints, got {_show(value)} for kernel shape {tuple(kernel_shape)}")
        if v < minimum:
            what = "positive" if minimum == 1 else "non-negative"
            raise ValueError(f"{label}: {arg}={_show(value)} must be {what} on every axis (kernel shape "
                             f"{tuple(kernel_shape)})")
    return tuple(int(v) for v in values)


def per_axis_pad_modes(value, rank: int, kernel_shape: Sequence, label: str) -> tuple:
    """Per-axis ``auto_padding``: bools or one of :data:`STRING_MODES` (channel entry ``False``)."""
    values = per_axis(value, "auto_padding", rank, kernel_shape, label, False)
    for v in values:
        if not (isinstance(v, bool) or v in STRING_MODES):
            raise ValueError(f"{label}: auto_padding={_show(value)} (kernel shape {tuple(kernel_shape)}): each entry "
                             f"must be True, False, 'valid', 'same_upper' or 'same_lower', got {v!r}")
    return values


def effective_kernel(k: int, d: int) -> int:
    """Extent of a dilated kernel: ``(k - 1) * d + 1``."""
    return (k - 1) * d + 1


def centered_pads(big: DimLike, small: DimLike, keff: int, s: int) -> tuple[DimLike, DimLike]:
    """CNTK auto-padding placement: centre the kernel, rows beyond ``(small - 1) * s + 1`` trim the pads.

    ``extra = big - ((small - 1) * s + 1)``; ``lo = (keff - 1)//2 - extra//2`` and
    ``hi = (keff - 1) - (keff - 1)//2 - (extra - extra//2)``.
    """
    extra = big - ((small - 1) * s + 1)
    half = (keff - 1) // 2
    return half - extra // 2, (keff - 1) - half - (extra - extra // 2)


def same_pads(big: DimLike, small: DimLike, keff: int, s: int, upper: bool) -> tuple[DimLike, DimLike]:
    """TF/ONNX SAME placement: ``total = (small - 1) * s + keff - big`` split evenly, the odd row at the
    end (``upper``) or the start; a negative total extends the end with zeros (``hi < 0``)."""
    total = (small - 1) * s + keff - big
    positive = _clamp_at_zero(total)
    lo = positive // 2 if upper else positive - positive // 2
    return lo, total - lo


def _clamp_at_zero(x: DimLike) -> DimLike:
    if isinstance(x, int):
        return max(x, 0)
    return make_dim(sp.Max(x.expr, 0))


def explicit_pads(mode: PadMode) -> tuple[int, int]:
    """``(lo, hi)`` of a mode without automatic placement: ``False`` and ``"valid"`` pad nothing."""
    if mode is False or mode == "valid":
        return 0, 0
    lo, hi = cast(tuple[int, int], mode)
    return lo, hi


def conv_axis(big: DimLike, k: int, s: int, d: int, mode: PadMode) -> tuple[DimLike, DimLike, DimLike]:
    """Convolution output length and pads on one axis: ``(small, lo, hi)``.

    pad=True and SAME: ``small = ceil(big / s)``; pad=False/"valid": ``(big - keff)//s + 1``;
    explicit ``(lo, hi)``: ``(big + lo + hi - keff)//s + 1``. The caller checks ``small >= 1``.
    """
    keff = effective_kernel(k, d)
    if mode is True or mode in SAME_MODES:
        small = ceil_div(big, s)
        if mode is True:
            return (small, *centered_pads(big, small, keff, s))
        return (small, *same_pads(big, small, keff, s, mode == "same_upper"))
    lo, hi = explicit_pads(mode)
    return (big + lo + hi - keff) // s + 1, lo, hi


def transpose_sizes(small: DimLike, k: int, s: int, d: int, mode: PadMode) -> tuple[DimLike, DimLike]:
    """The valid output lengths of a transposed convolution, ``first .. last`` inclusive: those that
    a convolution with the same options maps back to ``small``.

    pad=True and SAME: ``(small - 1) * s + 1 .. small * s``; pad=False and explicit pads:
    ``N0 .. N0 + s - 1`` with ``N0 = (small - 1) * s + keff - lo - hi``.
    """
    if mode is True or mode in SAME_MODES:
        return (small - 1) * s + 1, small * s
    lo, hi = explicit_pads(mode)
    first = (small - 1) * s + effective_kernel(k, d) - lo - hi
    return first, first + s - 1


def transpose_axis(small: DimLike, k: int, s: int, d: int, mode: PadMode,
                   big: DimLike | None = None) -> tuple[DimLike, DimLike, DimLike]:
    """Transposed convolution output length and pads on one axis: ``(big, lo, hi)``.

    ``big`` is the requested output length (checked by the caller against :func:`transpose_sizes`);
    ``None`` takes the smallest valid one, ``first`` (CNTK's ``N0``), except SAME which gives
    ``small * s``. The same formula serves ints and symbolic sizes, so a graph built on ``H`` gives,
    once ``H`` is bound, exactly what the graph built on the bound int gives; the caller checks
    ``big >= 1``. Rows beyond the smallest size go at the end: with explicit pads
    ``hi = (small - 1) * s + keff - lo - big`` (negative means zero extension).
    """
    keff = effective_kernel(k, d)
    if big is None:
        first, last = transpose_sizes(small, k, s, d, mode)
        big = last if mode in SAME_MODES else first
    if mode is True:
        return (big, *centered_pads(big, small, keff, s))
    if mode in SAME_MODES:
        return (big, *same_pads(big, small, keff, s, mode == "same_upper"))
    lo = explicit_pads(mode)[0]
    return big, lo, (small - 1) * s + keff - lo - big
