"""ProgressPrinter: CNTK's text log of training (to stdout or appended to a file).

With the geometric schedule (``freq=None``) it prints a table, CNTK's layout::

     average      since    average      since      examples
        loss       last     metric       last
     ------------------------------------------------------
    Learning rate per minibatch: 0.1
         2.31       2.31       0.91       0.91            32
         2.25       2.19       0.88       0.85            64

With ``freq=N`` one line per N minibatches: `` Minibatch[   1-  10]: loss = 2.310000 * 320, metric = 0.910000 * 320;``.
A summary closes each epoch of ``fit`` (or each ``trainer.summarize_training_progress()``):
``Finished Epoch[1 of 5]: loss = 2.100000 * 1000, metric = 0.800000 * 1000 0.412s (2427.2 samples/s);``
"""
from __future__ import annotations

import os
import sys

from .base import Progress, ProgressWriter

__all__ = ["ProgressPrinter"]

_HEADER = (" average      since    average      since      examples",
           "    loss       last     metric       last              ",
           " ------------------------------------------------------")


class ProgressPrinter(ProgressWriter):
    """Prints running averages of loss and metric, samples seen, the learning rate, and epoch summaries.

    freq: a line every ``freq`` minibatches (the averages since the previous line); None: at
        minibatches 1, 2, 4, 8, ... of each epoch (CNTK's geometric schedule, as a table).
    first: also a line for each of the first ``first`` minibatches of an epoch.
    tag: prepended to every line as ``[tag] ``.
    log_to_file: append the lines to this file (flushed line by line) instead of printing them.
    rank: only the process of this rank writes (default: every process that is not a distributed worker).
    num_epochs: shown in summaries as ``Finished Epoch[3 of num_epochs]``.
    test_freq: a line every ``test_freq`` test minibatches (None: only the evaluation summary).
    metric_is_pct: show the metric as a percentage (CNTK's default, for error rates); minigraph's
        metrics are per-sample values, so the default is False.
    """

    def __init__(self, freq: int | None = None, first: int = 0, tag: str = "", log_to_file=None,
                 rank: int | None = None, num_epochs: int | None = None, test_freq: int | None = None,
                 metric_is_pct: bool = False):
        super().__init__(freq, first, test_freq, rank)
        if not isinstance(tag, str):
            raise TypeError(f"ProgressPrinter: tag must be a str, got {type(tag).__name__}")
        if num_epochs is not None and (isinstance(num_epochs, bool) or not isinstance(num_epochs, int)
                                       or num_epochs <= 0):
            raise ValueError(f"ProgressPrinter: num_epochs must be a positive int or None, got {num_epochs!r}")
        self.tag, self.num_epochs, self.metric_is_pct = tag, num_epochs, bool(metric_is_pct)
        self.log_to_file = None if log_to_file is None else os.fspath(log_to_file)
        self._file = None
        if self.writes_here and self.log_to_file is not None:
            try:  # line-buffered: every line reaches the file as it is written
                self._file = open(self.log_to_file, "a", buffering=1, encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"ProgressPrinter: log_to_file {self.log_to_file!r} cannot be opened for "
                                 f"appending ({exc.strerror})") from None
        self._rates: dict[str, list[float]] = {}
        if self.freq is None:
            for line in _HEADER:
                self.log(line)

    def log(self, message: str) -> None:
        """Write one line of your own to the log (stdout or the file)."""
        self._check_open()
        if not self.writes_here:
            return
        line = f"[{self.tag}] {message}" if self.tag else message
        if self._file is not None:
            self._file.write(line + "\n")
        else:
            print(line, flush=True)

    def end_progress_print(self, message: str = "") -> None:
        """Log ``message`` (if any) at the end of training."""
        if message:
            self.log(message)

    # formats ----------------------------------------------------------------------------------
    def _metric(self, value: float) -> str:
        return f"{value * 100:0.2f}%" if self.metric_is_pct else f"{value:0.6f}"

    def _who(self, progress: Progress) -> str:
        return f"{progress.tag}: " if progress.tag else ""

    def _announce_rate(self, progress: Progress) -> None:
        """CNTK prints the learning rate when it changes."""
        if self._rates.get(progress.tag) != progress.learning_rates:
            self._rates[progress.tag] = progress.learning_rates
            rates = ", ".join(f"{r:g}" for r in progress.learning_rates)
            self.log(f"{self._who(progress)}Learning rate per minibatch: {rates}")

    def _averages(self, progress: Progress, name: str) -> str:
        parts = []
        if progress.loss_since_last is not None:
            parts.append(f"loss = {progress.loss_since_last:0.6f} * {progress.samples_since_last}")
        if progress.metric_since_last is not None:
            parts.append(f"metric = {self._metric(progress.metric_since_last)} * {progress.samples_since_last}")
        return f"{name}Minibatch[{progress.first_update:4d}-{progress.last_update:4d}]: {', '.join(parts)};"

    def on_write_training_update(self, progress: Progress) -> None:
        self._announce_rate(progress)
        if self.freq is not None:
            self.log(f" {self._who(progress)}{self._averages(progress, '')}")
            return
        cells = []
        for start, last in ((progress.loss_since_start, progress.loss_since_last),
                            (progress.metric_since_start, progress.metric_since_last)):
            cells.append(f"{start:8.3g}   {last:8.3g}   " if start is not None else f"{'':8s}   {'':8s}   ")
        self.log(f" {self._who(progress)}{''.join(cells)} {progress.samples_since_start:10d}")

    def on_write_test_update(self, progress: Progress) -> None:
        self.log(f" {self._who(progress)}{self._averages(progress, 'Evaluation ')}")

    def on_write_training_summary(self, progress: Progress) -> None:
        epoch = f"{progress.summary_index}" + (f" of {self.num_epochs}" if self.num_epochs else "")
        parts = [f"loss = {progress.loss_since_start:0.6f} * {progress.samples_since_start}"]
        if progress.metric_since_start is not None:
            parts.append(f"metric = {self._metric(progress.metric_since_start)} * {progress.samples_since_start}")
        self.log(f"{self._who(progress)}Finished Epoch[{epoch}]: {', '.join(parts)} {progress.seconds:0.3f}s "
                 f"({progress.samples_per_second:5.1f} samples/s);")

    def on_write_test_summary(self, progress: Progress) -> None:
        parts = []
        if progress.metric_since_start is not None:
            parts.append(f"metric = {self._metric(progress.metric_since_start)} * {progress.samples_since_start}")
        if progress.loss_since_start is not None:
            parts.insert(0, f"loss = {progress.loss_since_start:0.6f} * {progress.samples_since_start}")
        self.log(f"{self._who(progress)}Finished Evaluation [{progress.summary_index}]: "
                 f"Minibatch[1-{progress.last_update}]: {', '.join(parts)};")

    def flush(self) -> None:
        super().flush()
        if self._file is not None:
            self._file.flush()
        else:
            sys.stdout.flush()

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        super().close()
