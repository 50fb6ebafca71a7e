"""Exception types users can catch and act on.

Every message starts with the node or layer it is about (``Plus 'y': ...``) and shows the shapes
involved and what would have been valid.
"""


class MinigraphError(Exception):
    """Base class of every error minigraph raises on purpose."""


class ShapeError(MinigraphError, ValueError):
    """Shapes that do not fit: wrong rank, mismatched dims, invalid sizes, conflicting bindings."""


class ArgumentError(MinigraphError, ValueError):
    """An argument whose value is out of range (``strides=0``, ``seed=-1``, ``dtype="foo"``); a ``ValueError``."""


class ArgumentTypeError(MinigraphError, TypeError):
    """An argument of the wrong type (``training="no"``, ``groups=True``, ``seed=1.5``); a ``TypeError``."""


class GraphError(MinigraphError, ValueError):
    """A graph that cannot run: cycles, missing or unknown feeds, dtype mismatches, uninitialised values."""


class SpecError(MinigraphError, ValueError):
    """A declarative network spec that cannot be built (unknown layer type, misspelt argument, ...)."""


class ModelFileError(MinigraphError, ValueError):
    """A model or checkpoint file that is truncated, foreign or of an unsupported version."""


class TrainingError(MinigraphError, RuntimeError):
    """Training cannot go on safely (e.g. the loss became NaN or infinite)."""


class DataError(MinigraphError, ValueError):
    """Training data that cannot be read as asked: a missing or empty folder, a file that is not an
    image, mixed sizes or channel counts, arrays of different lengths, a position from another source."""


class RenderError(MinigraphError, RuntimeError):
    """A picture cannot be written (e.g. Graphviz's ``dot`` program is not installed)."""


class ResourceError(MinigraphError, MemoryError):
    """A run, feed or file would need more memory than the limit (``mg.set_memory_limit``) allows.

    Raised before anything is allocated. ``estimate`` and ``limit`` are in bytes; runs also set
    ``largest_node`` (where the estimated peak is reached, e.g. ``ConvolutionTranspose in layer 'up2'``)
    and ``fitting_batch`` (the largest batch size that fits, 0 when none does); each is ``None`` when it
    does not apply.
    """

    def __init__(self, message: str, estimate: int | None = None, limit: int | None = None,
                 largest_node: str | None = None, fitting_batch: int | None = None):
        super().__init__(message)
        self.estimate = estimate
        self.limit = limit
        self.largest_node = largest_node
        self.fitting_batch = fitting_batch
