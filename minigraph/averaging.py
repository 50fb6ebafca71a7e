"""Exponential moving averages of parameters, for evaluating and shipping a smoothed model.

``ema = mg.ExponentialMovingAverage(generator.parameters, decay=0.999)`` keeps a shadow copy of each
parameter; ``ema.update()`` after every training step moves it towards the current values,
``shadow = decay * shadow + (1 - decay) * value``. ``with ema.average_parameters():`` evaluates the
model on the averages and restores the trained values on leaving (also on an exception);
``ema.copy_to()`` writes the averages into the parameters for good; ``state_dict()`` /
``load_state_dict()`` carry them across a checkpoint. This is TensorFlow's
``ExponentialMovingAverage`` and the EMA of PyTorch's ``torch.optim.swa_utils.AveragedModel``, as GAN
generators are usually evaluated (ProGAN, StyleGAN, BigGAN). Batch-normalization running statistics
are not averaged: they are kept by the model as trained, and fit the trained weights, not their
average; :func:`update_bn` (PyTorch's ``torch.optim.swa_utils.update_bn``) recomputes them for the
averaged weights from a few minibatches.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import numpy as np

from . import autodiff
from .checks import check_int, check_number
from .errors import ShapeError
from .graph import Function, Node
from .learners import parameter_list


class ExponentialMovingAverage:
    """Shadow averages of ``parameters`` (a node, a layer, or a list of Parameters), ``decay`` in
    ``[0, 1]`` (0: the last values; 1: the values at construction). The shadows start at the
    parameters' current values and keep their dtypes; :attr:`num_updates` counts :meth:`update`."""

    def __init__(self, parameters, decay: float = 0.999):
        self.decay = check_number(decay, "decay", "ExponentialMovingAverage", minimum=0, maximum=1)
        self.parameters = parameter_list(parameters, "ExponentialMovingAverage", "averages",
                                         "ExponentialMovingAverage needs at least one parameter")
        # the shadows of each dtype are views of one flat array, and each update gathers the values
        # into a second one: a few numpy calls per update, not three per parameter (a generator
        # has tens of small parameters; 30 calls cost 1-2 % of the digits demo's step)
        self._groups: list[tuple[list[int], np.ndarray, np.ndarray]] = []
        self.shadow: list[np.ndarray] = [np.empty(0)] * len(self.parameters)
        for dtype in dict.fromkeys(p.value.dtype for p in self.parameters):
            members = [i for i, p in enumerate(self.parameters) if p.value.dtype == dtype]
            flat = np.concatenate([self.parameters[i].value.ravel() for i in members])
            offset = 0
            for i in members:
                size = self.parameters[i].value.size
                self.shadow[i] = flat[offset:offset + size].reshape(self.parameters[i].value.shape)
                offset += size
            self._groups.append((members, flat, np.empty_like(flat)))
        self.num_updates = 0

    def update(self) -> None:
        """``shadow = decay * shadow + (1 - decay) * value`` for every parameter, in place."""
        keep = self.decay
        for members, flat, values in self._groups:
            np.concatenate([self.parameters[i].value.ravel() for i in members], out=values)
            flat *= keep
            values *= 1.0 - keep
            flat += values
        self.num_updates += 1

    def copy_to(self) -> None:
        """Write the averages into the parameters (in place: learners keep their arrays)."""
        for shadow, p in zip(self.shadow, self.parameters):
            np.copyto(p.value, shadow)

    def state_dict(self) -> dict:
        """``{"decay", "num_updates", "shadow"}``: the shadows as copies, in parameter order (what
        :meth:`load_state_dict` takes back, e.g. saved beside a checkpoint with ``np.savez``)."""
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": [a.copy() for a in self.shadow]}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what :meth:`state_dict` gave: every shadow is checked against its parameter's
        shape before any is written (a mismatch raises ShapeError naming the parameter and leaves the
        averages as they were); values are cast to the parameter's dtype."""
        where = "ExponentialMovingAverage.load_state_dict"
        if not isinstance(state, Mapping) or set(state) != {"decay", "num_updates", "shadow"}:
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"{where}: expected a dict with keys decay, num_updates, shadow; got {got}")
        decay = check_number(state["decay"], "decay", where, minimum=0, maximum=1)
        updates = check_int(state["num_updates"], "num_updates", where, minimum=0)
        shadow = list(state["shadow"])
        if len(shadow) != len(self.parameters):
            raise ValueError(f"{where}: {len(shadow)} shadows for {len(self.parameters)} parameters")
        arrays = []
        for value, p in zip(shadow, self.parameters):
            arr = np.asarray(value)
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"{where}: the shadow of {p.label} must hold numbers, got a {arr.dtype} array")
            if arr.shape != p.value.shape:
                raise ShapeError(f"{where}: the shadow of {p.label} has shape {arr.shape}; the parameter has "
                                 f"{p.value.shape}")
            arrays.append(arr)
        for target, arr in zip(self.shadow, arrays):
            np.copyto(target, arr, casting="unsafe")
        self.decay, self.num_updates = decay, updates

    @contextmanager
    def average_parameters(self) -> Iterator[None]:
        """Within the block the parameters hold the averages; the trained values come back on leaving."""
        trained = [p.value.copy() for p in self.parameters]
        self.copy_to()
        try:
            yield
        finally:
            for value, p in zip(trained, self.parameters):
                np.copyto(p.value, value)


