"""Exception types users can catch and act on.

Every message starts with the node or layer it is about (``Plus 'y': ...``) and shows the shapes
involved and what would have been valid.
"""


class MinigraphError(Exception):
    """Base class of every error minigraph raises on purpose."""


class ShapeError(MinigraphError, ValueError):
    """Shapes that do not fit: wrong rank, mismatched dims, invalid sizes, conflicting bindings."""


class GraphError(MinigraphError, ValueError):
    """A graph that cannot run: cycles, missing or unknown feeds, dtype mismatches, uninitialised values."""


class SpecError(MinigraphError, ValueError):
    """A declarative network spec that cannot be built (unknown layer type, misspelt argument, ...)."""


class ModelFileError(MinigraphError, ValueError):
    """A model or checkpoint file that is truncated, foreign or of an unsupported version."""


class TrainingError(MinigraphError, RuntimeError):
    """Training cannot go on safely (e.g. the loss became NaN or infinite)."""


class RenderError(MinigraphError, RuntimeError):
    """A picture cannot be written (e.g. Graphviz's ``dot`` program is not installed)."""
