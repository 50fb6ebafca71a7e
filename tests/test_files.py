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
