"""The reliability tally: how many inputs each category tried and how each ended.

Every reliability test adds its counts with :func:`record`; the table is printed once at the end of
the run (``conftest.py``'s terminal-summary hook), so a run shows at a glance what was tried:

* ``tried``: inputs fed to minigraph in this category;
* ``clean``: inputs refused with a minigraph error (a clear message, nothing changed);
* ``escapes``: inputs that raised anything else (a raw numpy/Python error) -- must stay 0;
* ``garbage``: inputs accepted with a wrong result (silently wrong shape or value) -- must stay 0;
* ``markers``: code-execution payloads whose marker file appeared -- must stay 0.

Inputs that are neither refused nor wrong are accepted correctly (``tried - clean - escapes -
garbage``). Tests assert the zero columns themselves; the table is the measurement.

``scaled(n)`` is the number of cases a test should try: ``n``, or ``10 * n`` with ``pytest --slow``.
:func:`is_clean` tells a clean error from an escape.
"""
from __future__ import annotations

import linecache
import os
import threading

import minigraph
from minigraph.errors import MinigraphError

__all__ = ["record", "scaled", "rows", "format_table", "set_scale", "is_clean"]

_PACKAGE = os.path.dirname(os.path.abspath(minigraph.__file__))

_COLUMNS = ("tried", "clean", "escapes", "garbage", "markers")
_counts: dict[str, dict[str, int]] = {}
_lock = threading.Lock()  # tests may record from worker threads
_scale = {"factor": 1}


def record(category: str, tried: int, clean: int, escapes: int = 0, garbage: int = 0, markers: int = 0) -> None:
    """Add one test's counts to ``category`` (categories accumulate across tests)."""
    with _lock:
        row = _counts.setdefault(category, dict.fromkeys(_COLUMNS, 0))
        for name, value in zip(_COLUMNS, (tried, clean, escapes, garbage, markers)):
            row[name] += int(value)


def is_clean(exc: BaseException) -> bool:
    """Whether ``exc`` is a clean refusal: a minigraph error, or a TypeError/ValueError raised on purpose
    by a ``raise`` statement in minigraph's own code (argument checks name the argument and what is
    allowed). Anything raised by numpy, Python or a library on the way (``IndexError``, ``unhashable``,
    ``MemoryError``, ``RecursionError``...) is an escape."""
    if isinstance(exc, MinigraphError):
        return True
    if type(exc) not in (TypeError, ValueError) or exc.__traceback__ is None:
        return False
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
    line = linecache.getline(filename, tb.tb_lineno).strip()
    return filename.startswith(_PACKAGE + os.sep) and line.startswith("raise ")


def set_scale(factor: int) -> None:
    """Multiply every :func:`scaled` count by ``factor`` (``--slow`` sets 10)."""
    _scale["factor"] = int(factor)


def scaled(n: int) -> int:
    """How many cases to try for a test whose default is ``n``."""
    return n * _scale["factor"]


def rows() -> list[tuple[str, dict[str, int]]]:
    """The recorded categories in the order they were first recorded, with their counts."""
    with _lock:
        return [(category, dict(row)) for category, row in _counts.items()]


def format_table() -> list[str]:
    """The tally as text lines (one per category, then the totals); empty when nothing was recorded."""
    recorded = rows()
    if not recorded:
        return []
    totals = {name: sum(row[name] for _, row in recorded) for name in _COLUMNS}
    width = max(len("category"), len("total"), *(len(c) for c, _ in recorded))
    header = f"{'category':<{width}}" + "".join(f"{name:>10}" for name in _COLUMNS)
    lines = [header, "-" * len(header)]
    for category, row in recorded + [("total", totals)]:
        lines.append(f"{category:<{width}}" + "".join(f"{row[name]:>10}" for name in _COLUMNS))
    return lines
