"""ImageFolder: pixels and labels against Pillow read by hand, file and class order, every bad folder."""
import os
import sys

import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

import minigraph as mg  # noqa: E402
from minigraph.data import ImageFolder, MinibatchSource, folder_info  # noqa: E402

RNG = np.random.default_rng(0)


def write(path, size=(6, 5), mode="RGB"):
    """A random image of ``size`` (width, height) in ``mode``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    w, h = size
    shape = (h, w) if mode == "L" else (h, w, len(mode))
    Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8), mode=None).convert(mode).save(path)
    return path


@pytest.fixture
def classes(tmp_path):
    """Classes b (3 files, one in a nested folder) and a (2 files), an ignored text file and hidden file."""
    root = tmp_path / "pics"
    for name in ("b/2.png", "b/10.png", "b/sub/1.jpg", "a/z.bmp", "a/y.PNG"):
        write(str(root / name))
    (root / "a" / "notes.txt").write_text("not an image")
    write(str(root / "a" / ".hidden.png"))
    return str(root)


def by_hand(path, mode, size=None, value_range=(0, 1)):
    """What ImageFolder should give for one file, computed with Pillow directly: (C, H, W) float."""
    im = Image.open(path).convert(mode)
    if size is not None:
        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    px = np.asarray(im, dtype=np.float64).reshape(im.size[1], im.size[0], -1).transpose(2, 0, 1)
    low, high = value_range
    return low + px / 255 * (high - low)


def test_sorted_files_and_classes_with_labels(classes):
    src = ImageFolder(classes)
    rel = [os.path.relpath(f, classes) for f in src.files]
    assert src.classes == ["a", "b"] and src.class_to_idx == {"a": 0, "b": 1}
    assert rel == ["a/y.PNG", "a/z.bmp", "b/10.png", "b/2.png", "b/sub/1.jpg"]
    assert src.targets.tolist() == [0, 0, 1, 1, 1] and len(src) == 5
    assert src.size == (5, 6) and src.channels == 3 and src.names == ("image", "label")


@pytest.mark.parametrize("channels, mode", [(3, "RGB"), (1, "L")])
@pytest.mark.parametrize("size", [None, (8, 4)])
def test_pixels_and_labels_match_pillow_read_by_hand(classes, channels, mode, size):
    src = ImageFolder(classes, size=size, channels=channels, value_range=(-1, 1))
    order = np.array([4, 0, 2])
    batch = src.read(order)
    h, w = size or (5, 6)
    assert batch["image"].shape == (3, channels, h, w) and batch["image"].dtype == np.float32
    assert batch["label"].dtype == np.int64 and batch["label"].tolist() == [1, 0, 1]
    for row, i in enumerate(order):
        np.testing.assert_allclose(batch["image"][row], by_hand(src.files[i], mode, size, (-1, 1)), atol=1e-6)


def test_flat_folder_without_labels(tmp_path):
    for name in ("c.png", "a.png", "deep/b.png"):
        write(str(tmp_path / name), mode="L")
    src = ImageFolder(str(tmp_path), labels=None)
    assert [os.path.relpath(f, tmp_path) for f in src.files] == ["a.png", "c.png", "deep/b.png"]
    assert src.channels == 1 and src.names == ("image",) and src.classes == []
    batch = src.read(np.array([1]))
    assert set(batch) == {"image"}
    np.testing.assert_allclose(batch["image"][0], by_hand(src.files[1], "L"), atol=1e-6)


def test_grey_and_colour_are_converted_when_channels_is_given(tmp_path):
    write(str(tmp_path / "x/grey.png"), mode="L")
    write(str(tmp_path / "x/rgba.png"), mode="RGBA")
    with pytest.raises(mg.DataError, match="mix grey and colour.*channels=1 or channels=3"):
        ImageFolder(str(tmp_path))
    src = ImageFolder(str(tmp_path), channels=3)
    np.testing.assert_allclose(src.read(np.array([0]))["image"][0], by_hand(src.files[0], "RGB"), atol=1e-6)
    np.testing.assert_allclose(src.read(np.array([1]))["image"][0], by_hand(src.files[1], "RGB"), atol=1e-6)


def test_mixed_sizes_need_size(tmp_path):
    write(str(tmp_path / "x/small.png"), size=(4, 4))
    write(str(tmp_path / "x/big.png"), size=(9, 7))
    with pytest.raises(mg.DataError, match=r"2 different sizes.*9x7.*4x4.*pass size="):
        ImageFolder(str(tmp_path))
    assert ImageFolder(str(tmp_path), size=5).read(np.arange(2))["image"].shape == (2, 3, 5, 5)


def test_minibatches_from_a_folder_with_prefetch_match_without(classes):
    src = ImageFolder(classes, size=4)
    a = list(MinibatchSource(src, 2, seed=1, max_sweeps=2))
    b = list(MinibatchSource(src, 2, seed=1, max_sweeps=2, prefetch=2))
    assert len(a) == len(b) == 6
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["label"], y["label"])


@pytest.mark.parametrize("setup, match", [
    (lambda root: None, "does not exist"),
    (lambda root: os.makedirs(root), "is empty"),
    (lambda root: write(os.path.join(root, "flat.png")), "no class subfolders.*labels=None"),
    (lambda root: (write(os.path.join(root, "a/1.png")), write(os.path.join(root, "loose.png"))),
     "outside the class subfolders"),
    (lambda root: (write(os.path.join(root, "a/1.png")), os.makedirs(os.path.join(root, "b"))),
     "class folders without image files.*b"),
])
def test_missing_or_empty_folders(tmp_path, setup, match):
    root = str(tmp_path / "root")
    setup(root)
    with pytest.raises(mg.DataError, match=match):
        ImageFolder(root)


def test_a_file_instead_of_a_folder_and_an_empty_flat_folder(tmp_path):
    path = write(str(tmp_path / "one.png"))
    with pytest.raises(mg.DataError, match="is a file"):
        ImageFolder(path)
    os.makedirs(tmp_path / "empty")
    with pytest.raises(mg.DataError, match="holds no image files"):
        ImageFolder(str(tmp_path / "empty"), labels=None)


def _broken_folder(tmp_path):
    """Class a: two good images, a text file named .png and a PNG cut in the middle of its pixels."""
    root = tmp_path / "pics"
    for i in range(2):
        write(str(root / "a" / f"good{i}.png"), size=(32, 32))
    (root / "a" / "text.png").write_text("hello")
    data = open(write(str(root / "a" / "cut.png"), size=(32, 32)), "rb").read()
    (root / "a" / "cut.png").write_bytes(data[:len(data) // 2])
    return str(root)


def test_a_file_that_is_not_an_image_raises_naming_it(tmp_path):
    root = _broken_folder(tmp_path)
    with pytest.raises(mg.DataError, match=r"1 of 4 files cannot be read.*text\.png.*on_error='skip'"):
        ImageFolder(root)


def test_a_truncated_file_raises_naming_it_when_decoded(tmp_path):
    root = _broken_folder(tmp_path)
    os.remove(os.path.join(root, "a", "text.png"))
    src = ImageFolder(root)  # the header of the cut file is intact
    with pytest.raises(mg.DataError, match=r"cannot read .*cut\.png"):
        src.read(np.arange(len(src)))
    mb = MinibatchSource(src, 3, shuffle=False, prefetch=2)
    with pytest.raises(mg.DataError, match=r"cut\.png"):  # from the prefetch thread, in this thread
        mb.next_minibatch()
    mb.close()


def test_skip_leaves_unreadable_files_out_with_one_warning(tmp_path):
    root = _broken_folder(tmp_path)
    with pytest.warns(UserWarning, match="skipped 2 of 4 files"):
        src = ImageFolder(root, on_error="skip")
    assert [os.path.basename(f) for f in src.files] == ["good0.png", "good1.png"]
    assert sorted(os.path.basename(p) for p, _ in src.skipped) == ["cut.png", "text.png"]
    assert src.read(np.arange(2))["image"].shape == (2, 3, 32, 32)


def test_16_bit_images_are_refused(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint16) + 1000).save(tmp_path / "deep.png")
    with pytest.raises(mg.DataError, match="16-bit or float"):
        ImageFolder(str(tmp_path), labels=None)


@pytest.mark.parametrize("kwargs, match", [
    ({"channels": 2}, "channels must be 1"), ({"labels": "files"}, "labels must be"),
    ({"on_error": "ignore"}, "on_error"), ({"resample": "cubic"}, "resample"), ({"value_range": (1, 1)}, "low < high"),
    ({"size": (1, 2, 3)}, "size must be"),
])
def test_bad_arguments(classes, kwargs, match):
    with pytest.raises(mg.DataError, match=match):
        ImageFolder(classes, **kwargs)


def test_without_pillow_the_error_names_the_extra(classes, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"minigraph\[images\]"):
        ImageFolder(classes)


def test_folder_info_counts_classes_sizes_modes_and_unreadable_files(tmp_path):
    root = _broken_folder(tmp_path)
    write(os.path.join(root, "b", "grey.png"), size=(8, 8), mode="L")
    info = folder_info(root)
    assert info["files"] == 5 and info["classes"] == {"a": 4, "b": 1}
    assert info["sizes"] == {"32x32": 2, "8x8": 1} and info["modes"] == {"RGB": 2, "L": 1}
    assert sorted(os.path.basename(p) for p, _ in info["unreadable"]) == ["cut.png", "text.png"]
