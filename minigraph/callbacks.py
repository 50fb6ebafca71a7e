"""Callbacks for ``Trainer.fit`` (Keras's names): EarlyStopping, ModelCheckpoint, CSVLogger.

A callback is a :class:`Callback` (``on_train_begin(trainer)``, ``on_epoch_end(trainer, logs)``,
``on_train_end(trainer)``) or a plain function ``f(trainer, logs)`` called after each epoch.
``logs`` holds ``epoch`` (1-based, counted over the trainer's life), ``loss``, ``metric``,
``seconds`` and, when ``fit`` has ``validation_data``, ``val_loss`` and ``val_metric`` (None in
epochs that were not validated). A callback stops training by returning True or by setting
``trainer.stop_training = True``.

Resuming: a trainer restored from a checkpoint carries its history, so at ``on_train_begin`` the
callbacks pick up where the interrupted run was: EarlyStopping and best-only ModelCheckpoint
replay the monitored values of the restored epochs, CSVLogger keeps (or rewrites) the rows of
those epochs and drops rows the interrupted run wrote after its checkpoint.
"""
from __future__ import annotations

import csv
import io
import math
import os
import string
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import numpy as np

__all__ = ["Callback", "CallbackList", "EarlyStopping", "ModelCheckpoint", "CSVLogger"]

# the per-epoch lists of Trainer.history, in the order CSVLogger writes them
EPOCH_KEYS = ("loss", "metric", "val_loss", "val_metric", "seconds")


class Callback:
    """Base class: override the hooks you need."""

    def on_train_begin(self, trainer) -> None:
        """Called when ``fit`` starts (``trainer.epochs_done`` epochs are already behind)."""

    def on_epoch_end(self, trainer, logs: Mapping):
        """Called after each epoch; return True to stop training."""

    def on_train_end(self, trainer) -> None:
        """Called when ``fit`` ends (after the last epoch or a stop)."""


class CallbackList:
    """The callbacks of one ``fit`` call: objects with hooks, or plain ``f(trainer, logs)`` functions."""

    def __init__(self, callbacks: Iterable[Callback | Callable]):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not (isinstance(cb, Callback) or hasattr(cb, "on_epoch_end") or callable(cb)):
                raise TypeError(f"fit: a callback must be a minigraph.callbacks.Callback or a function "
                                f"f(trainer, logs), got {type(cb).__name__}")

    def _hook(self, cb, name: str):
        return getattr(cb, name, None) if not _is_plain_function(cb) else None

    def train_begin(self, trainer) -> None:
        for cb in self.callbacks:
            hook = self._hook(cb, "on_train_begin")
            if hook is not None:
                hook(trainer)

    def epoch_end(self, trainer, logs: Mapping) -> bool:
        """Every callback sees the epoch; True when one asks to stop."""
        stops = []
        for cb in self.callbacks:
            call = self._hook(cb, "on_epoch_end") or cast(Callable[..., Any], cb)
            stops.append(call(trainer, logs) is True)
        return any(stops) or bool(getattr(trainer, "stop_training", False))

    def train_end(self, trainer) -> None:
        for cb in self.callbacks:
            hook = self._hook(cb, "on_train_end")
            if hook is not None:
                hook(trainer)


def _is_plain_function(cb) -> bool:
    return not isinstance(cb, Callback) and not hasattr(cb, "on_epoch_end")


def _monitored(logs: Mapping, monitor: str, owner: str):
    """The monitored value in ``logs`` (None in an epoch without it, e.g. not validated);
    an error naming the logged keys when ``monitor`` is never logged."""
    if monitor not in logs:
        raise KeyError(f"{owner}: monitor {monitor!r} is not logged; the logged values are "
                       f"{', '.join(sorted(logs))} (val_loss and val_metric need fit(validation_data=...))")
    value = logs[monitor]
    return None if value is None else float(value)


