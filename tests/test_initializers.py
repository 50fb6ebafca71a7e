"""Initializers: fans as CNTK computes them per layout, and the limits they imply."""
import math

import numpy as np
import pytest

import minigraph as mg
from minigraph.initializers import fans


@pytest.mark.parametrize("shape,layout,filter_rank,output_rank,expected", [
    ((3, 5), "dense", 0, None, (3, 5)),
    ((7,), "dense", 0, None, (7, 7)),
    ((16, 64, 2, 2), "dense", 0, 3, (16, 256)),
    ((4, 6, 5), "dense", 0, 1, (24, 5)),
    ((64, 32, 3, 3), "conv", 2, None, (32 * 9, 64 * 9)),
    ((32, 64, 4, 4), "conv_transpose", 2, None, (64 * 16, 32 * 16)),   # (I, O, K): fan_in from O
    ((2, 3, 3), "conv_transpose", 2, None, (9, 18)),                    # no output depth axis
    ((3, 4, 5), "conv_transpose", 1, None, (4 * 5, 3 * 5)),             # 1-D kernel
])
def test_fans(shape, layout, filter_rank, output_rank, expected):
    assert fans(shape, layout, filter_rank, output_rank) == expected


def test_he_uniform_limit_uses_cntk_fan_in_for_transposed_kernels():
    init = mg.initializers.he_uniform(seed=3).with_layout("conv_transpose", 2)
    w = init((8, 2, 3, 3), np.float64)
    limit = math.sqrt(6.0 / (2 * 9))
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.8 * limit


def test_glorot_uniform_dense_output_rank():
    init = mg.initializers.glorot_uniform(seed=0).with_layout("dense", output_rank=3)
    w = init((16, 8, 2, 2), np.float32)
    assert w.dtype == np.float32
    assert np.abs(w).max() <= math.sqrt(6.0 / (16 + 32))


def test_bad_layout_and_ranks():
    with pytest.raises(ValueError, match="layout"):
        fans((2, 3), "conv3d")
    with pytest.raises(ValueError, match="output_rank"):
        fans((2, 3), "dense", output_rank=3)
    with pytest.raises(ValueError, match="filter_rank"):
        fans((2, 3), "conv", filter_rank=2)
