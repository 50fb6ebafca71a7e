"""The Trainer (CNTK's name): minibatch steps, epochs with a progress bar, checkpoints.

Loss convention: the loss node gives one value per sample (its static elements are summed when
it has any); a training step minimises the **mean** of that per-sample loss over the minibatch, so
learners receive gradients of the mean (see :mod:`minigraph.learners`). A loss that depends on no
fed input (batch axis of size 1) is used as it is.

Several trainers may share one graph: each updates only the parameters of its own learners (a
GAN has a discriminator trainer and a generator trainer). A NaN or infinite loss or gradient stops
training with :class:`TrainingError` before any parameter or running statistic changes.
"""
from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from . import rng
from .archive import library_version, read_archive, require_array, write_archive
from .callbacks import CallbackList
from .checks import check_seed
from .data import MinibatchSource
from .data.schedule import epoch_order, partition_share
from .distributed import Communicator, DistributedLearner, abort_on_error
from .errors import DataError, GraphError, ModelFileError, TrainingError
from .graph import Constant, Function, Node, Parameter
from .learners import Learner
from .logging.base import (
    ProgressWriter,
    flush_all,
    summarize_test_progress,
    summarize_training_progress,
    write_test_progress,
    write_training_progress,
)
from .serialization import check_stored_inputs
from .state_dict import running_statistics

CHECKPOINT_FORMAT = "minigraph-checkpoint"
CHECKPOINT_VERSION = 1


def _sample_count(key, value, what: str) -> int:
    """The number of samples (length of the leading axis) of one input's data; GraphError when it
    is not an array of at least one sample."""
    shown = getattr(key, "label", repr(key))
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise GraphError(f"{what}: the data for input {shown} is not an array ({exc})") from None
    if arr.ndim == 0:
        raise GraphError(f"{what}: the data for input {shown} must be an array of samples (a leading sample axis), "
                         f"got {type(value).__name__} {value!r}")
    if arr.shape[0] == 0:
        raise GraphError(f"{what}: the data for input {shown} has no samples (shape {arr.shape}); give at least one")
    return arr.shape[0]


def _updated_in_place(roots: Sequence[Node]) -> list[Constant]:
    """The constants that a training run of the graphs of ``roots`` changes (saved before each step
    and restored when it fails)."""
    return running_statistics(*roots)


def _per_sample_mean(value: np.ndarray) -> float:
    rows = value.shape[0]
    return float(value.reshape(rows, -1).sum(axis=1).mean()) if value.size else float("nan")


def checked_gradients(loss: Node, state, wrt: Sequence[Node], step: int) -> tuple[float, dict]:
    """The mean per-sample loss of a training-mode forward ``state`` of ``loss`` and the gradients of
    that mean w.r.t. ``wrt``; TrainingError naming step ``step`` when either is not finite (the
    caller then restores what the forward pass changed)."""
    value = state.values[loss]
    average = _per_sample_mean(value)
    if not np.isfinite(average):
        raise TrainingError(f"step {step}: the loss {loss.label} is {average}; parameters were not updated "
                            f"(lower the learning rate, clip gradients, or check the inputs)")
    grads = loss.backward(state, np.full_like(value, 1.0 / value.shape[0]), wrt=wrt)
    check_finite_gradients(grads, step, average)
    return average, grads


def check_finite_gradients(grads: Mapping[Node, np.ndarray], step: int, average: float) -> None:
    """TrainingError naming the nodes whose gradient holds a NaN or an infinity."""
    bad = [n.label for n, g in grads.items() if not np.all(np.isfinite(g))]
    if bad:
        raise TrainingError(f"step {step}: the gradient of {', '.join(bad)} is not finite (loss {average}); "
                            f"parameters were not updated")


