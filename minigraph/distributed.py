"""Data-parallel training over MPI (CNTK's distributed learner), on mpi4py.

minigraph runs on an existing distributed engine, MPI, and never on a runtime of its own. Every
process of a job (``mpiexec -n 4 python train.py``) holds the whole model, computes gradients of the
mean loss over its own share of each minibatch, and a :func:`data_parallel_distributed_learner`
averages the gradients across processes with one ``Allreduce`` per step over a single flattened
buffer. Every process then applies the same update, so the parameters stay identical everywhere.

Without mpi4py, or when the script was not launched by ``mpiexec``, everything runs as one process
of size 1: the same script works both ways. A script launched by ``mpiexec`` with several processes
but without mpi4py raises ImportError naming the ``distributed`` extra, because training on would
silently repeat the same work in every process.

Faults: an exception on one process inside :meth:`Trainer.train_minibatch` (or inside
:func:`abort_on_error`) prints its traceback on that process and ends the whole job with
``MPI.COMM_WORLD.Abort``, so the other processes never wait forever in a collective call.

Batch normalization keeps per-process statistics during training (as PyTorch's
DistributedDataParallel does); checkpoints are written by rank 0, so they hold rank 0's statistics.
"""
from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .graph import Parameter
from .learners import Learner

# The variables that MPI launchers set in every process they start: MPICH/Hydra and Intel MPI
# (PMI_SIZE), Open MPI (OMPI_COMM_WORLD_SIZE), PMIx-based launchers (PMIX_SIZE is not always set;
# their rank count comes through OMPI_ or PMI_ too), MVAPICH (MV2_COMM_WORLD_SIZE).
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")

_world: Any = None          # mpi4py's COMM_WORLD once it is needed, else None (one process)
_world_checked = False


def _launched_size() -> int:
    """The number of processes the launcher says this job has (1 when not launched by one)."""
    for name in _LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def _comm():
    """COMM_WORLD when this process is one of several, else None (imports mpi4py only then)."""
    global _world, _world_checked
    if not _world_checked:
        if _launched_size() > 1:
            try:
                from mpi4py import MPI
            except ImportError:
                raise ImportError("this script was launched by mpiexec with several processes, but mpi4py is "
                                  "not installed; install the extra: pip install 'minigraph[distributed]'") from None
            _world = MPI.COMM_WORLD
        _world_checked = True
    return _world


class Communicator:
    """The processes of this job (CNTK's ``Communicator``). Static methods, like CNTK's:

    >>> Communicator.rank(), Communicator.size(), Communicator.is_main()
    (0, 1, True)
    """

    @staticmethod
    def rank() -> int:
        """This process's index, 0 to ``size() - 1``."""
        comm = _comm()
        return 0 if comm is None else int(comm.Get_rank())

    @staticmethod
    def size() -> int:
        """The number of processes in the job (1 without MPI)."""
        comm = _comm()
        return 1 if comm is None else int(comm.Get_size())

    num_workers = size  # CNTK's name

    @staticmethod
    def is_main() -> bool:
        """True on rank 0, the process that prints, logs and writes checkpoints."""
        return Communicator.rank() == 0

    @staticmethod
    def barrier() -> None:
        """Wait until every process has arrived here."""
        comm = _comm()
        if comm is not None:
            comm.Barrier()

    @staticmethod
    def finalize() -> None:
        """End MPI for this process (call once, at the end of a distributed script). Harmless
        without MPI; mpi4py also finalizes at exit by itself."""
        comm = _comm()
        if comm is not None:
            from mpi4py import MPI
            if not MPI.Is_finalized():
                MPI.Finalize()


