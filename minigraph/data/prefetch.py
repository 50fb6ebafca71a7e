"""The background thread that reads the next minibatches while the model trains.

The thread follows the same :class:`~minigraph.data.schedule.Schedule` as the training thread,
from the position it is started at, so its minibatches are exactly the ones the training thread
would read itself. At most ``depth`` finished minibatches wait in a bounded queue. A failure in
the thread is handed over as the exception itself and raised in the training thread; every wait
on either side is a short timed wait that re-checks whether the other side is gone, so neither
can hang.
"""
from __future__ import annotations

import queue
import threading

from ..errors import DataError
from .schedule import Plan, Position, Schedule

POLL_S = 0.05
JOIN_S = 10.0
_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class Prefetcher:
    """Reads minibatches of ``schedule`` from ``source`` in a daemon thread, from ``position`` on."""

    def __init__(self, source, schedule: Schedule, position: Position, depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        # the thread holds the source and the schedule, never the MinibatchSource: that one can be
        # garbage-collected while the thread runs, and its finalizer then stops the thread
        self.thread = threading.Thread(target=self._run, args=(source, schedule, position),
                                       name="minigraph-prefetch", daemon=True)
        self.thread.start()

    def _run(self, source, schedule: Schedule, position: Position) -> None:
        while not self._stop.is_set():
            plan = schedule.plan(position)
            if plan is None:
                self._put(_END)
                return
            try:
                batch = source.read(plan.indices)
            except BaseException as exc:  # handed to the training thread, which raises it
                self._put(_Failure(exc))
                return
            if not self._put((plan, batch)):
                return
            position = plan.next

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> tuple[Plan, dict] | None:
        """The next ``(plan, batch)``, None when the schedule is exhausted; raises what the thread raised."""
        while True:
            try:
                item = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if self.thread.is_alive() or not self._queue.empty():
                    continue
                raise DataError("MinibatchSource: the prefetch thread stopped without a result") from None
            if item is _END:
                return None
            if isinstance(item, _Failure):
                raise item.error
            return item

    def stop(self) -> None:
        """Stop the thread and drop what it read ahead; waits for the minibatch it is reading."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self.thread is not threading.current_thread():
            self.thread.join(JOIN_S)


class PrefetchSlot:
    """The current :class:`Prefetcher` of one MinibatchSource (a new one after each restart);
    the source's finalizer holds this slot, not the source."""

    def __init__(self):
        self.current: Prefetcher | None = None

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None
