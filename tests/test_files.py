"""Atomic writes: a failed write never destroys the previous file, and no temporary file is left."""
import os

import pytest

from minigraph.files import atomic_writer, write_atomically


def test_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old")
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["model.bin"]


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_writer(path) as fh:
            fh.write(b"half of it")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.bin"]


def test_missing_folders_are_created_only_when_asked(tmp_path):
    path = tmp_path / "a" / "b" / "graph.png"
    with pytest.raises(FileNotFoundError):
        write_atomically(path, b"x")
    write_atomically(path, b"x", make_folder=True)
    assert path.read_bytes() == b"x"


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644, 0o755])
def test_overwriting_keeps_the_permissions(tmp_path, mode):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old")
    os.chmod(path, mode)
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert os.stat(path).st_mode & 0o777 == mode


def test_a_new_file_gets_the_umask_default(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomically(tmp_path / "new.bin", b"x")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "new.bin").st_mode & 0o777 == 0o640


def test_json_from_files_is_bounded_and_unambiguous():
    from minigraph.files import MAX_NESTING, check_nesting, loads_json
    assert loads_json(b'{"a": ["[[[[", {"b": 2}]}') == {"a": ["[[[[", {"b": 2}]}  # brackets in strings
    check_nesting(b"[" * MAX_NESTING + b"]" * MAX_NESTING)
    with pytest.raises(ValueError, match="nest 100000 deep"):
        loads_json(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ValueError, match="key 'a' appears twice"):
        loads_json(b'{"a": 1, "a": 2}')
    with pytest.raises(ValueError, match="not UTF-8"):
        loads_json(b'{"a": "\xff"}')
