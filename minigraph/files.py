"""Files: writing them so that readers never see half of one, and reading their text safely.

Every file minigraph writes (model files, checkpoints, specs, pictures, ONNX) goes through
:func:`atomic_writer`.

The data goes to a temporary file in the target's folder, is flushed to disk, then renamed over the
target (``os.replace`` is atomic on one file system), so a failure at any point (an exception, a full
disk, a file-size limit, a read-only folder) leaves the previous file exactly as it was and no
temporary file behind. Overwriting keeps the target's permission bits (a 0600 file stays 0600); a
new file gets the usual ``0666 & ~umask``.

JSON and TOML read from files go through :func:`check_nesting` first (and JSON through
:func:`loads_json`), so that hostile text fails with a plain ValueError, never a RecursionError
deep in a parser, and a repeated key cannot hide a value.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np

__all__ = ["atomic_writer", "write_atomically", "check_nesting", "loads_json", "short_repr", "MAX_NESTING"]

MAX_NESTING = 64
"""Deepest nesting of arrays and tables/objects accepted in JSON or TOML read from a file."""


def _existing_mode(path: str) -> int | None:
    """The permission bits of the regular file at ``path``, or None when there is none."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else None


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (where the platform allows opening a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_writer(path, make_folder: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file beside ``path``; when the block ends without error it is flushed to disk
    and renamed over ``path``, else removed, so an existing file survives a failed write.
    ``make_folder`` creates missing parent folders."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if make_folder:
        os.makedirs(folder, exist_ok=True)
    mode = _existing_mode(path)
    temp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666 & ~umask, like open()
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _sync_folder(folder)


def write_atomically(path, data: bytes, make_folder: bool = False) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_writer`."""
    with atomic_writer(path, make_folder) as fh:
        fh.write(data)


# reading text from files -------------------------------------------------------------------------
def short_repr(value, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (for messages: values from files can be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


_STRINGS = re.compile(rb'"(?:[^"\\\n]|\\.)*"' + rb"|'[^'\n]*'")
_OPEN, _CLOSE = np.zeros(256, np.int8), np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_CLOSE[[ord("]"), ord("}")]] = 1


def check_nesting(data: bytes, limit: int = MAX_NESTING) -> None:
    """Raise ValueError when the brackets of JSON/TOML text ``data`` nest deeper than ``limit``.
    Brackets inside quoted strings do not count (one vectorised pass, no parser recursion)."""
    code = np.frombuffer(_STRINGS.sub(b'""', bytes(data)), np.uint8)
    if code.size == 0:
        return
    depth = np.cumsum(_OPEN[code].astype(np.int64) - _CLOSE[code])
    deepest = int(depth.max())
    if deepest > limit:
        raise ValueError(f"arrays/tables nest {deepest} deep; at most {limit} levels are accepted")


def _unique_keys(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"key {repeated[0]!r} appears twice in one object")
    return dict(pairs)


def loads_json(data: bytes | str, limit: int = MAX_NESTING) -> Any:
    """Parse JSON text from a file: nesting bounded by ``limit``, no repeated keys in an object.
    Raises ValueError (``json.JSONDecodeError`` included) for anything else."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    check_nesting(raw, limit)
    try:
        return json.loads(raw, object_pairs_hook=_unique_keys)
    except RecursionError:  # unreachable after check_nesting; kept so no parser can escape with it
        raise ValueError("nesting too deep") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc})") from None
