"""What every progress writer shares (CNTK's ``ProgressWriter``): when to write, and the running
averages of each trainer it is fed by.

A trainer feeds its writers after every step (:meth:`ProgressWriter.training_update`), every test
minibatch (:meth:`ProgressWriter.test_update`) and at summaries (:meth:`ProgressWriter.training_summary`,
:meth:`ProgressWriter.test_summary`). Any object can feed a writer if it has what a
:class:`~minigraph.Trainer` has: ``loss_function`` (its name becomes the writer's tag for it),
``step_count``, ``total_number_of_samples_seen``, ``parameter_learners``,
``previous_minibatch_loss_average``, ``previous_minibatch_evaluation_average`` and
``previous_minibatch_sample_count``. Several trainers can feed one writer; each has its own
averages and tag. :func:`write_training_progress` and friends feed a list of writers.
"""
from __future__ import annotations

import atexit
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["ProgressWriter", "Progress", "process_rank", "write_training_progress", "write_test_progress",
           "summarize_training_progress", "summarize_test_progress"]

def process_rank() -> int:
    """This process's rank in a distributed run, 0 when not distributed (``distributed.Communicator.rank``)."""
    from ..distributed import Communicator  # function-local: the trainer imports both modules
    return Communicator.rank()


def _optional_positive_int(value, what: str, owner: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{owner}: {what} must be a positive int or None, got {value!r}")
    return value


def _int_at_least_zero(value, what: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{owner}: {what} must be an int >= 0, got {value!r}")
    return value


def due(count: int, freq: int | None, first: int = 0) -> bool:
    """Whether the ``count``-th minibatch (1-based) of a summary period is written: each of the first
    ``first``, then every ``freq``-th, or at 1, 2, 4, 8, ... (CNTK's geometric schedule) when ``freq`` is None."""
    if count <= first:
        return True
    return count & (count - 1) == 0 if freq is None else count % freq == 0


@dataclass
class Progress:
    """What a writer writes: the averages of one trainer since the last write (``*_since_last``) and
    since the start of the summary period (``*_since_start``; a period ends at each summary).

    Averages are per sample. ``first_update``/``last_update`` count minibatches within the period
    (1-based); ``step`` is the trainer's total step count (the x axis of TensorBoard's charts).
    """

    tag: str
    step: int
    first_update: int
    last_update: int
    samples_since_last: int
    samples_since_start: int
    total_samples: int
    loss_since_last: float | None
    loss_since_start: float | None
    metric_since_last: float | None
    metric_since_start: float | None
    learning_rates: list[float]
    seconds: float            # since the previous write (updates) or the period's start (summaries)
    summary_index: int = 0    # summaries written so far, this one included (0 for updates)

    @property
    def samples_per_second(self) -> float:
        return self.samples_since_last / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class _Sums:
    """Sample-weighted sums of loss and metric, and the counts behind them."""

    loss: float = 0.0
    metric: float = 0.0
    samples: int = 0
    updates: int = 0
    has_loss: bool = False
    has_metric: bool = False

    def add(self, loss: float | None, metric: float | None, samples: int) -> None:
        if loss is not None:
            self.loss += loss * samples
            self.has_loss = True
        if metric is not None:
            self.metric += metric * samples
            self.has_metric = True
        self.samples += samples
        self.updates += 1

    def loss_average(self) -> float | None:
        return self.loss / self.samples if self.has_loss and self.samples else None

    def metric_average(self) -> float | None:
        return self.metric / self.samples if self.has_metric and self.samples else None


@dataclass
class _Run:
    """A writer's record of one trainer that feeds it."""

    tag: str
    start: _Sums = field(default_factory=_Sums)
    last: _Sums = field(default_factory=_Sums)
    test_start: _Sums = field(default_factory=_Sums)
    test_last: _Sums = field(default_factory=_Sums)
    period_began: float = 0.0
    last_write: float = 0.0
    test_began: float = 0.0
    summaries: int = 0
    test_summaries: int = 0
    seen_update: bool = False


def _learning_rates(trainer) -> list[float]:
    """The rate each learner used for its last update (its next rate before the first)."""
    return [float(lr.lr_schedule(max(lr.count - 1, 0))) for lr in trainer.parameter_learners]


_open_writers: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _flush_open_writers() -> None:
    """What writers hold reaches the disk when the interpreter exits, even after an uncaught error."""
    for writer in list(_open_writers):
        writer._flush_quietly()


class ProgressWriter:
    """Base class of the progress writers: the schedule and per-trainer running averages.

    freq: write the average of the minibatches since the last write every ``freq`` minibatches;
        None: CNTK's geometric schedule (minibatches 1, 2, 4, 8, ... of each summary period).
    first: additionally write each of the first ``first`` minibatches of a period.
    test_freq: the same for :meth:`test_update` (None: test minibatches only enter the test summary).
    rank: only the process of this rank in a distributed run writes; None: every process that is
        not a worker of one (rank 0, or no distributed run).

    Subclasses implement the ``on_write_*`` methods, which receive :class:`Progress` records.
    """

    clock = staticmethod(time.perf_counter)  # seconds; tests replace it for fixed timings

    def __init__(self, freq: int | None = None, first: int = 0, test_freq: int | None = None, rank: int | None = None):
        owner = type(self).__name__
        self.freq = _optional_positive_int(freq, "freq", owner)
        self.first = _int_at_least_zero(first, "first", owner)
        self.test_freq = _optional_positive_int(test_freq, "test_freq", owner)
        if rank is not None:
            _int_at_least_zero(rank, "rank", owner)
        self.rank = rank
        self.writes_here = process_rank() == (0 if rank is None else rank)
        self.closed = False
        self._runs: dict[int, _Run] = {}
        self._trainers: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        _open_writers.add(self)

    # trainers ---------------------------------------------------------------------------------
    def attach(self, trainer) -> None:
        """Register ``trainer`` as a source (the Trainer does this for its ``progress_writers``).
        Its tag is its loss's name; two trainers of one writer need different tags."""
        if id(trainer) in self._runs and self._trainers.get(id(trainer)) is trainer:
            return
        tag = getattr(trainer.loss_function, "name", "") or ""
        taken = {r.tag for key, r in self._runs.items() if key in self._trainers}
        if tag in taken:
            shown = f"{tag!r}" if tag else "'' (unnamed losses)"
            raise ValueError(f"{type(self).__name__}: two trainers would write under the same tag {shown}; "
                             f"name their losses differently (name= of the op that computes each loss)")
        now = self.clock()
        self._runs[id(trainer)] = _Run(tag, period_began=now, last_write=now, test_began=now)
        self._trainers[id(trainer)] = trainer

    def _run(self, trainer) -> _Run:
        if self._trainers.get(id(trainer)) is not trainer:
            self.attach(trainer)
        return self._runs[id(trainer)]

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"{type(self).__name__} was closed; create a new one to write more")

    # feeding ----------------------------------------------------------------------------------
    def training_update(self, trainer) -> None:
        """Account for the trainer's last step; write when the schedule says so."""
        self._check_open()
        run = self._run(trainer)
        if not run.seen_update:  # a resumed trainer continues its epoch numbers
            run.seen_update = True
            run.summaries = max(run.summaries, getattr(trainer, "epochs_done", 0))
            self.on_first_update(run, trainer.step_count)
        samples = trainer.previous_minibatch_sample_count
        loss, metric = trainer.previous_minibatch_loss_average, trainer.previous_minibatch_evaluation_average
        run.start.add(loss, metric, samples)
        run.last.add(loss, metric, samples)
        if self.writes_here and due(run.start.updates, self.freq, self.first):
            now = self.clock()
            self.on_write_training_update(self._progress(run, run.last, run.start, trainer, now - run.last_write))
            run.last, run.last_write = _Sums(), now

    def test_update(self, trainer, samples: int, metric: float, loss: float | None = None) -> None:
        """Account for one test minibatch of ``samples`` samples with mean ``metric`` (and ``loss``)."""
        self._check_open()
        run = self._run(trainer)
        run.test_start.add(loss, metric, samples)
        run.test_last.add(loss, metric, samples)
        if self.writes_here and self.test_freq is not None and due(run.test_start.updates, self.test_freq):
            now = self.clock()
            self.on_write_test_update(self._progress(run, run.test_last, run.test_start, trainer, now - run.test_began))
            run.test_last = _Sums()

    def training_summary(self, trainer) -> None:
        """Write the averages of the period since the previous summary (an epoch in ``fit``); start a new one."""
        self._check_open()
        run = self._run(trainer)
        if run.start.updates == 0:
            return
        now = self.clock()
        run.summaries += 1
        if self.writes_here:
            progress = self._progress(run, run.start, run.start, trainer, now - run.period_began)
            progress.summary_index = run.summaries
            self.on_write_training_summary(progress)
        run.start, run.last, run.period_began, run.last_write = _Sums(), _Sums(), now, now

    def test_summary(self, trainer) -> None:
        """Write the averages of the test minibatches since the previous test summary."""
        self._check_open()
        run = self._run(trainer)
        if run.test_start.updates == 0:
            return
        now = self.clock()
        run.test_summaries += 1
        if self.writes_here:
            progress = self._progress(run, run.test_start, run.test_start, trainer, now - run.test_began)
            progress.summary_index = run.test_summaries
            self.on_write_test_summary(progress)
        run.test_start, run.test_last, run.test_began = _Sums(), _Sums(), now

    def _progress(self, run: _Run, last: _Sums, start: _Sums, trainer, seconds: float) -> Progress:
        return Progress(
            tag=run.tag, step=trainer.step_count, first_update=start.updates - last.updates + 1,
            last_update=start.updates, samples_since_last=last.samples, samples_since_start=start.samples,
            total_samples=trainer.total_number_of_samples_seen, loss_since_last=last.loss_average(),
            loss_since_start=start.loss_average(), metric_since_last=last.metric_average(),
            metric_since_start=start.metric_average(), learning_rates=_learning_rates(trainer), seconds=seconds)

    # what subclasses write --------------------------------------------------------------------
    def on_first_update(self, run: _Run, step: int) -> None:
        """Called before the first update a trainer feeds (``step`` > 1 when it resumed a run)."""

    def on_write_training_update(self, progress: Progress) -> None:
        """Write the averages since the last write."""

    def on_write_test_update(self, progress: Progress) -> None:
        """Write the test averages since the last test write."""

    def on_write_training_summary(self, progress: Progress) -> None:
        """Write the averages of a whole period (``*_since_start``)."""

    def on_write_test_summary(self, progress: Progress) -> None:
        """Write the test averages of a whole test period."""

    # files ------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Make what was written so far durable."""
        self._check_open()

    def close(self) -> None:
        """Flush and release files; later writes raise RuntimeError. Closing twice is harmless."""
        self.closed = True
        _open_writers.discard(self)

    def _flush_quietly(self) -> None:
        if not self.closed:
            try:
                self.flush()
            except Exception:  # noqa: BLE001  (at exit or while another error propagates: never mask it)
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def write_training_progress(writers: Sequence[ProgressWriter], trainer) -> None:
    """Feed the trainer's last step to each writer (what ``Trainer.train_minibatch`` does)."""
    for writer in writers:
        writer.training_update(trainer)


def write_test_progress(writers: Sequence[ProgressWriter], trainer, samples: int, metric: float,
                        loss: float | None = None) -> None:
    """Feed one test minibatch to each writer (what ``Trainer.test_minibatch`` does)."""
    for writer in writers:
        writer.test_update(trainer, samples, metric, loss)


def summarize_training_progress(writers: Sequence[ProgressWriter], trainer) -> None:
    for writer in writers:
        writer.training_summary(trainer)


def summarize_test_progress(writers: Sequence[ProgressWriter], trainer) -> None:
    for writer in writers:
        writer.test_summary(trainer)


def flush_all(writers: Sequence[ProgressWriter]) -> None:
    """Flush every open writer, never raising (used while an error propagates)."""
    for writer in writers:
        writer._flush_quietly()
