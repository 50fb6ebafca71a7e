"""Import an ONNX model as a trainable minigraph graph: ``mg.import_onnx("gen.onnx")``.

The inverse of :mod:`minigraph.onnx_export`. Graph inputs become input variables (named as in the
file, in ONNX order); their first axis is minigraph's implicit batch axis, so it must be a
``dim_param`` (``input_shapes`` lifts that rule). Other ``dim_param`` dims become symbolic dims of the
same name. Float initializers that ops read as tensors become ``Parameter``s named after the
initializer (``Constant``s with ``trainable=False``); BatchNormalization's running mean and variance
become the op's running statistics (updated in training mode). Initializers read as settings (shapes,
axes, scales) stay numbers.

Values are tracked as in the exporter: a node's value carries the batch axis (``batched``: ONNX axis
``i + 1`` is static axis ``i``) or not (weights, constants). Sub-graphs that only compute sizes
(``Shape`` -> ``Gather`` -> ``Equal`` -> ``If``, as PyTorch emits around a dynamic batch) are folded
to numbers while importing; one that depends on the batch size, or on a symbolic size where the
answer differs by value, is an :class:`OnnxImportError` saying so.

Each ONNX op has one importer in :data:`IMPORTERS` (an explicit dict: nothing in the file chooses a
Python name): :mod:`.tensor_ops`, :mod:`.conv` and :mod:`.folding` hold them, :mod:`.core` what they
share. Attributes are type-checked, unknown or unsupported attributes refused, and any error leaves
nothing behind (the graph is built only from fresh nodes and returned at the end). Text from the file
meets no ``eval``: a ``dim_param`` must be a plain identifier.
"""
from __future__ import annotations

from pathlib import Path

from ..onnx_export import OnnxNotInstalledError, require_onnx
from . import conv, folding, tensor_ops  # noqa: F401  (each registers its op importers in IMPORTERS)
from .core import IMPORTERS, MIN_OPSET, Importer, OnnxImportError, Value

__all__ = ["IMPORTERS", "MIN_OPSET", "OnnxImportError", "OnnxNotInstalledError", "import_onnx"]


def import_onnx(model, input_shapes=None, trainable: bool = True, name: str | None = None):
    """Read an ONNX model (a path or an ``onnx.ModelProto``) as a minigraph graph; returns its output node.

    ``input_shapes``: ``{input name: static shape}`` (no batch axis; or a list, one per input) for inputs
    whose file shape has no batch ``dim_param`` or no shape; the first file axis is then taken as the
    batch axis whatever it says. ``trainable``: initializers become ``Parameter``s (else ``Constant``s).
    ``name``: the output node's name (default: the ONNX output's name).

    A model with several outputs returns a dict ``{output name: node}`` in the file's order (each node
    has its own ``arguments``, ``eval``...). Unsupported ops or attributes, malformed graphs and size
    computations that are not constant raise :class:`OnnxImportError`; a missing ``onnx`` package raises
    :class:`OnnxNotInstalledError`.

    >>> import minigraph as mg
    >>> x = mg.input_variable((3, 8, 8), name="x")
    >>> y = mg.layers.ConvolutionTranspose2D(4, 2, strides=2, lower_pad=1, upper_pad=1, name="up")(x)
    >>> back = mg.import_onnx(y.export_onnx())  # doctest: +SKIP
    """
    onnx = require_onnx("import_onnx")
    if isinstance(trainable, bool) is False:
        raise TypeError(f"import_onnx: trainable must be a bool, got {trainable!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"import_onnx: name must be a str, got {name!r}")
    if isinstance(model, (str, Path)):
        path = Path(model)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise OnnxImportError(f"cannot read ONNX model {str(path)!r}: {exc.strerror}") from None
        proto = onnx.ModelProto()
        try:
            proto.ParseFromString(data)
        except Exception:
            raise OnnxImportError(f"{str(path)!r} is not an ONNX model (protobuf parse failed)") from None
        if not proto.HasField("graph"):
            raise OnnxImportError(f"{str(path)!r} is not an ONNX model (no graph)")
    elif isinstance(model, onnx.ModelProto):
        proto = model
    else:
        raise TypeError(f"import_onnx: model must be a path or an onnx.ModelProto, got {type(model).__name__}")
    from ..graph import _uids  # nodes created from here on belong to this import (they take its node names)
    imp = Importer(onnx, proto, input_shapes, trainable, name)
    imp.first_uid = next(_uids)
    graph = proto.graph
    imp.consumed = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    arguments = imp.add_inputs(graph)
    imp.run(graph, f"graph {graph.name!r}")
    outputs = {}
    for out in graph.output:
        value = imp.lookup(out.name, _OutputSite(out.name))
        if not isinstance(value, Value) or not value.batched:
            raise OnnxImportError(f"graph output {out.name!r} does not depend on the graph inputs; minigraph "
                                  f"outputs carry the batch axis")
        outputs[out.name] = value.node
    if not outputs:
        raise OnnxImportError("the ONNX graph has no outputs")
    for out_name, node in outputs.items():
        if node not in arguments:
            node.name = name if name is not None and len(outputs) == 1 else out_name
    return next(iter(outputs.values())) if len(outputs) == 1 else outputs


class _OutputSite:
    """Stands for the graph's output list in undefined-name errors."""

    def __init__(self, name: str):
        self.label = f"graph output {name!r}"
        self.opset = "-"

    def error(self, message: str) -> OnnxImportError:
        return OnnxImportError(f"{self.label}: {message}")
