"""Sizes and pads (minigraph.ops.conv_geometry): every worked example of docs/semantics.md, per-axis
arguments, symbolic sizes, and the round trip (a convolution maps every valid transposed size back)."""
import itertools

import pytest

from minigraph.ops import conv_geometry as geo
from minigraph.shapes import Dim, dim

# docs/semantics.md, "Worked examples": (n, K, s, output_shape) -> (N, (lo, hi)), pad=True
PAD_TRUE_EXAMPLES = [
    (4, 3, 2, None, 7, (1, 1)),
    (4, 3, 2, 8, 8, (1, 0)),
    (4, 4, 2, None, 7, (1, 2)),
    (4, 4, 2, 8, 8, (1, 1)),
    (4, 2, 1, None, 4, (0, 1)),
    (14, 3, 2, None, 27, (1, 1)),
    (14, 3, 2, 28, 28, (1, 0)),
    (14, 5, 2, 28, 28, (2, 1)),
]


@pytest.mark.parametrize("n,k,s,want,size,pads", PAD_TRUE_EXAMPLES)
def test_semantics_pad_true_examples(n, k, s, want, size, pads):
    assert geo.transpose_axis(n, k, s, 1, True, want) == (size, *pads)


@pytest.mark.parametrize("n,k,s,size", [(4, 3, 2, 9), (4, 4, 2, 10)])
def test_semantics_pad_false_examples(n, k, s, size):
    assert geo.transpose_axis(n, k, s, 1, False) == (size, 0, 0)


@pytest.mark.parametrize("pad,sizes", [(False, (5, 9, 15)), (True, (3, 7, 13))])
def test_semantics_3d_example(pad, sizes):
    got = tuple(geo.transpose_axis(n, 3, s, 1, pad)[0] for n, s in zip((3, 4, 5), (1, 2, 3)))
    assert got == sizes


def test_valid_sizes_pad_true_and_explicit():
    assert geo.transpose_sizes(7, 3, 2, 1, True) == (13, 14)
    assert geo.transpose_sizes(14, 3, 2, 1, True) == (27, 28)
    # explicit / pad=False: N0 .. N0 + s - 1 with N0 = (n - 1)*s + Keff - lo - hi
    assert geo.transpose_sizes(4, 3, 3, 2, (1, 0)) == (3 * 3 + 5 - 1, 3 * 3 + 5 - 1 + 2)
    assert geo.transpose_sizes(4, 3, 2, 1, False) == (9, 10)


def test_explicit_extra_rows_go_to_the_end():
    # hi = (n - 1)*s + Keff - lo - N: one extra row turns hi = 1 into 0, two into -1 (zero extension)
    assert geo.transpose_axis(4, 3, 3, 1, (1, 1)) == (10, 1, 1)
    assert geo.transpose_axis(4, 3, 3, 1, (1, 1), 11) == (11, 1, 0)
    assert geo.transpose_axis(4, 3, 3, 1, (1, 1), 12) == (12, 1, -1)


def test_default_size_is_n0_even_when_not_positive():
    # n 1, K 1, s 2, pads (0, 1): N0 = 0 is the default (CNTK, PyTorch) and the op rejects it; 1 must be asked
    # for. One formula for ints and symbolic sizes: a graph built on H gives, bound, what the int gives.
    assert geo.transpose_sizes(1, 1, 2, 1, (0, 1)) == (0, 1)
    assert geo.transpose_axis(1, 1, 2, 1, (0, 1)) == (0, 0, 1)
    assert geo.transpose_axis(1, 1, 2, 1, (0, 1), 1) == (1, 0, 0)
    h = dim("H")
    assert geo.transpose_axis(h, 1, 2, 1, (0, 1))[0] == 2 * h - 2


def test_dilation_enters_through_effective_kernel():
    assert geo.effective_kernel(3, 2) == 5
    assert geo.transpose_axis(4, 3, 2, 2, False) == (11, 0, 0)
    assert geo.transpose_axis(4, 3, 2, 2, True) == (7, 2, 2)
    assert geo.conv_axis(11, 3, 2, 2, False) == (4, 0, 0)


def test_same_modes_give_n_times_s_with_odd_pad_at_end_or_start():
    # K 4, s 2: total pad 2 -> (1, 1); K 3, s 2: total 1 -> upper (0, 1), lower (1, 0)
    assert geo.transpose_axis(5, 4, 2, 1, "same_upper") == (10, 1, 1)
    assert geo.transpose_axis(5, 3, 2, 1, "same_upper") == (10, 0, 1)
    assert geo.transpose_axis(5, 3, 2, 1, "same_lower") == (10, 1, 0)
    # a kernel shorter than the stride: negative total, zero extension at the end
    assert geo.transpose_axis(5, 1, 3, 1, "same_upper") == (15, 0, -2)
    assert geo.conv_axis(10, 3, 2, 1, "same_lower") == (5, 1, 0)


def test_valid_is_pad_false():
    assert geo.transpose_axis(4, 3, 2, 1, "valid") == geo.transpose_axis(4, 3, 2, 1, False)
    assert geo.conv_axis(9, 3, 2, 1, "valid") == (4, 0, 0)


@pytest.mark.parametrize("big,k,s,small,pads", [(7, 3, 2, 4, (1, 1)), (8, 3, 2, 4, (1, 0)), (28, 5, 2, 14, (2, 1)),
                                                (8, 1, 2, 4, (0, -1))])
def test_convolution_pad_true(big, k, s, small, pads):
    assert geo.conv_axis(big, k, s, 1, True) == (small, *pads)


def test_convolution_explicit_and_false():
    assert geo.conv_axis(9, 3, 2, 1, False) == (4, 0, 0)
    assert geo.conv_axis(10, 3, 2, 1, False) == (4, 0, 0)
    assert geo.conv_axis(10, 4, 3, 1, (2, 1)) == (4, 2, 1)