@contextmanager
def abort_on_error() -> Iterator[None]:
    """Run a block so that an exception on one process ends the whole job.

    On several processes the exception's traceback is printed on the process that raised it, then
    ``MPI.COMM_WORLD.Abort(1)`` stops every process (the others may be waiting in a collective call
    that would never complete). On one process the exception propagates as usual."""
    try:
        yield
    except BaseException:
        comm = _comm()
        if comm is None:
            raise
        print(f"minigraph: rank {comm.Get_rank()} of {comm.Get_size()} failed; aborting the job", file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
        comm.Abort(1)
        raise  # Abort does not return; kept for readers and for a stubbed communicator


class DistributedLearner(Learner):
    """A learner whose updates use the gradients averaged over every process of the job.

    Created by :func:`data_parallel_distributed_learner`; it holds the wrapped learner as
    :attr:`learner` and shares its parameters, state and checkpoints (a checkpoint written by a
    distributed run restores into a plain learner of the same kind, and the other way round).
    """

    def __init__(self, learner: Learner, distributed_after: int = 0):
        # no Learner.__init__: every attribute of the update rule belongs to the wrapped learner
        self.learner = learner
        self.distributed_after = distributed_after
        self._synchronised = False
        if self._distributing():
            self._broadcast_state()

    # the wrapped learner's attributes and state -------------------------------------------------
    parameters = property(lambda self: self.learner.parameters)
    slots = property(lambda self: self.learner.slots)
    count = property(lambda self: self.learner.count)
    samples_seen = property(lambda self: self.learner.samples_seen)

    def learning_rate(self) -> float:
        return self.learner.learning_rate()

    def reset_learning_rate(self, lr) -> None:
        self.learner.reset_learning_rate(lr)

    def state_dict(self) -> dict:
        return self.learner.state_dict()

    def load_state_dict(self, state: Mapping) -> None:
        self.learner.load_state_dict(state)

    def checked_state(self, state: Mapping) -> dict:
        return self.learner.checked_state(state)

    # updates ----------------------------------------------------------------------------------
    def _distributing(self) -> bool:
        """True once the warm start is over and there is more than one process."""
        return Communicator.size() > 1 and self.learner.samples_seen >= self.distributed_after

    def _broadcast_state(self) -> None:
        """Give every process rank 0's parameter values and learner state (at creation, and when
        the warm start ends), so that different seeds or local warm-up steps cannot diverge."""
        comm = _comm()
        for p in self.parameters:
            comm.Bcast(p.value, root=0)
        for slots in self.learner.slots:
            for name in sorted(slots):
                comm.Bcast(slots[name], root=0)
        counters = np.array([self.learner.count, self.learner.samples_seen], dtype=np.int64)
        comm.Bcast(counters, root=0)
        self.learner.count, self.learner.samples_seen = int(counters[0]), int(counters[1])
        self._synchronised = True

    def update(self, gradients: Mapping[Parameter, np.ndarray], minibatch_size: int) -> bool:
        """Average ``gradients`` (of the mean loss over this process's ``minibatch_size`` samples)
        over every process, weighted by their sample counts, and apply the wrapped learner's rule."""
        self.update_with_statistics(gradients, minibatch_size, ())
        return True

    def update_with_statistics(self, gradients: Mapping[Parameter, np.ndarray], minibatch_size: int,
                               statistics: Sequence[float]) -> tuple[int, tuple[float, ...]]:
        """:meth:`update`, also summing ``statistics`` (e.g. this process's loss sum) over the
        processes in the same ``Allreduce``. Returns the global sample count and the sums.

        The buffer holds ``minibatch_size * gradient`` of every parameter, then the sample count,
        then the statistics; its sum divided by the total sample count is the gradient of the mean
        loss over the whole minibatch, exactly as one process would compute it."""
        if not self._distributing():
            self.learner.update(gradients, minibatch_size)
            return minibatch_size, tuple(float(s) for s in statistics)
        if not self._synchronised:  # the warm start just ended: continue from rank 0's state
            self._broadcast_state()
        missing = [p.label for p in self.parameters if p not in gradients]
        if missing:
            raise ValueError(f"DistributedLearner.update: no gradient for {', '.join(missing)}")
        dtype = np.result_type(*(p.value.dtype for p in self.parameters))
        sizes = [p.value.size for p in self.parameters]
        buffer = np.empty(sum(sizes) + 1 + len(statistics), dtype=dtype)
        offset = 0
        for p, n in zip(self.parameters, sizes):
            np.multiply(np.asarray(gradients[p]).reshape(-1), minibatch_size, out=buffer[offset:offset + n])
            offset += n
        buffer[offset] = minibatch_size
        buffer[offset + 1:] = statistics
        from mpi4py import MPI
        _comm().Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        total = int(round(float(buffer[offset])))
        averaged, offset = {}, 0
        for p, n in zip(self.parameters, sizes):
            averaged[p] = (buffer[offset:offset + n] / total).reshape(p.value.shape)
            offset += n
        self.learner.update(averaged, total)
        return total, tuple(float(s) for s in buffer[offset + 1:])

    def __repr__(self):
        return f"data_parallel_distributed_learner({self.learner!r}, distributed_after={self.distributed_after})"


def data_parallel_distributed_learner(learner: Learner, distributed_after: int = 0,
                                      num_quantization_bits: int = 32) -> DistributedLearner:
    """Wrap ``learner`` for data-parallel training over MPI (CNTK's name and arguments).

    learner: any minigraph learner (sgd, momentum_sgd, adam, ...); gradient clipping and L2 act on
        the averaged gradient (clipping after averaging).
    distributed_after: the first ``distributed_after`` samples (counted by the learner on this
        process) train locally without communication (CNTK's warm start); when distributed training
        begins, rank 0's parameters and learner state are broadcast so every process continues from
        the same point.
    num_quantization_bits: 32 (full-precision gradients). CNTK's 1-bit SGD (fewer bits) is not
        supported.

    When the learner is created, parameters and learner state are broadcast from rank 0, so
    processes seeded differently start identically.
    """
    if not isinstance(learner, Learner) or isinstance(learner, DistributedLearner):
        raise TypeError(f"data_parallel_distributed_learner wraps a minigraph learner (sgd, momentum_sgd, adam, "
                        f"...), got {type(learner).__name__}")
    if isinstance(distributed_after, bool) or not isinstance(distributed_after, (int, np.integer)) \
            or distributed_after < 0:
        raise ValueError(f"distributed_after must be an int >= 0 (a number of samples), got {distributed_after!r}")
    if isinstance(num_quantization_bits, bool) or num_quantization_bits != 32:
        raise ValueError(f"num_quantization_bits={num_quantization_bits!r} is not supported: minigraph averages "
                         f"full-precision gradients (32); CNTK's 1-bit SGD is out of scope")
    return DistributedLearner(learner, int(distributed_after))


__all__ = ["Communicator", "DistributedLearner", "abort_on_error", "data_parallel_distributed_learner"]
