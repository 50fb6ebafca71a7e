"""Writing files so that readers never see half of one: model files, checkpoints, pictures, ONNX."""
from __future__ import annotations

import contextlib
import os
import secrets
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_writer(path, make_folder: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file beside ``path``; when the block ends without error it is flushed to disk
    and renamed over ``path``, else removed, so an existing file survives a failed write.
    ``make_folder`` creates missing parent folders."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if make_folder:
        os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666 & ~umask, like open()
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def write_atomically(path, data: bytes, make_folder: bool = False) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_writer`."""
    with atomic_writer(path, make_folder) as fh:
        fh.write(data)
