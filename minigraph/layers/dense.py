"""``Dense``: a fully connected layer, ``activation(x @ W + b)``, with tensor-shaped outputs."""
from __future__ import annotations

from .. import ops
from ..checks import check_bool, check_int, check_ints
from ..initializers import Initializer, glorot_uniform
from ..shapes import InferredDimension
from .base import Layer, activation_function, check_init, identity


class Dense(Layer):
    """Dense(shape, activation=identity, init=glorot_uniform(), input_rank=None, map_rank=None, bias=True,
             init_bias=0, name='')

    ``W`` has shape ``(*input_axes, *shape)`` and ``b`` shape ``shape``; the product is
    ``mg.times(x, W, output_rank=len(shape))``. By default every input axis is contracted (``W`` is
    created on the first call, when the input's rank is known); ``input_rank=r`` contracts the last
    ``r`` input axes (``W`` exists at once), ``map_rank=m`` keeps the first ``m`` axes (applies the
    layer to each of their items).

    >>> import minigraph as mg
    >>> f = Dense((64, 2, 2), activation=mg.relu, name="fc")
    >>> h = f(mg.input_variable(16))
    >>> h.shape, f.W.shape, f.b.shape
    ((64, 2, 2), (16, 64, 2, 2), (64, 2, 2))
    """

    def __init__(self, shape, activation=identity, init=glorot_uniform(), input_rank=None, map_rank=None,  # noqa: B008
                 bias=True, init_bias=0, name: str = ""):
        super().__init__(name)
        label = self.label
        self.output_shape = check_ints(shape, "shape", label, minimum=1)
        self.activation = activation_function(activation, label)
        if input_rank is not None and map_rank is not None:
            raise ValueError(f"{label}: give input_rank or map_rank, not both")
        self.input_rank = None if input_rank is None else check_int(input_rank, "input_rank", label, minimum=0)
        self.map_rank = None if map_rank is None else check_int(map_rank, "map_rank", label, minimum=0)
        self.init = check_init(init, "init", label)
        if isinstance(self.init, Initializer):
            self.init = self.init.with_layout("dense", output_rank=len(self.output_shape))
        self.has_bias = check_bool(bias, "bias", label)
        init_bias = check_init(init_bias, "init_bias", label)
        if self.has_bias:
            self.weight("b", self.output_shape, init_bias, "init_bias")
        if input_rank is not None or hasattr(self.init, "ndim"):
            self._make_W(input_rank if input_rank is not None else self.init.ndim - len(self.output_shape))
        else:
            self._pending["W"] = "it is created on the first call, when the input's rank is known " \
                                 "(pass input_rank=... to create it at once)"

    def _make_W(self, reduced: int) -> None:
        self.weight("W", (InferredDimension,) * reduced + self.output_shape, self.init, "init")

    def apply(self, x):
        if "W" not in self._params:
            self._make_W(len(x.shape) - (self.map_rank or 0))
        y = ops.times(x, self.W, output_rank=len(self.output_shape))
        if self.has_bias:
            y = y + self.b
        return self.activation(y)
