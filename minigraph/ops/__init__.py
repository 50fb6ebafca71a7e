"""Every op: ``mg.ops.NAME`` (and ``mg.NAME``). One module per op family, each holding the shape
rule, forward and vjp of its ops side by side."""
from . import (
    conv,  # noqa: F401
    dropout,  # noqa: F401
    elementwise,  # noqa: F401  (modules register their public functions in EXPORTS)
    linalg,  # noqa: F401
    losses,  # noqa: F401
    normalization,  # noqa: F401
    pooling,  # noqa: F401
    reductions,  # noqa: F401
    shape_ops,  # noqa: F401
)
from .base import EXPORTS

globals().update(EXPORTS)
__all__ = sorted(EXPORTS)
