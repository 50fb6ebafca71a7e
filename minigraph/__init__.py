"""minigraph: declare convolutional generator networks, see them as graphs, train them."""
from . import initializers, learners, ops
from . import layers  # noqa: F401  (mg.layers; registers model.summary())
from .errors import GraphError, MinigraphError, ModelFileError, RenderError, ShapeError, SpecError, TrainingError
from .graph import Constant, Function, Node, Parameter, Variable, constant, input_variable, parameter
from .ops import *  # noqa: F401,F403  (every op as mg.NAME, like CNTK)
from .plot import plot
from .io import load_model, save_model
from .onnx_export import ExportError, export_onnx
from .rng import set_seed
from .trainer import Trainer
from .shapes import Dim, InferredDimension

__version__ = "0.1.0"
