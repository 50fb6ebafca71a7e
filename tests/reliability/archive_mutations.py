"""Mutations of minigraph archives (model files and checkpoints), as an attacker or a damaged disk
would make them: bytes, zip structure, ``.npy`` entries, manifest fields and JSON values.

Each mutation is ``fn(data, rng) -> (new bytes, preserves)``: ``preserves`` says whether a file that
still loads must give exactly the original's results (e.g. a stored instead of deflated entry), or
may legitimately describe another model (e.g. another stride). :data:`MUTATIONS` lists them by
kind; the tests draw kinds round-robin so every kind is tried.
"""
from __future__ import annotations

import io
import json
import struct
import warnings
import zipfile

import numpy as np

MANIFEST = "manifest.json"


# reading and writing archives ---------------------------------------------------------------------
def entries(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def pack(items, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", compression=compression) as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": that is the point of some mutations
        for name, payload in items:
            zf.writestr(name, payload)
    return buf.getvalue()


def manifest_of(data: bytes) -> dict:
    return json.loads(dict(entries(data))[MANIFEST])


def with_manifest(data: bytes, manifest_text: str | bytes) -> bytes:
    raw = manifest_text.encode() if isinstance(manifest_text, str) else manifest_text
    return pack([(n, raw if n == MANIFEST else p) for n, p in entries(data)])


def npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def raw_npy(header: str, payload: bytes = b"", version: tuple = (1, 0)) -> bytes:
    """A ``.npy`` entry with any header text (numpy would refuse to write most of these)."""
    text = header.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    size = struct.pack("<H", len(text)) if version == (1, 0) else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes(version) + size + text + payload


def _arrays(items) -> list[int]:
    return [i for i, (n, _) in enumerate(items) if n.endswith(".npy")]


def _one_array(data, rng, keep=lambda payload: True):
    """The archive's entries and the position of one array entry drawn at random (None if none)."""
    items = entries(data)
    at = [i for i in _arrays(items) if keep(items[i][1])]
    return items, (at[int(rng.integers(len(at)))] if at else None)


# bytes --------------------------------------------------------------------------------------------
def flip_bytes(data, rng):
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        at = int(rng.integers(len(out)))
        out[at] ^= 1 << int(rng.integers(8))
    return bytes(out), False


def truncate(data, rng):
    return data[:int(rng.integers(len(data)))], False


def append_garbage(data, rng):
    return data + rng.bytes(int(rng.integers(1, 200))), True  # zip readers find the directory at the end


def overwrite_range(data, rng):
    out = bytearray(data)
    at, n = int(rng.integers(len(out))), int(rng.integers(1, 64))
    out[at:at + n] = rng.bytes(len(out[at:at + n]))
    return bytes(out), False


# zip structure ------------------------------------------------------------------------------------
def duplicate_entry(data, rng):
    """A second copy of an entry with other content: which copy is meant?"""
    items = entries(data)
    i = int(rng.integers(len(items)))
    name, payload = items[i]
    other = payload.replace(b"1", b"2", 1) if name == MANIFEST else npy(np.zeros(3))
    items.insert(int(rng.integers(len(items) + 1)), (name, other))
    return pack(items), False


def drop_entry(data, rng):
    items = entries(data)
    del items[int(rng.integers(len(items)))]
    return pack(items), False


EXTRA_NAMES = ["../evil.npy", "/etc/evil.npy", "a/b.npy", "notes.txt", "p999.npy", "x.npy.bak", "C:\\evil.npy",
               "manifest.json/", "..\\evil.npy", "p0.NPY", " p0.npy", "ü.npy"]


def extra_entry(data, rng):
    items = entries(data)
    name = EXTRA_NAMES[int(rng.integers(len(EXTRA_NAMES)))]
    items.append((name, npy(np.zeros(2, np.float32))))
    return pack(items), False


def rename_entry(data, rng):
    items = entries(data)
    i = int(rng.integers(len(items)))
    items[i] = (EXTRA_NAMES[int(rng.integers(len(EXTRA_NAMES)))], items[i][1])
    return pack(items), False


def _patch_headers(data: bytes, index: int, local_offset: int, central_offset: int, value: bytes) -> bytes:
    """Overwrite a field of entry ``index`` in its local header and its central-directory record."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        at, seen = -1, -1
        while seen < index:
            at = out.find(signature, at + 1)
            if at < 0:
                return bytes(out)
            seen += 1
        if offset is not None:
            out[at + offset:at + offset + len(value)] = value
    return bytes(out)


def encrypted_flag(data, rng):
    i = int(rng.integers(len(entries(data))))
    stored = pack(entries(data), zipfile.ZIP_STORED)
    return _patch_headers(stored, i, 6, 8, struct.pack("<H", 0x1)), False


def unknown_compression(data, rng):
    i = int(rng.integers(len(entries(data))))
    method = [1, 6, 9, 12, 14, 93, 99, 0xFFFF][int(rng.integers(8))]  # shrink, implode, deflate64, bzip2...
    stored = pack(entries(data), zipfile.ZIP_STORED)
    return _patch_headers(stored, i, 8, 10, struct.pack("<H", method)), False


def other_zip_compression(data, rng):
    method = [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA][int(rng.integers(2))]
    return pack(entries(data), method), False


def stored_entries(data, rng):
    return pack(entries(data), zipfile.ZIP_STORED), True


def lying_size(data, rng):
    """The central directory claims another uncompressed size (up to 4 GiB) for one entry."""
    i = int(rng.integers(len(entries(data))))
    size = [0, 1, 2**31, 2**32 - 1, int(rng.integers(1, 10**6))][int(rng.integers(5))]
    stored = pack(entries(data), zipfile.ZIP_STORED)
    return _patch_headers(stored, i, None, 24, struct.pack("<I", size)), False


def many_entries(data, rng):
    items = entries(data)
    items += [(f"z{k}.npy", b"") for k in range(int(rng.integers(2, 50)))]
    return pack(items), False


# .npy entries -------------------------------------------------------------------------------------
NPY_HEADERS = [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }",  # ~4 PB claimed
    "{'descr': '<f8', 'fortran_order': False, 'shape': (2**62,), }",
    "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '<U3', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }",
    "{'descr': ('<f4', (2,)), 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
    "{'descr': '<f4', 'fortran_order': 'yes', 'shape': (3,), }",
    "{'descr': '<f4', 'shape': (3,), }",
    "{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (3,), }",
    "not a dict at all",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (" + "(" * 500 + ")" * 500 + "), }",
]


def npy_header(data, rng):
    items, i = _one_array(data, rng)
    if i is None:
        return data, True
    header = NPY_HEADERS[int(rng.integers(len(NPY_HEADERS)))]
    items[i] = (items[i][0], raw_npy(header, rng.bytes(12), [(1, 0), (2, 0), (3, 0), (9, 9)][int(rng.integers(4))]))
    return pack(items), False


def npy_nested_zip(data, rng):
    items, i = _one_array(data, rng)
    if i is None:
        return data, True
    items[i] = (items[i][0], data)  # the whole archive where an array should be
    return pack(items), False


def npy_retyped(data, rng):
    """The same values under another dtype or layout: only a native/byte-swapped/Fortran copy of the
    same float dtype may load (and must give the same results)."""
    items, i = _one_array(data, rng)
    if i is None:
        return data, True
    arr = np.load(io.BytesIO(items[i][1]))
    choice = int(rng.integers(7))
    preserves = choice >= 4
    new = [lambda a: a.astype(np.complex64), lambda a: a.astype(np.int32), lambda a: a.astype(np.float16),
           lambda a: a.reshape(-1)[:max(a.size - 1, 0)],
           lambda a: a.astype(a.dtype.newbyteorder(">")), lambda a: np.asfortranarray(a), lambda a: a][choice](arr)
    if choice == 1 and np.issubdtype(arr.dtype, np.integer):
        preserves = True
    items[i] = (items[i][0], npy(new))
    return pack(items), preserves and new.dtype.newbyteorder("=") == arr.dtype and new.shape == arr.shape


def npy_nonfinite(data, rng):
    items, i = _one_array(data, rng, lambda payload: np.load(io.BytesIO(payload)).size > 0)
    if i is None:
        return data, True
    arr = np.load(io.BytesIO(items[i][1])).copy()
    arr.reshape(-1)[int(rng.integers(arr.size))] = [np.nan, np.inf, -np.inf][int(rng.integers(3))]
    items[i] = (items[i][0], npy(arr))
    return pack(items), False


# manifest JSON --------------------------------------------------------------------------------------
def json_paths(value, prefix=(), leaves_only=False):
    """Every path (tuple of keys/indices, the empty one excepted) into a JSON value; with
    ``leaves_only`` only those of values that are neither objects nor arrays."""
    container = isinstance(value, (dict, list))
    if prefix and not (leaves_only and container):
        yield prefix
    for k, v in (value.items() if isinstance(value, dict) else enumerate(value) if container else ()):
        yield from json_paths(v, prefix + (k,), leaves_only)


def _get(value, path):
    for k in path:
        value = value[k]
    return value


def _set(value, path, new):
    if not path:
        return new
    _get(value, path[:-1])[path[-1]] = new
    return value


STRINGS = ["", "x", "H", "2*H", "H*W", "-1", "float16", "complex64", "Plus", "Pooling", "Input", "Function", "tuple",
           "max", "average", "__import__('os').system('true')", "1e9", "a" * 5000, "\u0000", "../../etc", "NaN"]


def mutated_value(old, rng):
    """A replacement of the same or another JSON type, chosen by the old value's type."""
    pick = int(rng.integers(12))
    if isinstance(old, bool) or old is None:
        candidates = [not old if isinstance(old, bool) else True, 0, 1, "true", None, [], {}, 0.5]
    elif isinstance(old, int):
        candidates = [old + 1, old - 1, -old, 0, -1, 10**9, 10**30, -(10**18), float(old), True, str(old), None,
                      [old], float("nan")]
    elif isinstance(old, float):
        candidates = [float("nan"), float("inf"), -float("inf"), -old, 0.0, 1e308, -1.0, 2.0, None, int(old), "0.5",
                      [old]]
    elif isinstance(old, str):
        candidates = STRINGS + [old + "x", old.upper(), None, 0, [old], {"tuple": [old]}]
    elif isinstance(old, list):
        candidates = [[], old[:-1], old + old[-1:], old[::-1], [old], {"tuple": old}, None, "list", 0,
                      [None] * len(old), old * 50]
    else:
        candidates = [{}, {k: v for k, v in list(old.items())[:-1]}, {**old, "unknown": 1}, list(old.values()), None,
                      {"tuple": list(old.values())}, "x"]
    return candidates[pick % len(candidates)]


def json_value(data, rng):
    """One value anywhere in the manifest replaced by another (by its type)."""
    manifest = manifest_of(data)
    paths = list(json_paths(manifest))
    path = paths[int(rng.integers(len(paths)))]
    new = _set(manifest, path, mutated_value(_get(manifest, path), rng))
    preserves = path[-1:] == ("minigraph_version",)
    return with_manifest(data, json.dumps(new)), preserves and isinstance(_get(manifest, path), str)


def node_field(data, rng):
    """A field of one node record (kind, op, inputs, shape, dtype, attributes...) by its type."""
    manifest = manifest_of(data)
    records = manifest.get("nodes") or [{}]
    i = int(rng.integers(len(records)))
    rec = records[i]
    if not rec:
        return json_value(data, rng)
    key = list(rec)[int(rng.integers(len(rec)))]
    if key == "attributes" and rec[key] and rng.random() < 0.7:
        attrs = rec[key]
        name = list(attrs)[int(rng.integers(len(attrs)))]
        choice = int(rng.integers(4))
        if choice == 0:
            del attrs[name]
        elif choice == 1:
            attrs["unknown_" + name] = attrs[name]
        else:
            attrs[name] = mutated_value(attrs[name], rng)
    else:
        rec[key] = mutated_value(rec[key], rng)
    return with_manifest(data, json.dumps(manifest)), False


def deep_nesting(data, rng):
    """A value replaced by arrays nested far deeper than any parser's recursion limit."""
    depth = int(rng.integers(100, 200_000))
    text = manifest_of(data)
    text["nodes"] = "@@"
    raw = json.dumps(text).replace('"@@"', "[" * depth + "]" * depth)
    return with_manifest(data, raw), False


def repeated_key(data, rng):
    """A key given twice in one object (JSON parsers silently keep the last)."""
    raw = dict(entries(data))[MANIFEST].decode()
    key = ["root", "format", "version", "nodes", "scopes"][int(rng.integers(5))]
    raw = raw.replace("{", "{" + json.dumps(key) + ": " + json.dumps(mutated_value(0, rng)) + ", ", 1)
    return with_manifest(data, raw), False


def not_text(data, rng):
    raw = dict(entries(data))[MANIFEST]
    at = int(rng.integers(len(raw)))
    return with_manifest(data, raw[:at] + b"\xff\xfe" + raw[at:]), False


def huge_numbers(data, rng):
    raw = dict(entries(data))[MANIFEST].decode()
    digits = "9" * int(rng.integers(400, 5000))
    return with_manifest(data, raw.replace('"root": ', f'"root": {digits}', 1)), False


MUTATIONS = {
    "bytes": [flip_bytes, truncate, append_garbage, overwrite_range],
    "zip": [duplicate_entry, drop_entry, extra_entry, rename_entry, encrypted_flag, unknown_compression,
            other_zip_compression, stored_entries, lying_size, many_entries],
    "npy": [npy_header, npy_nested_zip, npy_retyped, npy_nonfinite],
    "manifest": [node_field, json_value, deep_nesting, repeated_key, not_text, huge_numbers],
}
