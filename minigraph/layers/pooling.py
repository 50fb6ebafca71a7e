"""``MaxPooling`` and ``AveragePooling`` layers (no parameters) over the trailing spatial axes."""
from __future__ import annotations

from .. import ops
from ..checks import check_ints
from ..ops.pooling import AVG_POOLING, MAX_POOLING
from .base import Layer, per_axis_ints, per_axis_pads


class _PoolingLayer(Layer):
    pooling_type = MAX_POOLING

    def __init__(self, filter_shape, strides=1, pad=False, name: str = ""):
        super().__init__(name)
        label = self.label
        self.filter_shape = check_ints(filter_shape, "filter_shape", label, minimum=1)
        self.strides = per_axis_ints(strides, "strides", self.filter_shape, label)
        self.pad = per_axis_pads(pad, self.filter_shape, label)

    def apply(self, x):
        return ops.pooling(x, self.pooling_type, self.filter_shape, self.strides, self.pad)


class MaxPooling(_PoolingLayer):
    """MaxPooling(filter_shape, strides=1, pad=False, name='')

    The maximum of each window of ``filter_shape`` over the trailing axes (CNTK's layer).

    >>> import minigraph as mg
    >>> MaxPooling((3, 3), strides=2, pad=True)(mg.input_variable((16, 8, 8))).shape
    (16, 4, 4)
    """

    pooling_type = MAX_POOLING


class AveragePooling(_PoolingLayer):
    """AveragePooling(filter_shape, strides=1, pad=False, name='')

    The mean of each window (padded positions are not counted), CNTK's layer.

    >>> import minigraph as mg
    >>> AveragePooling((2, 2), strides=2)(mg.input_variable((16, 8, 8))).shape
    (16, 4, 4)
    """

    pooling_type = AVG_POOLING