MODES = [True, False, "valid", "same_upper", "same_lower", (0, 0), (1, 0), (2, 3), (0, 2)]


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_round_trip_every_valid_size_maps_back(mode):
    """Each valid transposed size is mapped back to n by the convolution with the same options,
    with the same lower pad, and the sizes just outside the range are not."""
    for n, k, s, d in itertools.product((1, 2, 5), (1, 2, 3, 4), (1, 2, 3), (1, 2)):
        first, last = geo.transpose_sizes(n, k, s, d, mode)
        for big in range(max(first, 1), last + 1):
            _, lo, hi = geo.transpose_axis(n, k, s, d, mode, big)
            small, conv_lo, _ = geo.conv_axis(big, k, s, d, mode)
            assert (small, conv_lo) == (n, lo), (n, k, s, d, big)
            # the index relation's extent: (n - 1)*s + Keff = lo + N + hi
            assert (n - 1) * s + geo.effective_kernel(k, d) == lo + big + hi
        for big in (first - 1, last + 1):
            if big >= 1:
                assert geo.conv_axis(big, k, s, d, mode)[0] != n, (n, k, s, d, big)


def test_symbolic_sizes():
    h = dim("H")
    assert geo.transpose_axis(h, 3, 2, 1, True) == (2 * h - 1, 1, 1)
    assert geo.transpose_axis(h, 4, 2, 1, False) == (2 * h + 2, 0, 0)
    size, lo, hi = geo.transpose_axis(h, 4, 2, 1, True)
    assert (size, lo, hi) == (2 * h - 1, 1, 2)
    small, lo, hi = geo.conv_axis(h, 3, 1, 1, True)
    assert (small, lo, hi) == (h, 1, 1)
    small, _, _ = geo.conv_axis(h, 3, 2, 1, False)
    assert isinstance(small, Dim) and small.subs({"H": 9}) == 4
    # every expression agrees with the integer rule once H is bound (where the smallest size is positive)
    for mode in MODES:
        for value in range(1, 9):
            if geo.transpose_sizes(value, 3, 2, 1, mode)[0] < 1:
                continue
            sym = geo.transpose_axis(h, 3, 2, 1, mode)
            ints = geo.transpose_axis(value, 3, 2, 1, mode)
            assert tuple(x.subs({"H": value}) if isinstance(x, Dim) else x for x in sym) == ints
            sym = geo.conv_axis(h + 4, 3, 2, 1, mode)
            ints = geo.conv_axis(value + 4, 3, 2, 1, mode)
            assert tuple(x.subs({"H": value}) if isinstance(x, Dim) else x for x in sym) == ints


class TestPerAxis:
    def test_scalar_repeats(self):
        assert geo.per_axis(2, "strides", 3, (3, 3, 3), "L", 1) == (2, 2, 2)

    def test_sequence_one_per_axis(self):
        assert geo.per_axis([1, 2], "strides", 2, (3, 3), "L", 1) == (1, 2)

    def test_cntk_channel_entry_accepted_when_neutral(self):
        assert geo.per_axis((False, True, True), "auto_padding", 2, (3, 3), "L", False) == (True, True)
        assert geo.per_axis((1, 2, 3), "strides", 2, (3, 3), "L", 1) == (2, 3)

    def test_channel_entry_must_be_neutral(self):
        with pytest.raises(ValueError, match=r"L: strides=\(2, 2, 3\) has 3 entries; expected one per spatial axis "
                                             r"\(2 for kernel shape \(3, 3\)\) or 3 with a first \(channel axis\) "
                                             r"entry 1"):
            geo.per_axis((2, 2, 3), "strides", 2, (3, 3), "L", 1)
        with pytest.raises(ValueError, match="auto_padding"):
            geo.per_axis((True, True, True), "auto_padding", 2, (3, 3), "L", False)

    def test_wrong_length_names_argument_value_and_kernel(self):
        with pytest.raises(ValueError, match=r"L: dilation=\(1, 2, 1, 1\) has 4 entries.*kernel shape \(3, 3\)"):
            geo.per_axis([1, 2, 1, 1], "dilation", 2, (3, 3), "L", 1)

    def test_per_axis_ints(self):
        assert geo.per_axis_ints((1, 2), "strides", 2, (3, 3), "L", 1) == (1, 2)
        assert geo.per_axis_ints(0, "lower_pad", 2, (3, 3), "L", 0) == (0, 0)
        with pytest.raises(ValueError, match=r"L: strides=\(0, 2\) must be positive on every axis \(kernel shape "):
            geo.per_axis_ints((0, 2), "strides", 2, (3, 3), "L", 1)
        with pytest.raises(ValueError, match=r"L: lower_pad=-1 must be non-negative"):
            geo.per_axis_ints(-1, "lower_pad", 1, (3,), "L", 0)
        with pytest.raises(TypeError, match=r"L: dilation must hold ints, got 1.5 for kernel shape \(3,\)"):
            geo.per_axis_ints(1.5, "dilation", 1, (3,), "L", 1)
        with pytest.raises(TypeError, match="strides must hold ints"):
            geo.per_axis_ints((True,), "strides", 1, (3,), "L", 1)

    def test_pad_modes(self):
        assert geo.per_axis_pad_modes((True, "same_lower"), 2, (3, 3), "L") == (True, "same_lower")
        assert geo.per_axis_pad_modes(False, 2, (3, 3), "L") == (False, False)
        with pytest.raises(ValueError, match=r"L: auto_padding='same' \(kernel shape \(3,\)\).*got 'same'"):
            geo.per_axis_pad_modes("same", 1, (3,), "L")
