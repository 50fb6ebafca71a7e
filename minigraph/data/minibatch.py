"""MinibatchSource (CNTK's name): minibatches drawn from a data source, epoch after epoch, in a
reproducible order, optionally read ahead by a background thread, split among the processes of a
distributed run, and resumable from a saved position.
"""
from __future__ import annotations

import copy
import weakref
from collections.abc import Iterator, Mapping

import numpy as np

from .. import rng
from ..checks import check_bool, check_int
from ..errors import DataError
from .arrays import ArraySource
from .prefetch import Prefetcher, PrefetchSlot
from .schedule import Plan, Position, Schedule

STATE_FORMAT = "minigraph-minibatch-source"
STATE_VERSION = 1
_COUNTERS = ("epoch", "offset", "samples_seen", "iteration")


class MinibatchSource:
    """Minibatches (``{name: array}`` with a leading batch axis) from ``source``.

    source: an :class:`ArraySource`, an :class:`ImageFolder`, a dict of arrays (wrapped in an
        ArraySource), or any object with ``len()`` and ``read(indices) -> {name: array}``.
    minibatch_size: samples per minibatch, for all partitions together; an epoch's last
        minibatch holds what is left unless ``drop_last``.
    shuffle, seed: each epoch visits the samples in ``numpy.random.default_rng([seed, epoch])
        .permutation(N)`` order (in storage order without shuffling). ``seed`` defaults to a
        draw from minigraph's random generator (reproducible after ``mg.set_seed``).
    max_sweeps: epochs after which :meth:`next_minibatch` returns ``{}`` and iteration stops;
        None: forever.
    prefetch: minibatches a background thread reads ahead (0: read in the calling thread). The
        minibatches are the same with and without it; an error in the thread (a file that
        cannot be read, naming it) is raised by :meth:`next_minibatch`. The thread stops on
        :meth:`close`, at the end of a ``with`` block, or when the source is garbage-collected.
        The thread decodes on a core of its own when there is one to spare; when the training's
        BLAS and copy threads already fill every core, its decoding slows the GEMMs they split
        (measured on 2 cores: prefetch 0 was the faster setting), so measure both there.
    num_data_partitions, partition_index: this process's share of every minibatch in a
        distributed run: ``np.array_split(minibatch_rows, P)[i]`` (contiguous rows, the first
        ``n % P`` shares one longer), so the shares are disjoint and, concatenated in partition
        order, are the single-process minibatch. Every process must use the same seed.

    Position: :attr:`epoch` (sweeps completed: the epoch of the next minibatch),
    :attr:`samples_seen` (samples this partition has delivered), :attr:`iteration` (minibatches
    delivered) and :attr:`end_of_sweep` (whether the last minibatch ended its epoch).
    :meth:`state_dict` / :meth:`load_state_dict` save and restore it, so a resumed run continues
    with the exact minibatch the interrupted one would have read next.
    """

    label = "MinibatchSource"

    def __init__(self, source, minibatch_size: int, shuffle: bool = True, seed: int | None = None,
                 max_sweeps: int | None = None, drop_last: bool = False, prefetch: int = 0,
                 num_data_partitions: int = 1, partition_index: int = 0):
        label = self.label
        if isinstance(source, Mapping):
            source = ArraySource(source)
        if not (hasattr(source, "__len__") and callable(getattr(source, "read", None))):
            raise TypeError(f"{label}: source must be an ArraySource, an ImageFolder, a dict of arrays, or have "
                            f"len() and read(indices); got {type(source).__name__}")
        minibatch_size = check_int(minibatch_size, "minibatch_size", label, minimum=1)
        shuffle, drop_last = check_bool(shuffle, "shuffle", label), check_bool(drop_last, "drop_last", label)
        if max_sweeps is not None:
            max_sweeps = check_int(max_sweeps, "max_sweeps", label, minimum=1)
        self.prefetch = check_int(prefetch, "prefetch", label, minimum=0)
        partitions = check_int(num_data_partitions, "num_data_partitions", label, minimum=1)
        index = check_int(partition_index, "partition_index", label)
        if not 0 <= index < partitions:
            raise DataError(f"{label}: partition_index must be in [0, num_data_partitions) = [0, {partitions}), "
                            f"got {index}")
        n = len(source)
        if n <= 0:
            raise DataError(f"{label}: the source has no samples")
        if drop_last and minibatch_size > n:
            raise DataError(f"{label}: minibatch_size {minibatch_size} is larger than the data ({n} samples), so "
                            f"drop_last=True would drop every minibatch; use a smaller minibatch_size or "
                            f"drop_last=False")
        if minibatch_size < partitions:
            raise DataError(f"{label}: minibatch_size {minibatch_size} is smaller than num_data_partitions "
                            f"{partitions}: some partitions would get no samples")
        if seed is None:
            if partitions > 1 and shuffle:
                raise DataError(f"{label}: num_data_partitions={partitions} with shuffle=True needs an explicit "
                                f"seed, the same in every process, so that all partitions share one order")
            seed = int(rng.ops_rng().integers(2**63))
        self.seed = check_int(seed, "seed", label, minimum=0)
        self.source, self.minibatch_size, self.shuffle, self.drop_last = source, minibatch_size, shuffle, drop_last
        self.max_sweeps, self.num_data_partitions, self.partition_index = max_sweeps, partitions, index
        self._schedule = Schedule(n, minibatch_size, shuffle, self.seed, drop_last, max_sweeps, partitions, index)
        self._position = Position()
        self.samples_seen = 0
        self.iteration = 0
        self.end_of_sweep = False
        self._slot = PrefetchSlot()
        self._finalizer = weakref.finalize(self, self._slot.stop)

    # position ---------------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """Sweeps completed: the epoch (from 0) the next minibatch comes from."""
        return self._position.epoch

    @property
    def num_samples(self) -> int:
        return self._schedule.num_samples

    def __len__(self) -> int:
        """Minibatches per sweep."""
        return self._schedule.minibatches_per_sweep()

    # reading ----------------------------------------------------------------------------------
    def _next_plan_and_batch(self) -> tuple[Plan, dict] | None:
        if not self.prefetch:
            plan = self._schedule.plan(self._position)
            return None if plan is None else (plan, self.source.read(plan.indices))
        if self._slot.current is None:
            self._slot.current = Prefetcher(self.source, copy.copy(self._schedule), self._position, self.prefetch)
        try:
            return self._slot.current.get()
        except BaseException:
            self._slot.stop()  # the next call retries the same minibatch in a new thread
            raise

    def next_minibatch(self) -> dict[str, np.ndarray]:
        """The next minibatch ``{name: array}``; ``{}`` once ``max_sweeps`` epochs are done.
        An error while reading leaves the position unchanged."""
        got = self._next_plan_and_batch()
        if got is None:
            return {}
        plan, batch = got
        self._position = plan.next
        self.samples_seen += len(plan.indices)
        self.iteration += 1
        self.end_of_sweep = plan.end_of_sweep
        return batch

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        """Minibatches until ``max_sweeps`` epochs are done (forever without it)."""
        while True:
            batch = self.next_minibatch()
            if not batch:
                return
            yield batch

    def close(self) -> None:
        """Stop the prefetch thread (a later :meth:`next_minibatch` starts a new one)."""
        self._slot.stop()

    def __enter__(self) -> MinibatchSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The position and what identifies the order (JSON-friendly; for checkpoints)."""
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "num_samples": self.num_samples,
                "seed": self.seed, "shuffle": self.shuffle, "epoch": self._position.epoch,
                "offset": self._position.offset, "samples_seen": self.samples_seen, "iteration": self.iteration}

    def check_state(self, state) -> None:
        """Raise DataError unless ``state`` is a :meth:`state_dict` of a source over the same
        samples in the same order (same length, shuffle and seed)."""
        label = f"{self.label}.load_state_dict"
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
            raise DataError(f"{label}: not a MinibatchSource state (a dict from state_dict()), got "
                            f"{type(state).__name__}")
        if state.get("version") != STATE_VERSION:
            raise DataError(f"{label}: state version {state.get('version')!r} is not supported "
                            f"(this minigraph reads version {STATE_VERSION})")
        counters = {k: state.get(k) for k in _COUNTERS}
        if not all(type(v) is int and v >= 0 for v in counters.values()):
            raise DataError(f"{label}: the counters {counters} must be ints >= 0")
        if state.get("num_samples") != self.num_samples:
            raise DataError(f"{label}: the state is of a source of {state.get('num_samples')!r} samples; this one "
                            f"has {self.num_samples}")
        if state.get("shuffle") is not self.shuffle or (self.shuffle and state.get("seed") != self.seed):
            raise DataError(f"{label}: the state is of another order (shuffle={state.get('shuffle')!r}, "
                            f"seed={state.get('seed')!r}); this source has shuffle={self.shuffle}, seed={self.seed}")
        if state["offset"] > self.num_samples:
            raise DataError(f"{label}: offset {state['offset']} is past the end of the {self.num_samples} samples")

    def load_state_dict(self, state: Mapping) -> None:
        """Continue from a :meth:`state_dict`: the next minibatch is the one that followed it.
        A state that does not fit raises DataError and changes nothing."""
        self.check_state(state)
        self._slot.stop()
        self._position = Position(state["epoch"], state["offset"])
        self.samples_seen, self.iteration = state["samples_seen"], state["iteration"]
        self.end_of_sweep = False

    def __repr__(self) -> str:
        return (f"MinibatchSource({self.source!r}, minibatch_size={self.minibatch_size}, shuffle={self.shuffle}, "
                f"seed={self.seed}, epoch={self.epoch}, samples_seen={self.samples_seen})")