def update_bn(model: Node, feeds: Iterable[Mapping] | Mapping) -> int:
    """Recompute the running statistics of every batch normalization that ``model`` runs through, from
    ``feeds`` (an iterable of feed dicts, e.g. a few minibatches of noise for a generator, or one feed
    dict); returns how many batch normalizations were updated (0 when there are none).

    Each feed runs ``model`` forward in training mode, where batch normalization normalizes with the
    minibatch's statistics; its running mean becomes the average of the minibatch means and its
    running variance the average of the minibatch variances (unbiased unless the node keeps the
    biased one), each minibatch weighted equally, as ``torch.optim.swa_utils.update_bn`` does. Use it
    after :meth:`ExponentialMovingAverage.copy_to`: the running statistics were gathered with the
    trained weights, not with their average (inside ``with ema.average_parameters():`` the recomputed
    statistics stay after the block restores the trained weights). A layer called several times
    (shared weights) counts each call as one minibatch. Parameters are not touched; the running
    statistics are written only once every feed has run (an error leaves them as they were).
    """
    where = "update_bn"
    if not isinstance(model, Node):
        raise TypeError(f"{where}: model must be a node (the output to run, e.g. a generator's), got "
                        f"{type(model).__name__}")
    if isinstance(feeds, Mapping):
        feeds = [feeds]
    elif not isinstance(feeds, Iterable):
        raise TypeError(f"{where}: feeds must be an iterable of feed dicts (or one feed dict), got "
                        f"{type(feeds).__name__}")
    # keyed by the running Constants, which every call of a shared layer updates: each call counts
    # as one minibatch of its own, as in PyTorch
    totals: dict[tuple, list] = {}
    count = 0
    for i, feed in enumerate(feeds):
        if not isinstance(feed, Mapping):
            raise TypeError(f"{where}: feed {i} must be a dict of input arrays, got {type(feed).__name__}")
        statistics: dict[Function, tuple] = {}
        autodiff.forward(model, feed, training=True, for_backward=False, statistics=statistics)
        for node, values in statistics.items():
            key = tuple(node.inputs_direct[slot] for slot in node.op.updates_inputs)
            entry = totals.setdefault(key, [[np.zeros(v.shape) for v in values], 0])
            for total, value in zip(entry[0], values):
                total += value
            entry[1] += 1
        count += 1
    if not count:
        raise ValueError(f"{where}: feeds is empty; pass at least one feed dict (a minibatch of {model.label}'s "
                         f"inputs)")
    for constants, (sums, calls) in totals.items():
        for constant, total in zip(constants, sums):
            np.copyto(constant.value, total / calls, casting="unsafe")
    return len(totals)
