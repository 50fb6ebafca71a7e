"""The process-wide memory limit: runs, feeds and files larger than it fail early with ResourceError.

``set_memory_limit(bytes)`` sets it (``None`` removes it); ``get_memory_limit()`` reads it. Code that is
about to allocate a known number of bytes calls ``check_memory(nbytes, what)``, which raises
:class:`~minigraph.errors.ResourceError` before anything is allocated. This module is part of the engine:
it imports nothing but the error types.
"""
from __future__ import annotations

from .checks import check_int
from .errors import ResourceError

__all__ = ["set_memory_limit", "get_memory_limit", "check_memory", "format_bytes"]

_limit: dict[str, int | None] = {"bytes": None}


def set_memory_limit(nbytes: int | None) -> None:
    """Limit the memory one run (or one feed, one file) may take, in bytes; ``None`` removes the limit."""
    _limit["bytes"] = None if nbytes is None else check_int(nbytes, "nbytes", "set_memory_limit", minimum=1)


def get_memory_limit() -> int | None:
    """The limit set by :func:`set_memory_limit`, in bytes (``None``: no limit)."""
    return _limit["bytes"]


def format_bytes(nbytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"``: binary units, three significant digits."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _exact(nbytes: int) -> str:
    """``"1.5 KiB (1536 bytes)"``; small counts just ``"12 B"``."""
    return format_bytes(nbytes) + (f" ({nbytes} bytes)" if nbytes >= 1024 else "")


def check_memory(nbytes: int, what: str, limit: int | None = None, hint: str = "") -> None:
    """Raise ResourceError when ``nbytes`` exceeds ``limit`` (default: the global limit).

    ``what`` names the thing (``"feed 'x'"``, ``"model file 'g.mgm'"``); ``hint`` is appended as the fix.
    """
    limit = get_memory_limit() if limit is None else limit
    if limit is not None and nbytes > limit:
        message = f"{what} needs {_exact(nbytes)}, more than the memory limit of {_exact(limit)}"
        raise ResourceError(message + (f"\n  Hint: {hint}" if hint else ""), estimate=nbytes, limit=limit)
