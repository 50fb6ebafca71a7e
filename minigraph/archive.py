"""The archive format of model files and checkpoints: a zip holding ``manifest.json`` and one ``.npy``
per array, written atomically and read back only after every part of it was checked.

Reading trusts nothing in the file. Before any array is allocated:

* the zip: at most :data:`MAX_ENTRIES` entries, no repeated names, only ``manifest.json`` and
  ``NAME.npy`` entries (plain names: no folders, absolute or ``..`` paths), stored or deflated,
  not encrypted; the declared sizes within :data:`MAX_MANIFEST_BYTES` (manifest) and the memory
  limit (:func:`minigraph.set_memory_limit`, arrays);
* the manifest: UTF-8 JSON nested at most :data:`~minigraph.files.MAX_NESTING` deep, no repeated
  keys, an object with the expected format name and a supported version;
* each ``.npy`` header: a plain numeric dtype (no objects, strings, structures or complex
  numbers) and a shape whose byte count is exactly what the entry holds (a header cannot claim
  more memory than the file really carries).

Any failure raises :class:`~minigraph.errors.ModelFileError` naming the file and what is wrong
(:class:`~minigraph.errors.ResourceError` when a well-formed file is larger than the memory limit).
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping

import numpy as np

from .errors import ModelFileError
from .files import atomic_writer, loads_json, short_repr
from .limits import check_memory

__all__ = ["write_archive", "read_archive", "require_array", "library_version", "MAX_ENTRIES",
           "MAX_MANIFEST_BYTES", "ARRAY_DTYPES"]

MANIFEST = "manifest.json"
MAX_ENTRIES = 100_000
"""Most entries (arrays + manifest) an archive may hold."""
MAX_MANIFEST_BYTES = 64 * 2**20
"""Largest manifest accepted (bytes, uncompressed)."""
_MAX_NPY_HEADER = 10_000
_MAX_DEFLATE_RATIO = 1032  # deflate never expands data more than this
ARRAY_DTYPES = frozenset(["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                          "uint32", "uint64", "bool"])
"""The dtypes an array entry may have (parameters and learner slots are float32/float64; the callers
check which one)."""
_ARRAY_ENTRY = re.compile(r"[A-Za-z0-9_]{1,200}\.npy")
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, struct.error, OSError, ValueError,
               KeyError, IndexError, OverflowError, NotImplementedError, RuntimeError, UnicodeDecodeError)


def library_version() -> str:
    from . import __version__  # the package sets it after importing its modules
    return __version__


def write_archive(path, manifest: Mapping, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``manifest`` (JSON-able) and ``arrays`` (name -> array) to ``path`` atomically."""
    with atomic_writer(path) as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, indent=1))
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.asarray(arr), allow_pickle=False)
            zf.writestr(f"{name}.npy", buf.getvalue())


def read_archive(path, expected_format: str, max_version: int) -> tuple[dict, dict[str, np.ndarray]]:
    """Read what :func:`write_archive` wrote, checking everything listed in the module docstring."""
    path = os.fspath(path)
    with open(path, "rb") as fh:  # a missing or unreadable path raises the usual OSError
        what = expected_format.replace("minigraph-", "")
        try:
            with zipfile.ZipFile(fh) as zf:
                infos = _checked_entries(zf, path, what)
                manifest = _read_manifest(zf, infos, path, what, expected_format, max_version)
                arrays = {info.filename[:-4]: _read_array(zf, info, path)
                          for info in infos if info.filename != MANIFEST}
        except ModelFileError:
            raise
        except RecursionError:
            raise ModelFileError(f"{path}: corrupted minigraph {what} file (nested too deeply)") from None
        except _ZIP_ERRORS as exc:
            raise ModelFileError(f"{path}: not a minigraph {what} file, or truncated or corrupted "
                                 f"({type(exc).__name__}: {exc})") from None
    return manifest, arrays


