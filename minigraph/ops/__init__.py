"""Every op: ``mg.ops.NAME`` (and ``mg.NAME``). One module per op family, each holding the shape
rule, forward and vjp of its ops side by side."""
from . import elementwise  # noqa: F401  (modules register their public functions in EXPORTS)
from . import conv  # noqa: F401
from . import dropout  # noqa: F401
from . import linalg  # noqa: F401
from . import normalization  # noqa: F401
from . import pooling  # noqa: F401
from . import losses  # noqa: F401
from . import reductions  # noqa: F401
from . import shape_ops  # noqa: F401
from .base import EXPORTS

globals().update(EXPORTS)
__all__ = sorted(EXPORTS)
