"""``Convolution`` and ``ConvolutionTranspose`` layers (N-D), and their 1D/2D/3D conveniences.

Weights (Python order, as CNTK's layers): ``Convolution``: ``W (num_filters, input_depth/groups,
*filter_shape)``; ``ConvolutionTranspose``: ``W (input_depth, num_filters, *filter_shape)``; the
bias ``b (num_filters, 1, ..., 1)`` is added after the op. ``num_filters=None`` or ``()`` drops the
output-depth axis from ``W``, ``b`` (then ``()``) and the output. The input depth is never given:
the op's shape rule infers it from the input on the first call (lazy initialisation);
``reduction_rank=0`` means the input has no depth axis (``input_depth = 1``).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..checks import check_bool, check_int, check_ints, is_int
from ..errors import ShapeError
from ..initializers import Initializer, glorot_uniform
from ..shapes import InferredDimension, is_known, shape_str
from .base import (
    Layer,
    activation_function,
    check_init,
    explicit_pads,
    identity,
    per_axis,
    per_axis_ints,
    per_axis_pads,
)


class _ConvolutionLayer(Layer):
    """What both layers share: argument checks, weights, and the reshapes around the op."""

    transposed = False

    def _configure(self, filter_shape, num_filters, *, activation, init, pad, strides, sharing, bias, init_bias,
                   reduction_rank, dilation=1, groups=1, max_temp_mem_size_in_samples, lower_pad=None,
                   upper_pad=None) -> None:
        label = self.label
        kernel = check_ints(filter_shape, "filter_shape", label, minimum=1)
        if self.fixed_rank is not None:
            if len(kernel) == 1:
                kernel = kernel * self.fixed_rank
            elif len(kernel) != self.fixed_rank:
                raise ValueError(f"{label}: filter_shape={filter_shape!r} must be an int or have {self.fixed_rank} "
                                 f"entries")
        self.filter_shape = kernel
        if num_filters is None or (isinstance(num_filters, (list, tuple)) and not num_filters):  # [] in specs
            self.num_filters: tuple[int, ...] = ()
        else:
            self.num_filters = check_ints(num_filters, "num_filters", label, minimum=1)
            if len(self.num_filters) != 1:
                raise ValueError(f"{label}: num_filters={num_filters!r} must be an int (the output depth), or None/() "
                                 f"for no output depth axis")
        self.activation = activation_function(activation, label)
        self.pad = per_axis_pads(pad, kernel, label)
        self.lower_pad, self.upper_pad = explicit_pads(lower_pad, upper_pad, kernel, label)
        if self.lower_pad is not None and "pad" in self.explicit and pad is not False:
            raise ValueError(f"{label}: pad={pad!r} and lower_pad/upper_pad both given; pad is a padding mode, "
                             f"lower_pad/upper_pad explicit sizes: give one of them")
        self.strides = per_axis_ints(strides, "strides", kernel, label)
        self.dilation = per_axis_ints(dilation, "dilation", kernel, label)
        if not all(check_bool(s, "sharing", label) for s in per_axis(sharing, "sharing", kernel, label)):
            raise NotImplementedError(f"{label}: sharing={sharing!r}: unshared weights (a separate kernel per "
                                      f"position) are not supported; use sharing=True")
        if not is_int(reduction_rank) or reduction_rank not in (0, 1):
            raise ValueError(f"{label}: reduction_rank must be 1 (the input has a depth axis) or 0 (it has none), "
                             f"got {reduction_rank!r}")
        self.reduction_rank = reduction_rank
        self.groups = check_int(groups, "groups", label, minimum=1)
        self.max_temp_mem_size_in_samples = check_int(max_temp_mem_size_in_samples, "max_temp_mem_size_in_samples",
                                                      label, minimum=0)
        self.has_bias = check_bool(bias, "bias", label)
        init = check_init(init, "init", label)
        if isinstance(init, Initializer):
            init = init.with_layout("conv_transpose" if self.transposed else "conv", len(kernel))
        depth = InferredDimension if reduction_rank else 1
        w_shape = (depth, *self.num_filters) if self.transposed else (*self.num_filters, depth)
        if isinstance(init, np.ndarray) and reduction_rank == 0 and init.ndim == len(w_shape) + len(kernel) - 1:
            init = np.expand_dims(init, 0 if self.transposed else len(self.num_filters))  # CNTK's form: no depth axis
        self.weight("W", w_shape + kernel, init, "init", None if self.num_filters else self._op_kernel_shape)
        init_bias = check_init(init_bias, "init_bias", label)
        if self.has_bias:
            self.weight("b", self.num_filters + (1,) * len(kernel) if self.num_filters else (), init_bias, "init_bias")

    # the op sees W with both depth axes -----------------------------------------------------
    def _op_kernel_shape(self, shape: tuple) -> tuple:
        """``shape`` of a W without output-depth axis, with the size-1 axis the op wants inserted."""
        return (shape[0], 1, *shape[1:]) if self.transposed else (1, *shape)

    def _kernel_for_op(self, x):
        W = self.W
        if self.num_filters:
            return W
        if W.shape[0] == InferredDimension:  # fill the input depth here: the op only sees a reshape of W
            W.fill_inferred_dims((x.shape[0], *W.shape[1:]), x.dtype)
        return ops.reshape(W, self._op_kernel_shape(W.shape))

    def _check_rank(self, x) -> None:
        rank, rr = len(self.filter_shape), self.reduction_rank
        if len(x.shape) != rank + rr:
            what = f"(depth, {rank} spatial axes)" if rr else f"({rank} spatial axes; reduction_rank=0: no depth axis)"
            raise ShapeError(f"input of shape {shape_str(x.shape)} has rank {len(x.shape)}; filter_shape "
                             f"{self.filter_shape} needs rank {rank + rr} {what}")
        if rr and not is_known(x.shape[0]):
            raise ShapeError(f"input of shape {shape_str(x.shape)}: its depth (axis 0) must be a known size, "
                             f"not {x.shape[0]}: it is a dimension of W")

    def _finish(self, y):
        """Drop the op's size-1 output depth when num_filters is (), add the bias, activate."""
        if not self.num_filters:
            y = y[0]
        if self.has_bias:
            y = y + self.b
        return self.activation(y)