def _checked_entries(zf: zipfile.ZipFile, path: str, what: str) -> list[zipfile.ZipInfo]:
    """The zip's entries, checked for structure (see the module docstring), manifest first."""
    infos = zf.infolist()
    file_bytes = os.fstat(zf.fp.fileno()).st_size
    if len(infos) > MAX_ENTRIES:
        raise ModelFileError(f"{path}: the archive has {len(infos)} entries; a minigraph {what} file has at most "
                             f"{MAX_ENTRIES}")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ModelFileError(f"{path}: the archive holds {twice[0]!r} more than once (which copy is meant?)")
    if MANIFEST not in names:
        raise ModelFileError(f"{path}: not a minigraph {what} file (zip archive without {MANIFEST})")
    for info in infos:
        name = info.filename
        if name != MANIFEST and not _ARRAY_ENTRY.fullmatch(name):
            raise ModelFileError(f"{path}: unexpected entry {name!r} (a minigraph {what} file holds {MANIFEST} and "
                                 f"NAME.npy arrays only, no folders or paths)")
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{path}: entry {name!r} is encrypted; minigraph files never are")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(f"{path}: entry {name!r} uses compression method {info.compress_type}; minigraph "
                                 f"files are stored or deflated")
        if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024 or info.compress_size > file_bytes:
            raise ModelFileError(f"{path}: entry {name!r} claims {info.file_size} bytes from {info.compress_size} "
                                 f"stored bytes in a file of {file_bytes}: corrupted sizes")
    manifest = infos[names.index(MANIFEST)]
    if manifest.file_size > MAX_MANIFEST_BYTES:
        raise ModelFileError(f"{path}: {MANIFEST} claims {manifest.file_size} bytes; at most {MAX_MANIFEST_BYTES} "
                             f"are accepted")
    check_memory(sum(i.file_size for i in infos if i is not manifest), f"the arrays of {what} file {path!r}")
    return [manifest] + [i for i in infos if i is not manifest]


def _read_manifest(zf, infos, path: str, what: str, expected_format: str, max_version: int) -> dict:
    try:
        manifest = loads_json(zf.read(infos[0]))
    except ValueError as exc:
        raise ModelFileError(f"{path}: corrupted minigraph {what} file: {MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or "format" not in manifest:
        raise ModelFileError(f"{path}: not a minigraph {what} file (manifest has no format field)")
    if manifest["format"] != expected_format:
        raise ModelFileError(f"{path}: this is a {short_repr(manifest['format'])} file, not a {expected_format!r} file")
    version = manifest.get("version")
    if type(version) is not int or version < 1:
        raise ModelFileError(f"{path}: manifest has no valid format version ({short_repr(version)})")
    if version > max_version:
        raise ModelFileError(f"{path}: format version {version} was written by a newer minigraph "
                             f"({short_repr(manifest.get('minigraph_version', '?'))}); this minigraph "
                             f"({library_version()}) reads versions up to {max_version}")
    return manifest


def _read_array(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str) -> np.ndarray:
    """One ``.npy`` entry: header checked against the entry's size before the data is allocated."""
    key = info.filename[:-4]
    with zf.open(info) as fh:
        try:
            version = np.lib.format.read_magic(fh)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f".npy format version {version} is not supported")
            shape, fortran, dtype = read_header(fh, max_header_size=_MAX_NPY_HEADER)
        except (ValueError, SyntaxError, TypeError) as exc:
            raise ModelFileError(f"{path}: array {key!r} is not a valid .npy entry ({exc})") from None
        if dtype.fields is not None or dtype.subdtype is not None or dtype.name not in ARRAY_DTYPES:
            raise ModelFileError(f"{path}: array {key!r} has dtype {dtype}; arrays in minigraph files are plain "
                                 f"numbers ({', '.join(sorted(ARRAY_DTYPES))})")
        nbytes = math.prod(shape) * dtype.itemsize
        held = info.file_size - fh.tell()
        if nbytes != held:
            raise ModelFileError(f"{path}: array {key!r} claims shape {shape} of {dtype} ({nbytes} bytes), but its "
                                 f"entry holds {held} bytes")
        buf = bytearray()  # grows with the data really read: a lying size costs nothing
        while len(buf) < nbytes:
            chunk = fh.read(min(nbytes - len(buf), 1 << 24))
            if not chunk:
                raise ModelFileError(f"{path}: array {key!r} is truncated")
            buf += chunk
    arr = np.frombuffer(buf, dtype).reshape(shape, order="F" if fortran else "C")
    return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))


def require_array(arrays: Mapping[str, np.ndarray], key: str, path, shape=None, dtype=None) -> np.ndarray:
    """The array ``key`` from a file (of ``shape`` and ``dtype`` when given), or a ModelFileError."""
    if key not in arrays:
        raise ModelFileError(f"{os.fspath(path)}: array {key!r} is missing (truncated or edited file)")
    arr = arrays[key]
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise ModelFileError(f"{os.fspath(path)}: array {key!r} has shape {arr.shape}; expected {tuple(shape)}")
    if dtype is not None and arr.dtype != np.dtype(dtype):
        raise ModelFileError(f"{os.fspath(path)}: array {key!r} has dtype {arr.dtype}; expected {np.dtype(dtype)}")
    return arr
