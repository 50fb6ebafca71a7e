"""minigraph: declare convolutional generator networks, see them as graphs, train them.

Every op is ``mg.NAME`` (and ``mg.ops.NAME``), as in CNTK; layers are in ``mg.layers``, learners in
``mg.learners``.
"""
from .blas_threads import get_blas_thread_timeout  # first: it sets OpenBLAS's idle spin before numpy loads  # isort: skip
from . import callbacks, data, distributed, initializers, layers, learners, logging, ops, utils
from .allocator import get_memory_caching, set_memory_caching
from .averaging import ExponentialMovingAverage, update_bn
from .errors import (
                     ArgumentError,
                     ArgumentTypeError,
                     DataError,
                     GraphError,
                     MinigraphError,
                     ModelFileError,
                     RenderError,
                     ResourceError,
                     ShapeError,
                     SpecError,
                     TrainingError,
)
from .explain import explain
from .gan import GANTrainer
from .graph import Constant, Function, Node, Parameter, Variable, constant, input_variable, parameter
from .limits import get_memory_limit, set_memory_limit
from .lint import lint
from .onnx_export import ExportError, export_onnx
from .onnx_import import OnnxImportError, import_onnx
from .ops import *  # noqa: F403  (every op as mg.NAME, like CNTK)
from .plot import plot
from .rng import set_seed
from .serialization import load_model, save_model
from .shapes import Dim, InferredDimension
from .threads import get_num_threads, set_num_threads
from .trainer import Trainer
from .workspace import empty_cache

__version__ = "0.1.0"

__all__ = [
    "callbacks", "logging", "utils",
    "data", "distributed", "initializers", "layers", "learners", "ops", "ArgumentError", "ArgumentTypeError",
    "DataError",
    "GraphError", "MinigraphError", "ModelFileError", "RenderError", "ShapeError", "SpecError", "TrainingError",
    "ExportError", "Constant", "Function", "Node", "Parameter", "Variable", "constant", "input_variable",
    "parameter", "load_model", "save_model", "export_onnx", "plot", "set_seed", "Dim", "InferredDimension",
    "Trainer", "GANTrainer", "ResourceError", "get_memory_limit", "set_memory_limit", "get_num_threads",
    "set_num_threads", "empty_cache", "set_memory_caching", "get_memory_caching", "get_blas_thread_timeout",
    "explain", "lint", "ExponentialMovingAverage", "update_bn",
    "OnnxImportError", "import_onnx", *ops.__all__,
]
