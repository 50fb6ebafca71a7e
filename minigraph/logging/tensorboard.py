"""TensorBoardProgressWriter: training curves, image grids, histograms and the model's graph as
TensorBoard event files (written with tensorboardX: ``pip install 'minigraph[tensorboard]'``).

Tags (a trainer whose loss has a name gets it as a prefix, ``NAME/minibatch/avg_loss``):

- ``minibatch/avg_loss``, ``minibatch/avg_metric``: the per-sample averages since the last write;
- ``minibatch/learning_rate`` (``minibatch/learning_rate/K`` with several learners), ``minibatch/samples_per_second``;
- ``summary/avg_loss``, ``summary/avg_metric``: each epoch's (summary period's) averages;
- ``summary/test_avg_metric`` (and ``summary/test_avg_loss`` for ``fit``'s validation): evaluation summaries.

Every scalar's step is the trainer's step count (so epoch summaries line up with the minibatch
curves). A run resumed from a checkpoint marks the step it restarts at: TensorBoard then drops what
the interrupted run wrote from that step on, so no step appears twice.
"""
from __future__ import annotations

import math
import os
import re
import socket
import struct
import time

import numpy as np

from ..utils import make_grid, to_uint8
from .base import Progress, ProgressWriter

__all__ = ["TensorBoardProgressWriter", "graph_def"]


def _tensorboardx():
    try:
        import tensorboardX
    except ImportError as exc:
        raise ImportError("TensorBoardProgressWriter needs tensorboardX: pip install 'minigraph[tensorboard]' "
                          "(and tensorboard itself to view the runs: pip install tensorboard)") from exc
    return tensorboardX


class _EventFile:
    """One TensorBoard event file (TFRecord framing), written synchronously: every event reaches the
    operating system when it is written (tensorboardX's SummaryWriter queues events in a thread,
    so its flush can miss the newest ones); :meth:`flush` also syncs the file to disk."""

    def __init__(self, log_dir: str):
        from tensorboardX.proto import event_pb2
        from tensorboardX.record_writer import masked_crc32c
        self._event_pb2, self._crc = event_pb2, masked_crc32c
        now = time.time_ns()  # seconds, then nanoseconds: a later run sorts after (TensorBoard reads in name order)
        name = f"events.out.tfevents.{now // 10**9:010d}.{now % 10**9:09d}.{socket.gethostname()}.{os.getpid()}"
        self._file = open(os.path.join(log_dir, name), "ab")
        self.write(file_version="brain.Event:2")

    def write(self, step: int = 0, **fields) -> None:
        data = self._event_pb2.Event(wall_time=time.time(), step=step, **fields).SerializeToString()
        header = struct.pack("<Q", len(data))
        self._file.write(header + struct.pack("<I", self._crc(header)) + data + struct.pack("<I", self._crc(data)))
        self._file.flush()

    def flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self.flush()
        self._file.close()


