"""``python -m minigraph data-info DIR``: counts per class, sizes, modes, unreadable files, exit status."""
import numpy as np
import pytest

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from minigraph.cli import main  # noqa: E402


def test_data_info_reports_classes_sizes_modes_and_unreadable_files(tmp_path, capsys):
    for name, size, mode in (("cats/1.png", 8, "RGB"), ("cats/2.png", 8, "RGB"), ("dogs/1.png", 12, "L")):
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        Image.new(mode, (size, size)).save(path)
    assert main(["data-info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 image files in 2 class folders" in out
    assert "cats  2" in out and "dogs  1" in out
    assert "8x8: 2, 12x12: 1" in out and "RGB: 2, L: 1" in out and "cannot read: 0 files" in out
    (tmp_path / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert main(["data-info", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "cannot read: 1 files" in out and "broken.jpg" in out


def test_data_info_on_a_missing_folder(tmp_path, capsys):
    assert main(["data-info", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minigraph data-info: error:") and "nowhere does not exist" in err


def test_data_info_flat_folder_and_extensions(tmp_path, capsys):
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "a.bmp")
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "b.png")
    assert main(["data-info", str(tmp_path), "--extensions", "bmp"]) == 0
    out = capsys.readouterr().out
    assert "1 image files" in out and "6x4: 1" in out and "class folders" not in out