class Convolution(_ConvolutionLayer):
    """Convolution(filter_shape, num_filters=None, activation=identity, init=glorot_uniform(), pad=False,
                   strides=1, sharing=True, bias=True, init_bias=0, reduction_rank=1, dilation=1, groups=1,
                   max_temp_mem_size_in_samples=0, lower_pad=None, upper_pad=None, name='')

    N-D convolution over the trailing axes (CNTK's layer; cross-correlation, no kernel flip), plus
    ``dilation`` and ``groups``. ``pad`` is a padding mode (True: centred, "same_upper"...);
    ``lower_pad``/``upper_pad`` give explicit sizes instead (an int or one per axis; a missing one is
    0): PyTorch's ``Conv2d(..., padding=1)`` is ``lower_pad=1, upper_pad=1``.

    >>> import minigraph as mg
    >>> f = Convolution((5, 4), 128, activation=mg.relu)
    >>> h = f(mg.input_variable((3, 480, 640)))
    >>> h.shape, f.W.shape
    ((128, 476, 637), (128, 3, 5, 4))
    """

    def __init__(self, filter_shape, num_filters=None, activation=identity, init=glorot_uniform(), pad=False,  # noqa: B008 (frozen)
                 strides=1, sharing=True, bias=True, init_bias=0, reduction_rank=1, dilation=1, groups=1,
                 max_temp_mem_size_in_samples=0, lower_pad=None, upper_pad=None, name: str = ""):
        super().__init__(name)
        self._configure(filter_shape, num_filters, activation=activation, init=init, pad=pad, strides=strides,
                        sharing=sharing, bias=bias, init_bias=init_bias, reduction_rank=reduction_rank,
                        dilation=dilation, groups=groups, max_temp_mem_size_in_samples=max_temp_mem_size_in_samples,
                        lower_pad=lower_pad, upper_pad=upper_pad)

    def apply(self, x):
        self._check_rank(x)
        y = ops.convolution(self._kernel_for_op(x), x, strides=self.strides, auto_padding=self.pad,
                            dilation=self.dilation, reduction_rank=self.reduction_rank, groups=self.groups,
                            max_temp_mem_size_in_samples=self.max_temp_mem_size_in_samples,
                            lower_pad=self.lower_pad, upper_pad=self.upper_pad)
        return self._finish(y)