class _Monitor:
    """Tracks the best value of a monitored quantity: ``mode`` min, max or auto (max for names
    containing 'acc', as Keras does), improvements by more than ``min_delta``."""

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float):
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"{owner}: monitor must be the name of a logged value, got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or not math.isfinite(min_delta):
            raise ValueError(f"{owner}: min_delta must be a finite number, got {min_delta!r}")
        self.owner, self.monitor = owner, monitor
        self.mode = mode if mode != "auto" else ("max" if "acc" in monitor else "min")
        self.min_delta = abs(float(min_delta))
        self.reset()

    def reset(self) -> None:
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0

    def improves(self, value: float) -> bool:
        if self.best is None:
            return not math.isnan(value)
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def observe(self, value: float, epoch: int) -> bool:
        """Account for one epoch's value; True when it is a new best."""
        if self.improves(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True
        self.wait += 1
        return False

    def replay(self, trainer, every: int = 1) -> None:
        """Start from the values the trainer's history holds (a resumed or continued run), of the
        epochs that are multiples of ``every``."""
        self.reset()
        values = trainer.history.get(self.monitor) if self.monitor in EPOCH_KEYS else None
        for epoch, value in enumerate(values or (), start=1):
            if value is not None and epoch % every == 0:
                self.observe(float(value), epoch)


def _weights(trainer) -> list[np.ndarray]:
    """Copies of every value a training run changes: parameters and running statistics."""
    return [n.value.copy() for n in (*trainer._all_params, *trainer._running_statistics)]


def _set_weights(trainer, values: list[np.ndarray]) -> None:
    for n, v in zip((*trainer._all_params, *trainer._running_statistics), values):
        np.copyto(n.value, v)


class EarlyStopping(Callback):
    """Stop ``fit`` when ``monitor`` has not improved (by more than ``min_delta``) for
    ``patience`` epochs after its best (Keras's EarlyStopping).

    mode: 'min', 'max', or 'auto' (max when the name contains 'acc', else min).
    restore_best_weights: when training ends, put back the parameters and running statistics of
        the best epoch (bit for bit).
    After a stop, :attr:`stopped_epoch` is the epoch it stopped at and :attr:`best_epoch` the best.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0, mode: str = "auto",
                 restore_best_weights: bool = False):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}")
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.monitor, self.patience, self.restore_best_weights = monitor, patience, bool(restore_best_weights)
        self.stopped_epoch = 0
        self.best_weights: list[np.ndarray] | None = None

    @property
    def best(self) -> float | None:
        return self._monitor.best

    @property
    def best_epoch(self) -> int:
        return self._monitor.best_epoch

    @property
    def wait(self) -> int:
        """Epochs since the best one."""
        return self._monitor.wait

    def on_train_begin(self, trainer) -> None:
        self._monitor.replay(trainer)
        self.stopped_epoch = 0
        self.best_weights = None
        if self.restore_best_weights and self.best_epoch:
            if self.best_epoch == trainer.epochs_done:
                self.best_weights = _weights(trainer)
            else:
                warnings.warn(f"EarlyStopping: the best {self.monitor} so far is from epoch {self.best_epoch}, "
                              f"before the epoch this run starts from ({trainer.epochs_done}); its weights are not "
                              f"in the trainer, so only a better epoch's weights can be restored (keep the best "
                              f"ones with ModelCheckpoint(save_best_only=True))", RuntimeWarning, stacklevel=3)

    def on_epoch_end(self, trainer, logs: Mapping):
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if value is None:
            return None
        epoch = int(logs["epoch"])
        if self._monitor.observe(value, epoch):
            if self.restore_best_weights:
                self.best_weights = _weights(trainer)
            return None
        if self.wait >= self.patience:  # `patience` epochs without improvement (the first one when 0)
            self.stopped_epoch = epoch
            trainer.stop_training = True
            return True
        return None

    def on_train_end(self, trainer) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            _set_weights(trainer, self.best_weights)


def _path_fields(path: str) -> list[str]:
    try:
        return [f for _, f, _, _ in string.Formatter().parse(path) if f is not None]
    except ValueError as exc:
        raise ValueError(f"ModelCheckpoint: path {path!r} is not a valid format string ({exc})") from None


class ModelCheckpoint(Callback):
    """Save a checkpoint (``trainer.save_checkpoint``: atomic, resumable) every ``every_n_epochs`` epochs.

    path: may name logged values, ``"ckpt-{epoch:03d}-{val_loss:.4f}.mgc"``; missing folders are created.
    save_best_only: save only when ``monitor`` improves on the best so far (``mode``, ``min_delta`` as in
        EarlyStopping); with a fixed path the file always holds the best epoch.
    :attr:`saved` lists the paths written, in order.
    """

    def __init__(self, path, monitor: str = "val_loss", save_best_only: bool = False, every_n_epochs: int = 1,
                 mode: str = "auto", min_delta: float = 0):
        self.path = os.fspath(path)
        self.fields = _path_fields(self.path)
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or every_n_epochs <= 0:
            raise ValueError(f"ModelCheckpoint: every_n_epochs must be a positive int, got {every_n_epochs!r}")
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode, min_delta)
        self.monitor, self.save_best_only, self.every_n_epochs = monitor, bool(save_best_only), every_n_epochs
        self.saved: list[str] = []

    @property
    def best(self) -> float | None:
        return self._monitor.best

    def on_train_begin(self, trainer) -> None:
        self._monitor.replay(trainer, self.every_n_epochs)

    def _path_for(self, logs: Mapping) -> str:
        missing = [f for f in self.fields if f.split(".")[0].split("[")[0].split(":")[0] not in logs]
        if missing:
            raise KeyError(f"ModelCheckpoint: path {self.path!r} names {', '.join(missing)}, which is not logged; "
                           f"the logged values are {', '.join(sorted(logs))}")
        try:
            return self.path.format(**logs)
        except (TypeError, ValueError) as exc:  # e.g. {val_loss:.4f} in an epoch that was not validated (None)
            raise ValueError(f"ModelCheckpoint: path {self.path!r} cannot be filled from {dict(logs)} ({exc})") \
                from None

    def on_epoch_end(self, trainer, logs: Mapping):
        epoch = int(logs["epoch"])
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")  # checked every epoch: a typo fails early
            if epoch % self.every_n_epochs or value is None or not self._monitor.observe(value, epoch):
                return None
        elif epoch % self.every_n_epochs:
            return None
        path = self._path_for(logs)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        trainer.save_checkpoint(path)
        self.saved.append(path)
        return None


def _cell(value) -> str:
    return "" if value is None else repr(float(value)) if isinstance(value, (float, np.floating)) else str(value)


class CSVLogger(Callback):
    """One CSV row per epoch: ``epoch,loss,metric,val_loss,val_metric,seconds`` (empty cells for
    None); floats are written exactly (``repr``), so the file reads back to ``trainer.history``.

    append=False: the file is rewritten when ``fit`` starts, with the rows of the epochs the trainer
        already has in its history (a restored trainer's CSV continues without gaps).
    append=True: an existing file keeps its rows of epochs up to the trainer's (rows of later epochs,
        written by an interrupted run after its checkpoint, are dropped: they are trained again).
    Each row is flushed as it is written.
    """

    def __init__(self, path, append: bool = False, separator: str = ","):
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be one character, got {separator!r}")
        self.path, self.append, self.separator = os.fspath(path), bool(append), separator
        self.columns = ("epoch", *EPOCH_KEYS)

    def _history_rows(self, trainer) -> list[list[str]]:
        h = trainer.history
        return [[str(e + 1), *(_cell(h[k][e]) for k in EPOCH_KEYS)] for e in range(trainer.epochs_done)
                if all(len(h[k]) > e for k in EPOCH_KEYS)]

    def _kept_rows(self, trainer) -> list[list[str]]:
        with open(self.path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter=self.separator))
        if not rows:
            return []
        if tuple(rows[0]) != self.columns:
            raise ValueError(f"CSVLogger: {self.path} has the columns {rows[0]}, not {list(self.columns)}; "
                             f"append to a file this logger wrote, or use append=False")
        return [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= trainer.epochs_done]

    def on_train_begin(self, trainer) -> None:
        from .files import write_atomically
        rows = self._kept_rows(trainer) if self.append and os.path.exists(self.path) else self._history_rows(trainer)
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self.separator, lineterminator="\n")
        writer.writerows([list(self.columns), *rows])
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        write_atomically(self.path, buffer.getvalue().encode("utf-8"))

    def on_epoch_end(self, trainer, logs: Mapping):
        row = [str(int(logs["epoch"])), *(_cell(logs.get(k)) for k in EPOCH_KEYS)]
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            csv.writer(fh, delimiter=self.separator, lineterminator="\n").writerow(row)
        return None


def read_csv_log(path, separator: str = ",") -> dict[str, list]:
    """A :class:`CSVLogger` file as ``{column: values}`` (epochs as ints, empty cells as None, the
    rest as floats): compare it with ``trainer.history``."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter=separator))
    columns = rows[0]
    table: dict[str, list] = {c: [] for c in columns}
    for row in rows[1:]:
        for c, cell in zip(columns, row):
            table[c].append(int(cell) if c == "epoch" else None if cell == "" else float(cell))
    return table
