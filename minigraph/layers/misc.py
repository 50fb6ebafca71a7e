"""Parameter-free layers: ``Dropout``, ``Activation``, ``Reshape``, ``Flatten``, ``Identity``."""
from __future__ import annotations

from .. import ops
from ..checks import check_number
from ..shapes import as_shape
from .base import Layer, activation_function, identity


class Dropout(Layer):
    """Dropout(dropout_rate=None, keep_prob=None, name='')

    Inverted dropout in training runs, identity in evaluation (CNTK's layer); give ``dropout_rate``
    or ``keep_prob = 1 - dropout_rate``.

    >>> import minigraph as mg
    >>> Dropout(0.25)(mg.input_variable(10)).shape
    (10,)
    """

    def __init__(self, dropout_rate=None, keep_prob=None, name: str = ""):
        super().__init__(name)
        if (dropout_rate is None) == (keep_prob is None):
            raise ValueError(f"{self.label}: give exactly one of dropout_rate and keep_prob")
        value, arg = (dropout_rate, "dropout_rate") if keep_prob is None else (keep_prob, "keep_prob")
        value = check_number(value, arg, self.label, minimum=0, maximum=1)
        self.dropout_rate = value if keep_prob is None else 1 - value
        if self.dropout_rate >= 1:
            raise ValueError(f"{self.label}: dropping everything (dropout_rate 1 / keep_prob 0) leaves no signal")

    def apply(self, x):
        return ops.dropout(x, self.dropout_rate)


class Activation(Layer):
    """Activation(activation=identity, name='')

    Applies an activation function (or a name such as ``"relu"``) as a layer of its own.
    """

    def __init__(self, activation=identity, name: str = ""):
        super().__init__(name)
        self.activation = activation_function(activation, self.label)

    def apply(self, x):
        return self.activation(x)


class Reshape(Layer):
    """Reshape(shape, name='')

    ``mg.reshape(x, shape)``: same elements, static shape ``shape`` (one entry may be -1; entries may
    be names of the input's symbolic dims).

    >>> import minigraph as mg
    >>> Reshape((64, 2, 2))(mg.input_variable(256)).shape
    (64, 2, 2)
    """

    def __init__(self, shape, name: str = ""):
        super().__init__(name)
        try:
            self.shape = as_shape(shape)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{self.label}: shape {shape!r}: {exc}") from None

    def apply(self, x):
        return ops.reshape(x, self.shape)


class Flatten(Layer):
    """Flatten(name='')

    All static axes into one: ``(C, H, W) -> (C*H*W,)``.
    """

    def apply(self, x):
        return ops.reshape(x, (-1,))


class Identity(Layer):
    """Identity(name='')

    Returns its input unchanged (no node): a placeholder in a stack of layers.
    """

    def apply(self, x):
        return x
