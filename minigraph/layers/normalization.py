"""``BatchNormalization`` and ``LayerNormalization`` layers."""
from __future__ import annotations

import numpy as np

from .. import ops
from ..checks import check_bool, check_number, is_int
from ..graph import Constant
from ..shapes import is_static, shape_str
from .base import Layer, check_init


class BatchNormalization(Layer):
    """BatchNormalization(map_rank=None, init_scale=1, normalization_time_constant=5000, momentum=None,
                          epsilon=1e-5, unbiased_running_variance=True, name='')

    CNTK's layer. ``map_rank=1``: spatial batch normalization, one mean/variance (and ``scale``,
    ``bias``) per channel (axis 0), shared over batch and positions: what convolutional layers want.
    ``map_rank=None``: one per element of the input. In training runs (``training=True``) the
    minibatch statistics are used and folded into ``running_mean``/``running_var`` (Constants);
    evaluation uses those. ``momentum`` overrides CNTK's ``normalization_time_constant`` (samples).
    The running variance tracks the unbiased minibatch variance, as PyTorch's (see
    :func:`minigraph.ops.batch_normalization`). PyTorch's ``BatchNorm2d(C)`` is
    ``BatchNormalization(map_rank=1, momentum=0.1)``.
    The parameters are created on the first call, when the input's shape is known.

    >>> import minigraph as mg
    >>> bn = BatchNormalization(map_rank=1)
    >>> bn(mg.input_variable((8, 4, 4))).shape, bn.scale.shape, bn.running_var.shape
    ((8, 4, 4), (8,), (8,))
    """

    def __init__(self, map_rank=None, init_scale=1, normalization_time_constant=5000, momentum=None, epsilon=1e-5,
                 unbiased_running_variance: bool = True, name: str = ""):
        super().__init__(name)
        label = self.label
        if not (map_rank is None or (is_int(map_rank) and map_rank == 1)):
            raise ValueError(f"{label}: map_rank must be None (per element) or 1 (per channel, spatial), "
                             f"got {map_rank!r}")
        self.spatial = map_rank == 1
        self.init_scale = check_init(init_scale, "init_scale", label)
        self.normalization_time_constant = check_number(normalization_time_constant, "normalization_time_constant",
                                                        label, minimum=0)
        self.momentum = None if momentum is None else check_number(momentum, "momentum", label, minimum=0, maximum=1)
        self.epsilon = check_number(epsilon, "epsilon", label, minimum=0)
        self.unbiased_running_variance = check_bool(unbiased_running_variance, "unbiased_running_variance", label)
        why = "it is created on the first call, when the input's shape is known"
        self._pending.update(dict.fromkeys(("scale", "bias", "running_mean", "running_var"), why))
        self._statistics: dict[str, Constant] = {}

    def _create(self, x) -> None:
        shape = tuple(x.shape[:1]) if self.spatial else tuple(x.shape)
        if not shape and self.spatial:
            raise ValueError(f"input of shape {shape_str(x.shape)} has no channel axis for map_rank=1")
        if not is_static(shape):
            raise ValueError(f"input of shape {shape_str(x.shape)}: the statistics shape {shape_str(shape)} must be "
                             f"known sizes (use map_rank=1 to normalize per channel over symbolic positions)")
        self.weight("scale", shape, self.init_scale, "init_scale")
        self.weight("bias", shape, 0.0, "init_bias")
        with self.own_scope():
            for key, fill in (("running_mean", 0.0), ("running_var", 1.0)):
                # a list (not an array) has no dtype of its own: when the input has none yet, the
                # statistics adopt the dtype the graph settles on, like the input and the parameters
                self._statistics[key] = Constant(np.full(shape, fill).tolist(), dtype=x.dtype, name=key)
                self._pending.pop(key)

    def __getattr__(self, attr):
        stats = self.__dict__.get("_statistics", {})
        if attr in stats:
            return stats[attr]
        return super().__getattr__(attr)

    def apply(self, x):
        if not self._statistics:
            self._create(x)
        return ops.batch_normalization(x, self.scale, self.bias, self.running_mean, self.running_var,
                                       spatial=self.spatial,
                                       normalization_time_constant=self.normalization_time_constant,
                                       momentum=self.momentum, epsilon=self.epsilon,
                                       unbiased_running_variance=self.unbiased_running_variance)


class LayerNormalization(Layer):
    """LayerNormalization(initial_scale=1, initial_bias=0, epsilon=1e-5, name='')

    Normalizes each sample over all its axes, then ``scale * x + bias`` with one learnt ``scale`` and
    ``bias`` (shape ``()``), as CNTK's layer.

    >>> import minigraph as mg
    >>> ln = LayerNormalization()
    >>> ln(mg.input_variable((4, 3))).shape, ln.scale.shape
    ((4, 3), ())
    """

    def __init__(self, initial_scale=1, initial_bias=0, epsilon=1e-5, name: str = ""):
        super().__init__(name)
        label = self.label
        self.epsilon = check_number(epsilon, "epsilon", label, minimum=0)
        self.weight("scale", (), check_init(initial_scale, "initial_scale", label), "initial_scale")
        self.weight("bias", (), check_init(initial_bias, "initial_bias", label), "initial_bias")

    def apply(self, x):
        return ops.layer_normalization(x, self.scale, self.bias, epsilon=self.epsilon)