class TensorBoardProgressWriter(ProgressWriter):
    """Writes event files that ``tensorboard --logdir LOG_DIR`` shows.

    freq: write the averages every ``freq`` minibatches; None: at minibatches 1, 2, 4, 8, ... of
        each epoch (CNTK's geometric schedule). Epoch summaries are always written.
    log_dir: the folder of the event files (created if missing).
    rank: only the process of this rank writes (default: every process that is not a distributed worker).
    model: a graph node; its graph is written once for TensorBoard's Graphs tab, layers as name
        scopes (``generator/up1/...``), shapes and op attributes as node attributes.

    Write your own values with :meth:`write_value`, :meth:`write_image`, :meth:`write_histogram`.
    Use it as a context manager (or call :meth:`close`); what was written is also flushed when the
    interpreter exits and when a training step fails.
    """

    def __init__(self, freq: int | None = None, log_dir=".", rank: int | None = None, model=None):
        super().__init__(freq, 0, None, rank)
        _tensorboardx()
        self.log_dir = os.fspath(log_dir)
        self._writer = None
        self._purged = False
        if model is not None and not hasattr(model, "topological_order"):
            raise TypeError(f"TensorBoardProgressWriter: model must be a graph node, got {type(model).__name__}")
        if not self.writes_here:
            return
        try:
            os.makedirs(self.log_dir, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"TensorBoardProgressWriter: log_dir {self.log_dir!r} cannot be created "
                             f"({exc.strerror or exc})") from None
        self._writer = _EventFile(self.log_dir)
        if model is not None:
            self._writer.write(graph_def=graph_def(model).SerializeToString())

    # by hand ----------------------------------------------------------------------------------
    def write_value(self, name: str, value: float, step: int) -> None:
        """Record the scalar ``value`` under ``name`` at ``step``."""
        self._check_open()
        name, step = _name(name, "write_value"), _step(step, "write_value")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"write_value({name!r}): value must be a real number, got {value!r}") from None
        if self._writer is not None:
            from tensorboardX.proto.summary_pb2 import Summary
            self._writer.write(step, summary=Summary(value=[Summary.Value(tag=name, simple_value=value)]))

    def write_image(self, name: str, images, step: int, **grid_options) -> None:
        """Record images ``(N, C, H, W)`` (C = 1 or 3, values in [0, 1] unless ``normalize=True``) as
        one grid, :func:`minigraph.utils.make_grid` with ``grid_options`` (nrow, padding, normalize, ...)."""
        self._check_open()
        name, step = _name(name, "write_image"), _step(step, "write_image")
        try:
            pixels = to_uint8(make_grid(images, **grid_options))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"write_image({name!r}): {exc}") from None
        if self._writer is not None:
            from tensorboardX.summary import image
            self._writer.write(step, summary=image(name, pixels, dataformats="HWC"))

    def write_histogram(self, name: str, values, step: int) -> None:
        """Record the distribution of ``values`` (any shape; e.g. a parameter's ``value``)."""
        self._check_open()
        name, step = _name(name, "write_histogram"), _step(step, "write_histogram")
        arr = np.asarray(values)
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or arr.size == 0:
            raise ValueError(f"write_histogram({name!r}): values must be a non-empty numeric array, "
                             f"got dtype {arr.dtype}, shape {arr.shape}")
        arr = arr.astype(np.float64).ravel()
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"write_histogram({name!r}): values hold NaN or infinite numbers")
        if self._writer is not None:
            from tensorboardX.summary import histogram
            self._writer.write(step, summary=histogram(name, arr, bins="auto"))

    def flush(self) -> None:
        super().flush()
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if not self.closed and self._writer is not None:
            self._writer.close()
        super().close()

    # fed by trainers --------------------------------------------------------------------------
    def _tagged(self, progress: Progress, name: str) -> str:
        return f"{progress.tag}/{name}" if progress.tag else name

    def on_first_update(self, run, step: int) -> None:
        if step > 1 and not self._purged and self._writer is not None:
            # TensorBoard's reader drops events at steps >= this one from earlier files (tensorboardX's purge_step)
            from tensorboardX.proto import event_pb2
            self._writer.write(step, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START))
        self._purged = True

    def on_write_training_update(self, progress: Progress) -> None:
        step = progress.step
        if progress.loss_since_last is not None:
            self.write_value(self._tagged(progress, "minibatch/avg_loss"), progress.loss_since_last, step)
        if progress.metric_since_last is not None:
            self.write_value(self._tagged(progress, "minibatch/avg_metric"), progress.metric_since_last, step)
        rates = progress.learning_rates
        for k, rate in enumerate(rates):
            suffix = f"/{k}" if len(rates) > 1 else ""
            self.write_value(self._tagged(progress, f"minibatch/learning_rate{suffix}"), rate, step)
        if math.isfinite(progress.samples_per_second):
            self.write_value(self._tagged(progress, "minibatch/samples_per_second"), progress.samples_per_second, step)

    def on_write_training_summary(self, progress: Progress) -> None:
        if progress.loss_since_start is not None:
            self.write_value(self._tagged(progress, "summary/avg_loss"), progress.loss_since_start, progress.step)
        if progress.metric_since_start is not None:
            self.write_value(self._tagged(progress, "summary/avg_metric"), progress.metric_since_start, progress.step)

    def on_write_test_summary(self, progress: Progress) -> None:
        if progress.loss_since_start is not None:
            self.write_value(self._tagged(progress, "summary/test_avg_loss"), progress.loss_since_start, progress.step)
        if progress.metric_since_start is not None:
            self.write_value(self._tagged(progress, "summary/test_avg_metric"), progress.metric_since_start,
                             progress.step)


_TAG_CHARACTERS = re.compile(r"[-/\w.]+")  # what TensorBoard keeps in a tag (tensorboardX replaces the rest by _)


def _name(name, method: str) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{method}: name must be a non-empty str, got {name!r}")
    if not _TAG_CHARACTERS.fullmatch(name):
        bad = sorted(set(_TAG_CHARACTERS.sub("", name)))
        raise ValueError(f"{method}: name {name!r} has characters TensorBoard tags cannot hold ({' '.join(bad)!r}); "
                         f"use letters, digits, _ . - and / (groups)")
    return name


def _step(step, method: str) -> int:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"{method}: step must be an int >= 0, got {step!r}")
    return int(step)


# the graph --------------------------------------------------------------------------------------
def _scoped_names(order) -> dict:
    """A unique TensorBoard name per node: its layer scopes, then its own name or ``Op_id``."""
    names, used = {}, set()
    for node in order:
        scopes = [s.name for s in node.scope if s.name]
        base = "/".join([*scopes, node.name or f"{node.op_name}_{node.uid}"])
        name = base if base not in used else f"{base}_{node.uid}"
        used.add(name)
        names[node] = name
    return names


def _shape_proto(shape, tensor_shape_pb2):
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=-1)]  # the batch axis
    dims += [tensor_shape_pb2.TensorShapeProto.Dim(size=d if isinstance(d, int) else -1) for d in shape]
    return tensor_shape_pb2.TensorShapeProto(dim=dims)


def graph_def(model):
    """The graph of ``model`` as a TensorBoard ``GraphDef``: one node per minigraph node (inputs,
    parameters, constants and ops), named by layer scope, with ``_output_shapes`` (batch axis -1),
    ``shape``, ``dtype`` and the op's attributes as node attributes."""
    _tensorboardx()
    from tensorboardX.proto import attr_value_pb2, graph_pb2, node_def_pb2, tensor_shape_pb2, versions_pb2

    from ..shapes import shape_str

    order = model.topological_order()
    names = _scoped_names(order)
    nodes = []
    for node in order:
        attrs = {
            "_output_shapes": attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(
                shape=[_shape_proto(node.shape, tensor_shape_pb2)])),
            "shape": attr_value_pb2.AttrValue(s=shape_str(node.shape).encode()),
            "dtype": attr_value_pb2.AttrValue(s=(node.dtype.name if node.dtype is not None else "inferred").encode()),
        }
        for key, value in sorted(getattr(node, "attributes", {}).items()):
            attrs[f"attr/{key}"] = attr_value_pb2.AttrValue(s=repr(value).encode())
        nodes.append(node_def_pb2.NodeDef(name=names[node], op=node.op_name,
                                          input=[names[x] for x in node.inputs_direct], attr=attrs))
    return graph_pb2.GraphDef(node=nodes, versions=versions_pb2.VersionDef(producer=22))
