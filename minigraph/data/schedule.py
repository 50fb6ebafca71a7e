"""Which samples make each minibatch: the order of every epoch, minibatch boundaries, and each
partition's share. A pure function of the position, so the training thread, the prefetch
thread and a resumed run all agree.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Position:
    """``epoch`` (sweeps completed) and ``offset``: samples of that epoch's order already taken
    (by all partitions together)."""

    epoch: int = 0
    offset: int = 0


@dataclass(frozen=True)
class Plan:
    """One minibatch: this partition's sample ``indices``, the position after it, and whether it
    ends its epoch."""

    position: Position
    indices: np.ndarray
    next: Position
    end_of_sweep: bool


def epoch_order(num_samples: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the samples: a permutation drawn from
    ``(seed, epoch)`` with numpy's default generator, or ``0..N-1`` without shuffling."""
    if not shuffle:
        return np.arange(num_samples)
    return np.random.default_rng([seed, epoch]).permutation(num_samples)


def partition_share(size: int, partitions: int, index: int) -> slice:
    """Rows of a minibatch of ``size`` for partition ``index``: contiguous, in partition order, the
    first ``size % partitions`` shares one row longer (``np.array_split``'s split, which
    ``Trainer.fit`` uses for arrays), so the shares concatenated are the whole minibatch."""
    rows, longer = divmod(size, partitions)
    start = index * rows + min(index, longer)
    return slice(start, start + rows + (index < longer))


class Schedule:
    """Minibatches of ``minibatch_size`` over ``num_samples`` samples, epoch after epoch (up to
    ``max_sweeps``); the last of an epoch is smaller unless ``drop_last`` drops it."""

    def __init__(self, num_samples: int, minibatch_size: int, shuffle: bool, seed: int, drop_last: bool,
                 max_sweeps: int | None, partitions: int = 1, index: int = 0):
        self.num_samples, self.minibatch_size, self.shuffle, self.seed = num_samples, minibatch_size, shuffle, seed
        self.drop_last, self.max_sweeps, self.partitions, self.index = drop_last, max_sweeps, partitions, index
        self._cached: tuple[int, np.ndarray] | None = None

    def order(self, epoch: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, epoch_order(self.num_samples, self.seed, epoch, self.shuffle))
        return self._cached[1]

    def _epoch_over(self, offset: int) -> bool:
        left = self.num_samples - offset
        return left <= 0 or (self.drop_last and left < self.minibatch_size)

    def minibatches_per_sweep(self) -> int:
        n, m = self.num_samples, self.minibatch_size
        return n // m if self.drop_last else -(-n // m)

    def plan(self, position: Position) -> Plan | None:
        """The minibatch at ``position``, None once ``max_sweeps`` epochs are done."""
        if self._epoch_over(position.offset):  # a position saved with another minibatch size or drop_last
            position = Position(position.epoch + 1, 0)
        if self.max_sweeps is not None and position.epoch >= self.max_sweeps:
            return None
        end = min(position.offset + self.minibatch_size, self.num_samples)
        rows = self.order(position.epoch)[position.offset:end]
        share = rows[partition_share(len(rows), self.partitions, self.index)]
        over = self._epoch_over(end)
        following = Position(position.epoch + 1, 0) if over else Position(position.epoch, end)
        return Plan(position, share, following, over)