class Trainer:
    """Trains ``criterion`` with ``parameter_learners``.

    model: the network's output (kept for reference and checkpoints; may be None).
    criterion: a loss node, or ``(loss, metric)``; both give one value per sample. The training
        metric comes from the loss's training-mode forward pass (one pass computes both, with the
        same dropout masks and minibatch statistics); :meth:`test_minibatch` measures in eval mode.
    parameter_learners: a learner or a list; each parameter may belong to one learner only, and
        every learner's parameters must lie in the loss's graph.
    progress_writers: :mod:`minigraph.logging` writers (ProgressPrinter, TensorBoardProgressWriter)
        fed by every :meth:`train_minibatch` and :meth:`test_minibatch`; summaries with
        :meth:`summarize_training_progress` / :meth:`summarize_test_progress` (``fit`` calls them
        at each epoch's end). One writer may serve several trainers (tagged by their losses' names).

    Threads: trainers of *different* models may train in different threads at once; each step draws
    its dropout masks from the trainer's own generator (:meth:`step_generator`), so the results are
    those of the same trainers run one after the other. One trainer (or two trainers sharing
    parameters, batch-normalization statistics or a learner) must not be used from two threads at once.
    """

    def __init__(self, model: Node | None, criterion, parameter_learners: Learner | Sequence[Learner],
                 progress_writers: Sequence[ProgressWriter] = ()):
        loss, metric = criterion if isinstance(criterion, (tuple, list)) else (criterion, None)
        for what, node in (("loss", loss), ("metric", metric)):
            if node is not None and not isinstance(node, Node):
                raise TypeError(f"Trainer: the {what} must be a graph node, got {type(node).__name__}")
        if loss is None:
            raise TypeError("Trainer: a loss is required")
        learners = [parameter_learners] if isinstance(parameter_learners, Learner) else list(parameter_learners)
        if not learners or not all(isinstance(lr, Learner) for lr in learners):
            raise TypeError("Trainer: parameter_learners must be a learner or a non-empty list of learners")
        owner: dict[Parameter, Learner] = {}
        for learner in learners:
            for p in learner.parameters:
                if p in owner:
                    raise GraphError(f"Trainer: {p.label} belongs to two learners; give each parameter to one")
                if p not in loss.graph:
                    raise GraphError(f"Trainer: {p.label} is not in the graph of the loss {loss.label}, so its "
                                     f"gradient would always be zero")
                owner[p] = learner
        self.model, self.loss_function, self.evaluation_function = model, loss, metric
        self.parameter_learners = learners
        self.distributed = any(isinstance(lr, DistributedLearner) for lr in learners)
        self._params = list(owner)
        roots = [n for n in (loss, metric, model) if n is not None]
        self._constants = sorted({c for r in roots for c in r.constants}, key=lambda n: n.uid)
        self._running_statistics = _updated_in_place(roots)
        self._all_params = sorted({p for r in roots for p in r.parameters}, key=lambda n: n.uid)
        # default shuffling seed (see fit): from the random ops' generator, so that creating a trainer
        # leaves the initial values of parameters created afterwards as they would be without it
        self.seed = int(rng.ops_rng().integers(2**63))
        self.step_count = 0
        self.total_number_of_samples_seen = 0
        self.epochs_done = 0
        self.previous_minibatch_loss_average: float | None = None
        self.previous_minibatch_evaluation_average: float | None = None
        self.previous_minibatch_sample_count = 0
        self.history: dict[str, list] = {"loss": [], "metric": [], "seconds": [], "minibatch_loss": [],
                                         "val_loss": [], "val_metric": []}
        self.stop_training = False  # a callback sets it to end fit after the current epoch (Keras)
        self.data_source: MinibatchSource | None = None  # the source fit last drove (its position is checkpointed)
        self._pending_source_state: dict | None = None  # a checkpoint's source position, for the next fit
        writers: list[ProgressWriter] = (
            [progress_writers] if isinstance(progress_writers, ProgressWriter) else list(progress_writers))
        for w in writers:
            if not isinstance(w, ProgressWriter):
                raise TypeError(f"Trainer: progress_writers must be minigraph.logging writers, got {type(w).__name__}")
            w.attach(self)
        self.progress_writers = writers

    # feeds ------------------------------------------------------------------------------------
    def _feed_for(self, root: Node, feed: Mapping) -> dict:
        names = {v.name for v in root.arguments}
        return {k: v for k, v in feed.items() if (k in root.graph if isinstance(k, Node) else k in names)}

    def _check_feed(self, feed: Mapping) -> None:
        roots = [r for r in (self.loss_function, self.evaluation_function) if r is not None]
        for key, value in feed.items():
            if not any(key in self._feed_for(r, {key: None}) for r in roots):
                shown = getattr(key, "label", repr(key))
                raise GraphError(f"Trainer: feed key {shown} is an input of neither the loss nor the metric")
            _sample_count(key, value, "Trainer")

    # steps ------------------------------------------------------------------------------------
    def step_generator(self, step: int) -> np.random.Generator:
        """The random generator of training step ``step`` (dropout masks), drawn from ``(seed, step)``:
        each trainer has its own streams, so trainers in different threads do not interfere and give what
        they give run one after the other, and a run restored from a checkpoint (which keeps ``seed``
        and the step count) draws the masks it would have drawn."""
        return np.random.default_rng([self.seed, step])

    def train_minibatch(self, feed: Mapping) -> float:
        """One update of every learner on ``feed`` (arrays with a leading batch axis, keyed by
        input variable or name). Returns the mean per-sample loss before the update.

        With a :func:`~minigraph.distributed.data_parallel_distributed_learner`, ``feed`` is this
        process's share of the minibatch; the loss, metric and sample counts reported are those of
        the whole minibatch over every process, and an exception on one process ends the job."""
        if not self.distributed:
            return self._train_minibatch(feed)
        with abort_on_error():
            return self._train_minibatch(feed)

    def _update(self, grads: Mapping, batch: int, average: float, metric: float | None, learners=None) -> tuple:
        """Apply every learner (or those of ``learners``); returns the minibatch's sample count, mean loss
        and mean metric, over every process when a learner is distributed (summed in its Allreduce)."""
        reduced = None
        for learner in self.parameter_learners if learners is None else learners:
            part = {p: grads[p] for p in learner.parameters}
            if isinstance(learner, DistributedLearner) and reduced is None:
                reduced = learner.update_with_statistics(part, batch, (average * batch, (metric or 0.0) * batch))
            else:
                learner.update(part, batch)
        if reduced is None:
            return batch, average, metric
        total, (loss_sum, metric_sum) = reduced
        return total, loss_sum / total, None if metric is None else metric_sum / total

    def _train_minibatch(self, feed: Mapping) -> float:
        self._check_feed(feed)
        step = self.step_count + 1
        loss = self.loss_function
        saved_constants = [(c, c.value.copy()) for c in self._running_statistics]  # restored if the step fails
        metric_node = self.evaluation_function
        keep = [] if metric_node is None else [metric_node]
        # the feed holds inputs of the loss or metric only; dropout draws from this trainer's own generator
        state = loss.forward(feed, keep=keep, training=True, seed=self.step_generator(step))
        try:
            average, grads = checked_gradients(loss, state, self._params, step)
        except TrainingError:
            for c, v in saved_constants:
                np.copyto(c.value, v)
            flush_all(self.progress_writers)  # what the writers hold survives the failed run
            raise
        metric = None if metric_node is None else _per_sample_mean(state.values[metric_node])
        batch, average, metric = self._update(grads, state.program.batch, average, metric)
        self.step_count = step
        self.total_number_of_samples_seen += batch
        self.previous_minibatch_loss_average = average
        self.previous_minibatch_evaluation_average = metric
        self.previous_minibatch_sample_count = batch
        self.history["minibatch_loss"].append(average)
        write_training_progress(self.progress_writers, self)
        return average

    def test_minibatch(self, feed: Mapping) -> float:
        """The mean per-sample metric (the loss when there is no metric) in evaluation mode."""
        self._check_feed(feed)
        node = self.evaluation_function if self.evaluation_function is not None else self.loss_function
        value = node.eval(self._feed_for(node, feed))
        metric = _per_sample_mean(value)
        write_test_progress(self.progress_writers, self, value.shape[0], metric)
        return metric

    def summarize_training_progress(self) -> None:
        """Have the progress writers write the averages since the previous summary (CNTK)."""
        summarize_training_progress(self.progress_writers, self)

    def summarize_test_progress(self) -> None:
        """Have the progress writers write the test averages since the previous test summary (CNTK)."""
        summarize_test_progress(self.progress_writers, self)

    # epochs -----------------------------------------------------------------------------------
    def fit(self, data: Mapping | MinibatchSource, epochs: int = 1, minibatch_size: int | None = None,
            shuffle: bool | None = None, seed: int | None = None, callbacks: Iterable[Callable] = (),
            progress: bool | None = None, validation_data: Mapping | None = None, validation_freq: int = 1,
            input_map: Mapping | None = None) -> dict:
        """Train for ``epochs`` passes over ``data`` (input -> array of N samples), in minibatches
        of ``minibatch_size`` (default 32; the last may be smaller). Every input needs an array with
        the same number (at least one) of samples on its leading axis, else GraphError names the input.

        shuffle: visit samples in a new random order each epoch (default True), drawn from ``(seed,
            epoch number)`` (``seed`` defaults to the trainer's own, so a run restored from a
            checkpoint reshuffles exactly as the uninterrupted run would).
        data may also be a :class:`minigraph.data.MinibatchSource`: an epoch is one sweep of it
            (from where it stands: a source resumed mid-epoch finishes that epoch), the source's own
            minibatch size, order and seed apply (passing ``minibatch_size``, ``shuffle`` or
            ``seed`` too raises ValueError), and training stops early once its ``max_sweeps`` are
            done. Its streams whose names are inputs of the loss or metric are fed (``input_map``:
            ``{input node or name: stream name}`` to choose). The trainer keeps the source as
            :attr:`data_source`, and :meth:`save_checkpoint` records its position.
        With a distributed learner, every process passes the same ``data`` and trains on its share
        of each minibatch (``np.array_split`` of the minibatch's indices by rank); a last minibatch
        with fewer samples than processes is skipped.
        callbacks: :mod:`minigraph.callbacks` objects (EarlyStopping, ModelCheckpoint, CSVLogger, with
            ``on_train_begin/on_epoch_end/on_train_end``) or plain functions ``callback(trainer, logs)``,
            called after each epoch with ``logs`` = epoch, loss, metric, seconds (and val_loss,
            val_metric with validation data); a callback returning True (or setting
            ``trainer.stop_training``) stops training.
        progress: a tqdm bar with the running loss/metric; None shows it only when stderr is a terminal.
        validation_data: inputs -> arrays like ``data``; every ``validation_freq`` epochs the mean
            per-sample loss and metric over it in evaluation mode become ``val_loss``/``val_metric``
            (None in the other epochs) and the progress writers' test summary.
        The progress writers get a training summary at each epoch's end and are flushed when fit ends.
        Returns :attr:`history`: per-epoch ``loss``, ``metric``, ``val_loss``, ``val_metric``, ``seconds``
        and every ``minibatch_loss``.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
        seed = check_seed(seed, "fit")
        if isinstance(data, MinibatchSource):
            given = [k for k, v in (("minibatch_size", minibatch_size), ("shuffle", shuffle), ("seed", seed))
                     if v is not None]
            if given:
                raise ValueError(f"fit: {', '.join(given)} belong to the MinibatchSource when data is one; "
                                 f"set them when creating the source")
            self._attach_source(data)
            minibatch_size, batches = data.minibatch_size, len(data)
            epoch_feeds = functools.partial(self._source_feeds, data, input_map)
        else:
            if input_map is not None:
                raise ValueError("fit: input_map is for a MinibatchSource; key the arrays of data by input instead")
            minibatch_size = 32 if minibatch_size is None else minibatch_size
            arrays, n = self._fit_arrays(data, minibatch_size)
            batches = -(-n // minibatch_size)
            epoch_feeds = functools.partial(self._array_feeds, arrays, n, minibatch_size,
                                            True if shuffle is None else shuffle, seed)
        show = (sys.stderr.isatty() if progress is None else bool(progress)) and self._is_main()
        validation = self._validation_arrays(validation_data, validation_freq)
        callback_list = CallbackList(callbacks)
        self.stop_training = False
        callback_list.train_begin(self)
        try:
            with tqdm(total=epochs * batches, disable=not show, unit="mb", dynamic_ncols=True) as bar:
                for e in range(epochs):
                    bar.set_description(f"epoch {e + 1}/{epochs}")
                    logs = self._epoch(epoch_feeds(), minibatch_size, bar, validation, validation_freq)
                    if logs is None or callback_list.epoch_end(self, logs):  # every callback sees every epoch
                        break
        finally:
            flush_all(self.progress_writers)
        callback_list.train_end(self)
        return self.history

    def _fit_arrays(self, data, minibatch_size) -> tuple[dict, int]:
        """``fit``'s data as arrays and their sample count, checked."""
        if not isinstance(data, Mapping) or not data:
            raise GraphError(f"fit: data must be a non-empty dict of input (node or name) -> array of samples, "
                             f"or a MinibatchSource; got "
                             f"{'an empty dict' if isinstance(data, Mapping) else type(data).__name__}")
        counts = {k: _sample_count(k, v, "fit") for k, v in data.items()}
        if len(set(counts.values())) != 1:
            listing = ", ".join(f"{getattr(k, 'label', repr(k))}: {n}" for k, n in counts.items())
            raise GraphError(f"fit: every input needs the same number of samples, got {listing}")
        arrays = {k: np.asarray(v) for k, v in data.items()}
        n = len(next(iter(arrays.values())))
        if isinstance(minibatch_size, bool) or not isinstance(minibatch_size, int) or minibatch_size <= 0:
            raise ValueError(f"fit: minibatch_size must be a positive int, got {minibatch_size!r}")
        if self.distributed and min(n, minibatch_size) < Communicator.size():
            raise ValueError(f"fit: {Communicator.size()} processes need at least one sample each per minibatch; "
                             f"got minibatch_size={minibatch_size} and {n} samples")
        return arrays, n

    def _array_feeds(self, arrays: dict, n: int, minibatch_size: int, shuffle: bool, seed: int | None):
        """The feeds of one epoch over ``arrays``: this process's share of each minibatch."""
        order = epoch_order(n, self.seed if seed is None else seed, self.epochs_done, shuffle)
        for b in range(0, n, minibatch_size):
            idx = order[b:b + minibatch_size]
            if self.distributed:  # this process trains on its share; the loss reported is the whole minibatch's
                if len(idx) < Communicator.size():
                    continue  # a last minibatch too small to give every process a sample
                idx = idx[partition_share(len(idx), Communicator.size(), Communicator.rank())]
            yield {k: v[idx] for k, v in arrays.items()}

    def _attach_source(self, source: MinibatchSource) -> None:
        """Drive ``source`` from now on, first moving it to a restored checkpoint's position."""
        if self._pending_source_state is not None:
            try:
                source.load_state_dict(self._pending_source_state)
            except DataError as exc:
                raise DataError(f"fit: the restored checkpoint's data position does not fit this source: {exc}") \
                    from None
            self._pending_source_state = None
        self.data_source = source

    def _source_feeds(self, source: MinibatchSource, input_map: Mapping | None):
        """The feeds of one sweep of ``source`` (from its position), streams mapped to inputs."""
        before = source.state_dict()
        first = True
        while True:
            batch = source.next_minibatch()
            if not batch:
                return
            if first:
                try:
                    streams = self._streams_to_inputs(batch, input_map)
                except GraphError:
                    source.load_state_dict(before)  # nothing was trained on it
                    raise
                first = False
            yield {key: batch[name] for key, name in streams.items()}
            if source.end_of_sweep:
                return

    def _streams_to_inputs(self, batch: Mapping, input_map: Mapping | None) -> dict:
        """``{input node or name: stream name}`` for a source's minibatch; GraphError if nothing fits."""
        if input_map is not None:
            if not isinstance(input_map, Mapping):
                raise TypeError(f"fit: input_map must be a dict of input -> stream name, "
                                f"got {type(input_map).__name__}")
            unknown = {s for s in input_map.values() if s not in batch}
            if unknown:
                raise GraphError(f"fit: input_map names streams {sorted(unknown)} the source does not have "
                                 f"(it has {sorted(batch)})")
            self._check_feed({key: batch[s] for key, s in input_map.items()})
            return dict(input_map)
        names = {v.name for r in (self.loss_function, self.evaluation_function) if r is not None for v in r.arguments}
        streams = {s: s for s in batch if s in names}
        if not streams:
            raise GraphError(f"fit: none of the source's streams {sorted(batch)} is an input of the loss or metric "
                             f"(inputs: {sorted(names)}); pass input_map={{input: stream name}}")
        return streams

    def _validation_arrays(self, data: Mapping | None, freq) -> dict | None:
        """``fit``'s validation data as arrays, checked like a feed."""
        if isinstance(freq, bool) or not isinstance(freq, int) or freq <= 0:
            raise ValueError(f"fit: validation_freq must be a positive int, got {freq!r}")
        if data is None:
            return None
        if not isinstance(data, Mapping) or not data:
            raise GraphError(f"fit: validation_data must be a non-empty dict of input -> array of samples, "
                             f"got {'an empty dict' if isinstance(data, Mapping) else type(data).__name__}")
        counts = {k: _sample_count(k, v, "fit: validation_data") for k, v in data.items()}
        if len(set(counts.values())) != 1:
            listing = ", ".join(f"{getattr(k, 'label', repr(k))}: {n}" for k, n in counts.items())
            raise GraphError(f"fit: every input of validation_data needs the same number of samples, got {listing}")
        self._check_feed(data)
        return {k: np.asarray(v) for k, v in data.items()}

    def _validate(self, arrays: dict, minibatch_size: int) -> tuple[float, float | None]:
        """Mean per-sample loss and metric over ``arrays`` in evaluation mode, by minibatches; each
        minibatch feeds the progress writers' test averages, then they write a test summary."""
        n = len(next(iter(arrays.values())))
        metric_node = self.evaluation_function
        loss_sum = metric_sum = 0.0
        for b in range(0, n, minibatch_size):
            feed = {k: v[b:b + minibatch_size] for k, v in arrays.items()}
            state = self.loss_function.forward(feed, keep=[] if metric_node is None else [metric_node],
                                               for_backward=False)
            rows = state.program.batch
            loss = _per_sample_mean(state.values[self.loss_function])
            metric = None if metric_node is None else _per_sample_mean(state.values[metric_node])
            loss_sum += loss * rows
            metric_sum += (loss if metric is None else metric) * rows
            write_test_progress(self.progress_writers, self, rows, loss if metric is None else metric, loss)
        summarize_test_progress(self.progress_writers, self)
        return loss_sum / n, None if metric_node is None else metric_sum / n

    def _epoch(self, feeds: Iterable[dict], minibatch_size: int, bar, validation: dict | None = None,
               validation_freq: int = 1) -> dict | None:
        """Train on every feed of one epoch; its logs, or None when there was nothing to train on
        (a source whose sweeps are done)."""
        start, loss_sum, metric_sum, trained = time.perf_counter(), 0.0, 0.0, 0
        for feed in feeds:
            loss = self.train_minibatch(feed)
            metric = self.previous_minibatch_evaluation_average
            rows = self.previous_minibatch_sample_count  # the whole minibatch's, over every process
            loss_sum += loss * rows
            metric_sum += (metric or 0.0) * rows
            trained += rows
            bar.set_postfix(loss=f"{loss:.4g}", **({} if metric is None else {"metric": f"{metric:.4g}"}))
            bar.update()
        if not trained:
            return None
        self.epochs_done += 1
        logs = {"epoch": self.epochs_done, "loss": loss_sum / trained,
                "metric": None if self.evaluation_function is None else metric_sum / trained,
                "seconds": time.perf_counter() - start}
        summarize_training_progress(self.progress_writers, self)
        val_loss, val_metric = (self._validate(validation, minibatch_size)
                                if validation is not None and self.epochs_done % validation_freq == 0 else (None, None))
        if validation is not None:
            logs.update(val_loss=val_loss, val_metric=val_metric)
        for key in ("loss", "metric", "seconds"):
            self.history[key].append(logs[key])
        self.history["val_loss"].append(val_loss)
        self.history["val_metric"].append(val_metric)
        return logs

    def _is_main(self) -> bool:
        """True where this trainer prints and writes: always, or on rank 0 of a distributed run."""
        return not self.distributed or Communicator.is_main()

    # checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self, path) -> None:
        """Write parameters, constants (running statistics), learner states, counters, history and
        the global random state to ``path`` (atomically), so that :meth:`restore_from_checkpoint`
        continues bit-for-bit. In a distributed run only rank 0 writes, and every process returns
        once the file is complete (restore it on every process; any number of processes)."""
        if not self.distributed:
            self._write_checkpoint(path)
            return
        with abort_on_error():
            if self._is_main():
                self._write_checkpoint(path)
            Communicator.barrier()

    def _write_checkpoint(self, path) -> None:
        arrays = {f"param{i}": p.value for i, p in enumerate(self._all_params)}
        arrays.update({f"const{i}": c.value for i, c in enumerate(self._constants)})
        learner_states = []
        for j, learner in enumerate(self.parameter_learners):
            state = learner.state_dict()
            for i, slots in enumerate(state.pop("slots")):
                arrays.update({f"learner{j}_p{i}_{k}": v for k, v in slots.items()})
            state["slot_names"] = [sorted(s) for s in learner.slots]
            learner_states.append(state)
        manifest = {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "minigraph_version": library_version(),
            "parameters": [[p.name, list(p.value.shape), p.value.dtype.name] for p in self._all_params],
            "constants": [[c.name, list(c.value.shape)] for c in self._constants],
            "learners": learner_states, "rng": rng.get_state(), "history": self.history,
            "counters": {"step_count": self.step_count, "samples": self.total_number_of_samples_seen,
                         "epochs_done": self.epochs_done, "seed": self.seed},
            "data_source": None if self.data_source is None else self.data_source.state_dict(),
        }
        write_archive(path, manifest, arrays)

    def restore_from_checkpoint(self, path) -> None:
        """Load what :meth:`save_checkpoint` wrote into this trainer's graph (built the same way).
        The whole file is read and checked first: a checkpoint that does not fit raises
        ModelFileError and changes nothing."""
        manifest, arrays = read_archive(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION)
        try:
            checked = self._checked_checkpoint(manifest, arrays, path)
            source_state = self._checked_source_state(manifest.get("data_source"))
        except ModelFileError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ModelFileError(f"{path}: checkpoint does not fit this trainer "
                                 f"({type(exc).__name__}: {exc})") from None
        values, consts, learner_states, counters, history = checked
        for learner, state in zip(self.parameter_learners, learner_states):
            learner.load_state_dict(state)  # checked: cannot fail
        for p, v in zip(self._all_params, values):
            np.copyto(p.value, v)
        for c, v in zip(self._constants, consts):
            np.copyto(c.value, v)
        self.step_count, self.total_number_of_samples_seen, self.epochs_done, self.seed = counters
        self.history = history
        rng.set_state(manifest["rng"])
        if self.data_source is not None and source_state is not None:
            self.data_source.load_state_dict(source_state)  # checked: cannot fail
        else:
            self._pending_source_state = source_state  # for the source the next fit drives

    def _checked_source_state(self, state) -> dict | None:
        """A checkpoint's MinibatchSource position (None when no source was driven), checked
        against :attr:`data_source` when there is one (else when ``fit`` gets a source)."""
        if state is not None:
            if self.data_source is not None:
                self.data_source.check_state(state)
            elif not isinstance(state, dict):
                raise ModelFileError(f"data_source must be a MinibatchSource state, got {type(state).__name__}")
        return state

    def _checked_checkpoint(self, manifest: dict, arrays: dict, path) -> tuple:
        """Everything :meth:`restore_from_checkpoint` sets, read from the file and validated."""
        saved = manifest["parameters"]
        mine = [[p.name, list(p.value.shape), p.value.dtype.name] for p in self._all_params]
        if saved != mine:
            raise ModelFileError(f"{path}: checkpoint parameters {saved} do not match this trainer's {mine}")
        if len(manifest["learners"]) != len(self.parameter_learners):
            raise ModelFileError(f"{path}: checkpoint has {len(manifest['learners'])} learners; this trainer has "
                                 f"{len(self.parameter_learners)}")
        if len(manifest["constants"]) != len(self._constants):
            raise ModelFileError(f"{path}: checkpoint has {len(manifest['constants'])} constants; this trainer's "
                                 f"graph has {len(self._constants)}")
        values = [require_array(arrays, f"param{i}", path, p.value.shape, p.value.dtype)
                  for i, p in enumerate(self._all_params)]
        consts = [require_array(arrays, f"const{i}", path, c.value.shape, c.value.dtype)
                  for i, c in enumerate(self._constants)]
        bad = [f"param{i}" for i, v in enumerate(values) if not np.isfinite(v).all()]
        bad += [f"const{i}" for i, v in enumerate(consts) if not np.isfinite(v).all()]
        if bad:  # training never leaves them so (a NaN step is refused): the file was damaged or edited
            raise ModelFileError(f"{path}: checkpoint arrays {bad[:5]} hold NaN or infinite values")
        stored = {**dict(zip(self._all_params, values)), **dict(zip(self._constants, consts))}
        roots = [n for n in (self.loss_function, self.evaluation_function, self.model) if n is not None]
        for fn in {n: None for r in roots for n in r.topological_order() if isinstance(n, Function)}:
            check_stored_inputs(fn, stored, path)  # e.g. a negative running variance: refused before any change
        used = {f"param{i}" for i in range(len(values))} | {f"const{i}" for i in range(len(consts))}
        learner_states = []
        for j, (learner, state) in enumerate(zip(self.parameter_learners, manifest["learners"])):
            names = state["slot_names"]
            if not (isinstance(names, list) and all(isinstance(n, list) and all(isinstance(k, str) for k in n)
                                                    for n in names)):
                raise ModelFileError(f"{path}: learner {j}: slot_names must list the slot names of each parameter")
            slots = [{k: require_array(arrays, f"learner{j}_p{i}_{k}", path) for k in ks} for i, ks in enumerate(names)]
            used |= {f"learner{j}_p{i}_{k}" for i, ks in enumerate(names) for k in ks}
            learner_states.append(learner.checked_state({**state, "slots": slots}))
        unused = sorted(set(arrays) - used)
        if unused:
            raise ModelFileError(f"{path}: checkpoint arrays {unused[:5]} belong to nothing in this trainer")
        counters = manifest["counters"]
        counters = tuple(counters[k] for k in ("step_count", "samples", "epochs_done", "seed"))
        if not all(type(c) is int and c >= 0 for c in counters):
            raise ModelFileError(f"{path}: checkpoint counters {counters} are not ints >= 0")
        history = manifest["history"]
        if not isinstance(history, dict) or sorted(history) != sorted(self.history) or \
                not all(isinstance(v, list) and all(x is None or type(x) in (int, float) for x in v)
                        for v in history.values()):
            raise ModelFileError(f"{path}: checkpoint history must hold the lists of numbers {sorted(self.history)}")
        _check_rng_state(manifest["rng"])
        return values, consts, learner_states, counters, {k: list(v) for k, v in history.items()}


def _check_rng_state(state) -> None:
    """Raise unless ``state`` is what :func:`minigraph.rng.get_state` returns (for every generator)."""
    if not isinstance(state, dict) or sorted(state) != sorted(rng.get_state()):
        raise ValueError(f"the random state must hold the generators {sorted(rng.get_state())}")
    for s in state.values():
        np.random.default_rng().bit_generator.state = s  # raises on a malformed state


__all__ = ["Trainer"]