class ConvolutionTranspose(_ConvolutionLayer):
    """ConvolutionTranspose(filter_shape, num_filters=None, activation=identity, init=glorot_uniform(),
                            pad=False, strides=1, sharing=True, bias=True, init_bias=0, output_shape=None,
                            max_temp_mem_size_in_samples=0, reduction_rank=1, lower_pad=None, upper_pad=None,
                            name='')

    N-D transposed convolution ("deconvolution", CNTK's layer): items of the input are spread into
    the output as a convolution spreads its gradients. ``output_shape`` (spatial; an int applies to
    every axis) picks one of the valid sizes when ``strides > 1`` makes several possible; an invalid
    one is a ShapeError listing the valid sizes. Otherwise the smallest valid size is used:
    ``(n - 1)*s + 1`` with ``pad=True``, ``(n - 1)*s + k`` with ``pad=False``, and
    ``(n - 1)*s + k - lower_pad - upper_pad`` with explicit pads (an int or one per axis): PyTorch's
    ``ConvTranspose2d(..., kernel_size=4, stride=2, padding=1)`` is ``strides=2, lower_pad=1, upper_pad=1``
    (its ``output_padding=p`` is ``output_shape`` = that size + p).

    >>> import minigraph as mg
    >>> f = ConvolutionTranspose((3, 4), 128, activation=mg.relu)
    >>> h = f(mg.input_variable((3, 480, 640)))
    >>> h.shape, f.W.shape, f.b.shape
    ((128, 482, 643), (3, 128, 3, 4), (128, 1, 1))
    """

    transposed = True

    def __init__(self, filter_shape, num_filters=None, activation=identity, init=glorot_uniform(), pad=False,  # noqa: B008 (frozen)
                 strides=1, sharing=True, bias=True, init_bias=0, output_shape=None, max_temp_mem_size_in_samples=0,
                 reduction_rank=1, lower_pad=None, upper_pad=None, name: str = ""):
        super().__init__(name)
        self._configure(filter_shape, num_filters, activation=activation, init=init, pad=pad, strides=strides,
                        sharing=sharing, bias=bias, init_bias=init_bias, reduction_rank=reduction_rank,
                        max_temp_mem_size_in_samples=max_temp_mem_size_in_samples, lower_pad=lower_pad,
                        upper_pad=upper_pad)
        if output_shape is not None:
            output_shape = check_ints(per_axis(output_shape, "output_shape", self.filter_shape, self.label),
                                      "output_shape", self.label, minimum=1)
        self.output_shape = output_shape

    def apply(self, x):
        self._check_rank(x)
        y = ops.convolution_transpose(self._kernel_for_op(x), x, strides=self.strides, auto_padding=self.pad,
                                      output_shape=self.output_shape, reduction_rank=self.reduction_rank,
                                      max_temp_mem_size_in_samples=self.max_temp_mem_size_in_samples,
                                      lower_pad=self.lower_pad, upper_pad=self.upper_pad)
        return self._finish(y)


def _with_rank(base: type, rank: int) -> type:
    """``base`` whose filter_shape must have ``rank`` axes (an int is repeated): ``Convolution2D``..."""
    name = f"{base.__name__}{rank}D"
    doc = (f"{name}(...): :class:`{base.__name__}` with a {rank}D filter_shape (an int k means "
           f"{(('k',) * rank)!r}); same arguments.")
    return type(name, (base,), {"fixed_rank": rank, "__doc__": doc, "__module__": __name__})


Convolution1D, Convolution2D, Convolution3D = (_with_rank(Convolution, r) for r in (1, 2, 3))
ConvolutionTranspose1D, ConvolutionTranspose2D, ConvolutionTranspose3D = (
    _with_rank(ConvolutionTranspose, r) for r in (1, 2, 3))
